"""`advance --wait` on a real terminal: the live view shows the split, the bake left and
every trigger's value against its threshold (a pseudo-terminal, the emulator, a real Prometheus).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pexpect
import pytest

from tests.fixtures.spec import write_project
from tgk_deploy.emulator import DEFAULT_ACCOUNT_ID, DEFAULT_ZONE_ID
from tgk_deploy.emulator import start as start_emulator

PHASE = textwrap.dedent(
    """\
    phase: 1
    name: foundation
    summary: a short phase for the terminal test
    risk: low
    steps:
      - id: staging
        environment: staging
        actions:
          - deploy: {percentage: 100}
        bake: 6s
      - id: canary
        actions:
          - deploy: {percentage: 10}
    rollback_triggers:
      - name: delivery-rate-low
        query: vector(0.9996)
        op: "<"
        threshold: 0.995
        for: 5s
        min_sample: {query: "vector(5000)", count: 100}
      - name: routing-errors
        query: vector(2)
        op: ">"
        threshold: 5
    on_trigger: immediate-rollback
    """
)


def terminal_env(emulator, **extra: str) -> dict[str, str]:
    """What a person's shell would hold, pointed at the emulator, colour allowed."""
    env = {
        **os.environ,
        "CLOUDFLARE_API_BASE_URL": emulator.url,
        "CLOUDFLARE_API_TOKEN": "pty-test",
        "CLOUDFLARE_ACCOUNT_ID": DEFAULT_ACCOUNT_ID,
        "CLOUDFLARE_ZONE_ID": DEFAULT_ZONE_ID,
        "TERM": "xterm-256color",
        **extra,
    }
    env.pop("NO_COLOR", None)
    return env


@pytest.fixture
def short_project(tmp_path: Path) -> Path:
    return write_project(tmp_path, PHASE)


def test_advance_wait_shows_the_bake_and_the_trigger_values_live(short_project, prometheus):
    with start_emulator() as emulator:
        emulator.state.seed_demo()
        env = terminal_env(
            emulator,
            PROMETHEUS_URL=prometheus.url,
            PROMETHEUS_TOKEN="unused-by-a-local-prometheus",
            COLUMNS="160",
        )
        command = [
            sys.executable,
            "-m",
            "tgk_deploy.cli.app",
            "advance",
            "--phase",
            "1",
            "--project",
            str(short_project),
        ]
        first = subprocess.run(
            [*command, "--yes"], env=env, capture_output=True, text=True, timeout=120
        )
        assert first.returncode == 0, first.stderr

        child = pexpect.spawn(
            command[0],
            [*command[1:], "--wait", "--interval", "1s", "--yes"],
            env=env,
            encoding="utf-8",
            timeout=60,
            dimensions=(50, 160),
        )
        child.expect("bake: ")
        child.expect("left")
        child.expect("delivery-rate-low")
        child.expect("0.9996")
        child.expect("< 0.995")
        child.expect("routing-errors")
        child.expect("tgk-email-orchestrator: #1")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0, child.before
        assert "applied" in child.before


def test_status_watch_redraws_until_interrupted(short_project):
    with start_emulator() as emulator:
        emulator.state.seed_demo()
        env = terminal_env(emulator)
        child = pexpect.spawn(
            sys.executable,
            ["-m", "tgk_deploy.cli.app", "status", "--watch", "1", "--project", str(short_project)],
            env=env,
            encoding="utf-8",
            timeout=90,  # each redraw is a fresh observe: slow on a loaded machine
            dimensions=(50, 160),
        )
        child.expect("rollout:")
        child.expect("every 1 s; Ctrl-C to stop")
        reads = len(emulator.requests)
        child.expect("every 1 s; Ctrl-C to stop")  # redrawn: read again
        assert len(emulator.requests) > reads
        child.sendintr()
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
