"""``tgk-deploy status`` over HTTP against the emulator: split, position, secrets, flags, rules."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from typer.testing import CliRunner

from tests.fixtures.cloudflare import seed_canary
from tests.fixtures.spec import REPO
from tgk_deploy.cli.app import app
from tgk_deploy.emulator import DEFAULT_ACCOUNT_ID, DEFAULT_ZONE_ID, Emulator

runner = CliRunner()
PRODUCTION = "tgk-email-orchestrator"


@pytest.fixture
def live(emulator_env: Emulator, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(REPO)
    ids = seed_canary(emulator_env)
    emulator_env.log.clear()
    return ids


def status(*args: str):
    return runner.invoke(app, ["status", *args])


def test_status_json_shows_the_split_position_secrets_flags_and_rules(live, emulator_env):
    result = status("--output", "json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["position"]["phase"] == 1
    assert report["position"]["step"] == "canary-10"
    assert report["position"]["environment"] == "production"
    assert report["position_text"].startswith("phase 1 step canary-10 applied at ")
    assert report["next"]["step"] == "canary-50"
    assert report["next"]["not_before"] is not None  # 48 h after canary-10
    [production] = report["environments"]
    assert production["name"] == "production"
    assert production["message"] == "tgk p=1 s=canary-10 r=r1"
    split = {(v["version_id"], v["number"], v["percentage"], v["tag"]) for v in production["split"]}
    assert split == {(live["candidate"], 2, 10.0, "tgk-p1-cand"), (live["stable"], 1, 90.0, None)}
    flags = {v["number"]: v["flags"] for v in production["split"]}
    assert flags[2] == {"AI_ANALYSIS": "false", "DYNAMIC_ROUTING": "true"}
    assert flags[1] == {"AI_ANALYSIS": "false", "DYNAMIC_ROUTING": "false"}
    assert production["secret_names"] == ["TELEGRAM_BOT_TOKEN"]
    rules = {r["role"]: (r["name"], r["enabled"]) for r in report["email_rules"]}
    assert rules == {
        "worker": ("tgk-email-orchestrator", True),
        "legacy": ("legacy-email-router", True),
    }
    assert "emulated-telegram-token" not in result.output


def test_status_makes_at_most_four_reads_in_two_rounds(live, emulator_env):
    result = status("--output", "json")

    assert result.exit_code == 0, result.output
    requests = emulator_env.requests
    assert len(requests) == 4
    assert {r.method for r in requests} == {"GET"}
    paths = sorted(r.path.split("?")[0] for r in requests)
    script = f"/client/v4/accounts/{DEFAULT_ACCOUNT_ID}/workers/scripts/{PRODUCTION}"
    assert paths == sorted(
        [
            f"{script}/deployments",
            f"/client/v4/zones/{DEFAULT_ZONE_ID}/email/routing/rules",
            f"{script}/versions/{live['candidate']}",
            f"{script}/versions/{live['stable']}",
        ]
    )


def test_status_text_for_people(live):
    result = status()

    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "rollout: phase 1 step canary-10 applied at" in text
    assert "next: phase 1 step canary-50 (production), not before" in text
    assert f"10 %  #2    {live['candidate']} tag tgk-p1-cand" in text
    assert f"90 %  #1    {live['stable']}" in text
    assert "flag DYNAMIC_ROUTING = false (#1)  true (#2)" in text
    assert "secrets: TELEGRAM_BOT_TOKEN" in text
    assert "worker  tgk-email-orchestrator: enabled" in text
    assert "legacy  legacy-email-router: enabled" in text


def test_status_of_all_environments(live):
    result = status("--env", "all", "--output", "json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    by_name = {env["name"]: env for env in report["environments"]}
    assert set(by_name) == {"production", "staging"}
    [staging] = by_name["staging"]["split"]
    assert (staging["version_id"], staging["percentage"]) == (live["staging"], 100.0)
    assert by_name["staging"]["message"] == "tgk p=1 s=staging r=r0"


def test_status_on_a_fresh_account_says_nothing_was_applied(emulator_env, monkeypatch):
    monkeypatch.chdir(REPO)
    emulator_env.state.seed_demo()

    result = status()

    assert result.exit_code == 0, result.output
    assert "rollout: no tgk-deploy step applied yet" in result.stdout
    assert "next: phase 1 step staging (staging)" in result.stdout
    assert "worker  tgk-email-orchestrator: disabled" in result.stdout


def test_status_of_a_missing_script_is_an_error_naming_it(emulator_env, monkeypatch):
    """A mistyped script name must never read as "no step applied yet"."""
    monkeypatch.chdir(REPO)

    result = status("--output", "json")

    assert result.exit_code == 6, result.output
    report = json.loads(result.stdout)
    assert report["error"] == "MissingResource"
    assert (
        "Worker script 'tgk-email-orchestrator' (environments.production.script)"
        in (report["missing"])
    )
    assert report["hint"]


def test_status_with_a_bad_token_exits_6_and_says_what_failed(live, emulator_env):
    emulator_env.state.set_tokens(["another-token"])

    result = status()

    assert result.exit_code == 6
    assert "list deployments of tgk-email-orchestrator failed (HTTP 401)" in result.stderr
    assert "next: check CLOUDFLARE_API_TOKEN" in result.stderr


def test_status_without_credentials_is_bad_input(monkeypatch):
    monkeypatch.chdir(REPO)
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)

    result = status()

    assert result.exit_code == 2
    assert "CLOUDFLARE_API_TOKEN is not set" in result.stderr


def test_status_reads_in_two_concurrent_rounds(live, emulator_env):
    """With 50 ms per call, the deployments and rules overlap, then the two versions do."""
    emulator_env.faults.set_latency(50)

    result = status("--output", "json")

    assert result.exit_code == 0, result.output
    spans = sorted(
        (datetime.fromisoformat(r.timestamp) - timedelta(milliseconds=r.duration_ms), r.path)
        for r in emulator_env.requests
    )
    ends = {r.path: datetime.fromisoformat(r.timestamp) for r in emulator_env.requests}
    first_round = [path for _, path in spans[:2]]
    second_round = [path for _, path in spans[2:]]
    assert {p.split("?")[0].rsplit("/", 1)[-1] for p in first_round} == {"deployments", "rules"}
    assert all("/versions/" in p for p in second_round)
    assert spans[1][0] < ends[spans[0][1]]  # the first two overlap
    assert spans[3][0] < ends[spans[2][1]]  # so do the last two
