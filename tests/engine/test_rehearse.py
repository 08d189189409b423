"""rehearse: the whole rollout on the emulator, as `make demo` runs it, leaking no secret."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

from tests.fixtures.spec import REPO

SECRETS = {
    "OPENAI_API_KEY": "sk-rehearsal-6c1f0e9a8b7d",
    "REPLY_SIGNING_SECRET": "signing-rehearsal-3e4f5a6b7c",
}


def run_rehearsal(tmp_path, scenario: str, *extra: str) -> subprocess.CompletedProcess[str]:
    # CLOUDFLARE_LOG=debug makes the SDK log every request body: the secrets must still not show
    env = {**os.environ, **SECRETS, "NO_COLOR": "1", "CLOUDFLARE_LOG": "debug"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tgk_deploy.cli.app",
            "rehearse",
            "--scenario",
            scenario,
            "--journal",
            str(tmp_path / "rehearsal.sqlite"),
            *extra,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_incident_rehearsal_rolls_ai_back_recovers_and_finishes_without_leaking_secrets(
    tmp_path,
):
    done = run_rehearsal(tmp_path, "ai-latency-incident")
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "ai-timeouts" in out and "response: feature-rollback" in out
    assert "triggers pass again" in out
    assert "phase 5 (production-optimization) complete" in out
    journal = "\n".join(sqlite3.connect(tmp_path / "rehearsal.sqlite").iterdump())
    assert "simulated" in journal  # every verdict says where its numbers came from
    for value in SECRETS.values():
        assert value not in out
        assert value not in done.stderr
        assert value not in journal


def test_the_clean_rehearsal_reports_json(tmp_path):
    done = run_rehearsal(tmp_path, "clean", "--output", "json")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["completed"] and report["simulated"]
    kinds = [entry["kind"] for entry in report["timeline"]]
    assert kinds.count("complete") == 5 and "trigger" not in kinds
    assert report["api_calls"] > 100
    # every new version smoke-tested at 0 % before traffic: production in phases 1-4,
    # staging in phases 2-4 (phase 1's staging step is the first upload there)
    smoked = [
        (e["phase"], "on staging" in e["message"])
        for e in report["timeline"]
        if e["kind"] == "smoke"
    ]
    assert smoked == [
        (1, False),
        (2, True),
        (2, False),
        (3, True),
        (3, False),
        (4, True),
        (4, False),
    ]
    assert all(
        "all 5 route(s) right" in e["message"] for e in report["timeline"] if e["kind"] == "smoke"
    )


def test_an_unknown_scenario_is_bad_input(tmp_path):
    done = run_rehearsal(tmp_path, "meteor-strike")
    assert done.returncode == 2
    assert "clean" in done.stderr and "ai-latency-incident" in done.stderr
