"""``tgk-deploy smoke --env E [--version ID]`` as an operator types it, against the emulator."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.emulator.helpers import client, deploy
from tests.fixtures.emulator import EMULATOR_TOKEN
from tests.fixtures.spec import REPO
from tgk_deploy.cli.app import app

runner = CliRunner()
TOKEN = "smoke-cli-token-7e6d5c4b3a"
SCRIPT = "tgk-email-orchestrator"
TABLE = json.dumps(
    {
        "domains": ["tgk.example"],
        "routes": {
            "alerts": {"chat_id": "-1001000000001", "priority": "critical"},
            "ops": {"chat_id": "-1001000000002"},
            "noreply": {"action": "reject", "reason": "no"},
        },
    }
)


@pytest.fixture
def staged(emulator_env, monkeypatch):
    """Production at 100 % on the pre-rollout version, a candidate beside it at 0 %."""
    seeded = emulator_env.state.seed_demo(smoke_token=TOKEN)
    stable = seeded[SCRIPT]
    candidate = emulator_env.state.seed_version(SCRIPT, vars={"ROUTING_TABLE": TABLE}).id
    with client(emulator_env, EMULATOR_TOKEN) as http:
        answer = deploy(http, (candidate, 0), (stable, 100))
    assert answer.status_code == 200, answer.text
    monkeypatch.setenv("TGK_DEPLOY_PROJECT", str(REPO / "tgk-deploy.yaml"))
    monkeypatch.setenv("TGK_D1_DATABASE_ID", seeded["d1_database_id"])
    monkeypatch.setenv("TGK_SMOKE_TOKEN", TOKEN)
    monkeypatch.setenv("TGK_WORKER_URL_PRODUCTION", emulator_env.worker_url(SCRIPT))
    return emulator_env, stable, candidate


def smoke(*args: str):
    return runner.invoke(app, ["smoke", *args])


def test_a_candidate_at_zero_percent_passes_through_its_version_override(staged):
    emulator, _, candidate = staged
    result = smoke("--env", "production", "--version", candidate, "--output", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["outcome"], report["answered_by"]) == ("pass", candidate)
    assert (report["checked"], report["failed"]) == (3, 0)
    (request,) = emulator.front.requests()
    assert request["override"] == f'{SCRIPT}="{candidate}"'
    assert TOKEN not in result.output


def test_without_version_the_newest_deployed_version_is_tested(staged):
    _, _, candidate = staged
    result = smoke("--output", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["version_id"] == candidate


def test_a_wrong_route_exits_one_and_names_it(staged):
    emulator, _, candidate = staged
    emulator.front.fail_smoke(candidate, scope="ops")
    result = smoke("--version", candidate)
    assert result.exit_code == 1, result.output
    assert "fail" in result.output and "FAIL ops@tgk.example" in result.output
    assert "ok   alerts@tgk.example: telegram" in result.output
    assert "-1001000000001" not in result.output  # no chat id, ever


def test_the_stable_version_without_a_routing_table_fails(staged):
    _, stable, _ = staged
    result = smoke("--version", stable, "--output", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["routes"][0]["reason"].startswith("ROUTING_TABLE")


def test_a_version_outside_the_deployment_is_refused_before_any_request(staged):
    emulator, _, _ = staged
    result = smoke("--version", "0f0f0f0f-0000-4000-8000-000000000000", "--output", "json")
    assert result.exit_code == 4, result.output
    assert "not in the current deployment" in json.loads(result.stdout)["message"]
    assert emulator.front.requests() == []


def test_an_unreachable_worker_is_inconclusive(staged, monkeypatch):
    monkeypatch.setenv("TGK_WORKER_URL_PRODUCTION", "http://127.0.0.1:9")
    result = smoke("--output", "json")
    assert result.exit_code == 3, result.output
    assert json.loads(result.stdout)["outcome"] == "inconclusive"


def test_a_missing_token_is_bad_input(staged, monkeypatch):
    emulator, _, _ = staged
    monkeypatch.delenv("TGK_SMOKE_TOKEN")
    result = smoke("--output", "json")
    assert result.exit_code == 2
    assert "TGK_SMOKE_TOKEN" in json.loads(result.stdout)["message"]
    assert emulator.front.requests() == []
