"""``tgk-deploy plan --phase N`` over HTTP against a seeded emulator: next step, actions, refusals."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.fixtures.cloudflare import seed_canary
from tests.fixtures.spec import REPO
from tgk_deploy.bundle import read_bundle
from tgk_deploy.cli.app import app
from tgk_deploy.emulator import Emulator
from tgk_deploy.planner.actions import content_tag

runner = CliRunner()


@pytest.fixture
def fresh_account(emulator_env: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    monkeypatch.chdir(REPO)
    emulator_env.state.seed_demo()
    return emulator_env


@pytest.fixture
def at_canary_10(emulator_env: Emulator, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(REPO)
    return seed_canary(emulator_env)


def plan(*args: str):
    return runner.invoke(app, ["plan", *args])


def test_plan_phase_1_on_a_fresh_account_uploads_to_staging_and_is_ready(fresh_account):
    result = plan("--phase", "1", "--output", "json")

    assert result.exit_code == 0, result.output
    step = json.loads(result.stdout)
    assert (step["phase"], step["step"], step["environment"]) == (1, "staging", "staging")
    assert step["refusals"] == []
    assert step["position"] is None
    kinds = [action["kind"] for action in step["actions"]]
    assert kinds == ["upload_version", "set_traffic", "stamp"]
    staging_hash = read_bundle(REPO / "wrangler", "staging").content_hash
    upload = step["actions"][0]
    assert upload["bundle_hash"] == staging_hash  # the staging bundle, not production's
    assert upload["tag"] == content_tag(1, staging_hash, {})
    assert step["actions"][1]["percentage"] == 100
    assert all(r.method == "GET" for r in fresh_account.requests)  # planning changes nothing


def test_plan_phase_1_text_lists_the_actions_and_the_command_to_run(fresh_account):
    result = plan("--phase", "1")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "next: phase 1 step staging (staging)"
    assert lines[1].startswith("  1. ")
    assert "ready: tgk-deploy advance --phase 1" in result.stdout


def test_plan_during_the_bake_refuses_with_the_time_left(at_canary_10):
    result = plan("--phase", "1", "--output", "json")

    assert result.exit_code == 0, result.output
    step = json.loads(result.stdout)
    assert step["step"] == "canary-50"
    assert step["position"]["step"] == "canary-10"
    [refusal] = step["refusals"]
    assert refusal["reason"] == "bake"
    assert refusal["message"].startswith("bake: 3d23h")
    assert refusal["command"] == "tgk-deploy advance --phase 1 --wait"
    assert refusal["wait_until"] is not None


def test_plan_refusals_are_shown_with_reasons_in_text(at_canary_10):
    result = plan("--phase", "1")

    assert result.exit_code == 0, result.output
    assert "rollout at: phase 1 step canary-10 applied at" in result.stdout
    assert "refused (bake): bake: 3d23h" in result.stdout
    assert "next: tgk-deploy advance --phase 1 --wait" in result.stdout
    assert "ready:" not in result.stdout


def test_plan_of_a_later_phase_refuses_until_the_earlier_one_is_complete(at_canary_10):
    result = plan("--phase", "2", "--output", "json")

    assert result.exit_code == 0, result.output
    [refusal] = json.loads(result.stdout)["refusals"]
    assert refusal["reason"] == "earlier-phase-incomplete"
    assert refusal["command"] == "tgk-deploy advance --phase 1"


def test_plan_of_an_unknown_phase_is_bad_input(fresh_account):
    result = plan("--phase", "9")

    assert result.exit_code == 2
    assert "there is no phase 9" in result.stderr
    assert fresh_account.requests == []
