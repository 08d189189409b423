"""advance, approve, rollback, history and destroy as an operator types them (CLI over HTTP)."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.cli.test_live_view import PHASE
from tests.fixtures.spec import write_project
from tgk_deploy.cli.app import app

runner = CliRunner()
# production first, so that there is something to roll back without waiting out a bake
PRODUCTION_PHASE = (
    PHASE.split("steps:")[0]
    + textwrap.dedent(
        """\
    steps:
      - id: canary
        actions:
          - deploy: {percentage: 10}
        bake: 1h
      - id: full
        actions:
          - traffic: {percentage: 100}
    """
    )
    + "rollback_triggers:"
    + PHASE.split("rollback_triggers:")[1]
)


@pytest.fixture
def operator_env(emulator_env, prometheus, tmp_path, monkeypatch):
    """A short phase 1 (constant triggers) beside the real bundle; the emulator seeded for it."""
    project_file = write_project(tmp_path, PRODUCTION_PHASE)
    seeded = emulator_env.state.seed_demo()
    monkeypatch.setenv("TGK_DEPLOY_PROJECT", str(project_file))
    monkeypatch.setenv("TGK_D1_DATABASE_ID", seeded["d1_database_id"])
    monkeypatch.setenv("PROMETHEUS_URL", prometheus.url)
    monkeypatch.setenv("PROMETHEUS_TOKEN", "unused")
    monkeypatch.delenv("TGK_DEPLOY_JOURNAL", raising=False)
    return emulator_env


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_advance_then_refuse_the_bake_then_roll_back_then_history(operator_env):
    first = invoke("advance", "--phase", "1", "--yes", "--output", "json")
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert report["status"] == "applied" and report["step"] == "canary"
    assert [o["kind"] for o in report["outcomes"]] == ["upload_version", "set_traffic", "stamp"]

    again = invoke("advance", "--phase", "1", "--yes")
    assert again.exit_code == 4
    assert "bake:" in again.output and "left of 1h" in again.output

    dry = invoke("rollback", "--immediate", "--dry-run", "--output", "json")
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["done"] is False

    back = invoke("rollback", "--immediate", "--output", "json")
    assert back.exit_code == 0, back.output
    assert json.loads(back.stdout)["message"].startswith(
        ("phase 1 rolled back", "already rolled back")
    )

    history = invoke("history", "--phase", "1", "--output", "json")
    runs = json.loads(history.stdout)["runs"]
    assert [r["command"] for r in runs] == ["rollback", "advance", "advance"]
    assert runs[-1]["status"] == "applied" and runs[0]["status"] == "succeeded"


def test_approve_refuses_a_step_that_needs_no_approval(operator_env):
    result = invoke("approve", "--phase", "1", "--step", "canary", "--yes")
    assert result.exit_code == 2
    assert "does not wait for approval" in result.output


def test_rollback_needs_exactly_one_mode(operator_env):
    result = invoke("rollback")
    assert result.exit_code == 2 and "exactly one of" in result.output


def test_an_unknown_feature_is_bad_input(operator_env):
    result = invoke("rollback", "--feature", "teleport", "--yes")
    assert result.exit_code == 2 and "ai, buttons, dynamic-routing, email-replies" in result.output


def test_destroy_lists_everything_then_needs_the_name(operator_env, tmp_path):
    dry = invoke("destroy", "--dry-run")
    assert dry.exit_code == 0
    for thing in (
        "tgk-email-orchestrator-staging",
        "tgk-email-db",
        "tgk-email-attachments",
        "export D1",
    ):
        assert thing in dry.output
    wrong = invoke("destroy", "--confirm", "yes")
    assert wrong.exit_code == 2 and "type the production script name" in wrong.output
    done = invoke("destroy", "--confirm", "tgk-email-orchestrator")
    assert done.exit_code == 0, done.output
    assert "torn down" in done.output


def test_missing_credentials_are_bad_input_before_any_call(operator_env, monkeypatch):
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN")
    before = len(operator_env.requests)
    result = invoke("rollback", "--immediate")
    assert result.exit_code == 2 and "CLOUDFLARE_API_TOKEN is not set" in result.output
    assert len(operator_env.requests) == before


def test_an_unknown_phase_is_bad_input_before_any_call(operator_env):
    before = len(operator_env.requests)
    result = invoke("advance", "--phase", "9", "--yes")
    assert result.exit_code == 2 and "there is no phase 9" in result.output
    assert len(operator_env.requests) == before


def test_rollback_goes_on_when_the_journal_cannot_be_opened(operator_env, monkeypatch, tmp_path):
    assert invoke("advance", "--phase", "1", "--yes").exit_code == 0
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the journal's folder should be")
    monkeypatch.setenv("TGK_DEPLOY_JOURNAL", str(blocker / "journal.sqlite"))
    result = invoke("rollback", "--immediate")
    assert result.exit_code == 0, result.output
    assert "not recording" in result.output and "rolled back" in result.output


def test_a_gradual_rollback_goes_on_without_prometheus_configured(operator_env, monkeypatch):
    assert invoke("advance", "--phase", "1", "--yes").exit_code == 0
    monkeypatch.delenv("PROMETHEUS_URL")
    monkeypatch.setattr("tgk_deploy.engine.clock.SystemClock.sleep", lambda self, seconds: None)
    result = invoke("rollback", "--gradual", "--yes")
    assert result.exit_code == 0, result.output
    assert "no trigger checks" in result.output and "rolled back gradually" in result.output


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["plan", "--phase", "1"],
        ["advance", "--phase", "1", "--yes"],
        ["rollback", "--immediate"],
        ["rollback", "--gradual", "--yes"],
        ["rollback", "--feature", "ai", "--yes"],
        ["rollback", "--to-version", "0000", "--yes"],
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_a_mistyped_script_is_an_error_naming_it_never_nothing_to_do(operator_env, command):
    project = Path(os.environ["TGK_DEPLOY_PROJECT"])
    project.write_text(
        project.read_text().replace(
            "script: tgk-email-orchestrator\n", "script: tgk-email-orchestratr\n"
        )
    )
    before = len(operator_env.requests)

    result = invoke(*command, "--output", "json")

    assert result.exit_code == 6, result.output
    report = json.loads(result.stdout)
    assert (
        "Worker script 'tgk-email-orchestratr' (environments.production.script)"
        in (report["missing"])
    )
    mutations = [r for r in operator_env.requests[before:] if r.method != "GET"]
    assert mutations == []


def test_a_locked_journal_delays_a_rollback_by_one_journal_timeout_at_most(operator_env):
    """Another process holds the journal; the rollback is done all the same, and says so."""
    import sqlite3
    import time

    from tgk_deploy.journal.store import JOURNAL_TIMEOUT

    def rollback() -> tuple[object, float]:
        started = time.perf_counter()
        result = invoke("rollback", "--immediate", "--output", "json")
        return result, time.perf_counter() - started

    assert invoke("advance", "--phase", "1", "--yes").exit_code == 0
    usual, usual_seconds = rollback()
    assert usual.exit_code == 0, usual.output
    assert invoke("advance", "--phase", "1", "--yes").exit_code == 0  # the phase again
    journal = Path(os.environ["TGK_DEPLOY_PROJECT"]).parent / "journal.sqlite"
    holder = sqlite3.connect(journal, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        locked, locked_seconds = rollback()
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    assert locked.exit_code == 0, locked.output
    assert json.loads(locked.stdout)["message"].startswith("phase 1 rolled back")
    assert "journal" in locked.stderr and "locked" in locked.stderr
    assert locked_seconds <= usual_seconds + JOURNAL_TIMEOUT + 1.0, (usual_seconds, locked_seconds)


SECRET_STEP = (
    PHASE.split("steps:")[0]
    + textwrap.dedent(
        """\
    steps:
      - id: canary
        actions:
          - export_d1: {database: main}
          - put_secret: {name: REPLY_SIGNING_SECRET, from_env: REPLY_SIGNING_SECRET}
          - deploy: {percentage: 10}
        bake: 1h
    """
    )
    + "rollback_triggers:"
    + PHASE.split("rollback_triggers:")[1]
)


@pytest.mark.parametrize("value", ["", None], ids=["empty", "unset"])
def test_a_missing_secret_value_is_bad_input_before_any_change(
    operator_env, tmp_path, monkeypatch, value
):
    """Found after a D1 export it would leave the step part-done; found at planning, nothing is."""
    (tmp_path / "secret").mkdir()
    project = write_project(tmp_path / "secret", SECRET_STEP)
    monkeypatch.setenv("TGK_DEPLOY_PROJECT", str(project))
    if value is None:
        monkeypatch.delenv("REPLY_SIGNING_SECRET", raising=False)
    else:
        monkeypatch.setenv("REPLY_SIGNING_SECRET", value)
    before = len(operator_env.requests)

    result = invoke("advance", "--phase", "1", "--yes")

    assert result.exit_code == 2, result.output
    assert "REPLY_SIGNING_SECRET" in result.stderr and "next:" in result.stderr
    assert [r for r in operator_env.requests[before:] if r.method != "GET"] == []
    assert not (tmp_path / "secret" / "backups").exists()


def test_a_malformed_api_url_is_bad_input_at_once(operator_env, monkeypatch):
    monkeypatch.setenv("CLOUDFLARE_API_BASE_URL", "not-a-url")

    result = invoke("rollback", "--immediate")

    assert result.exit_code == 2
    assert "CLOUDFLARE_API_BASE_URL is not a URL" in result.stderr


def test_halt_and_resume_are_recorded_on_cloudflare_and_a_dry_run_records_nothing(operator_env):
    posts = operator_env.calls("POST")
    dry = invoke("halt", "--reason", "buttons confuse users", "--dry-run", "--output", "json")
    assert dry.exit_code == 0, dry.output
    assert (
        json.loads(dry.stdout)["dry_run"] is True
        and "halt" in json.loads(dry.stdout)["would_record"]
    )
    assert operator_env.calls("POST") == posts

    halted = invoke("halt", "--reason", "buttons confuse users")  # no terminal: no prompt
    assert halted.exit_code == 0, halted.output
    assert halted.stdout.startswith("halted: every advance refuses")
    assert operator_env.calls("POST") == posts + 1
    refused = invoke("advance", "--phase", "1", "--yes")
    assert refused.exit_code == 4 and "halt" in refused.output
    assert invoke("halt", "--reason", "again").stdout.startswith("already so")

    assert invoke("resume", "--dry-run").stdout.startswith("dry run: would record")
    assert operator_env.calls("POST") == posts + 1
    resumed = invoke("resume", "--yes")
    assert resumed.exit_code == 0 and resumed.stdout.startswith("resumed")
    assert invoke("advance", "--phase", "1", "--yes").exit_code == 0
