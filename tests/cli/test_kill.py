"""Real kills: the CLI as a process, SIGKILLed right after its Nth API call took effect.

The emulator (with latency on every call) holds the answer of the Nth call
after applying it; once it is held the process is killed: no wall-clock
guessing, every kill point is exact. Then the same command runs again until
it finishes. For every kill point the end state is the clean run's, no
version tag or step stamp appears twice, no traffic move is made twice, and
one more run changes nothing.

Scenarios: an advance of a step of each action kind (D1 export, secret put,
upload with vars, traffic split, email rule; traffic; vars and secret delete
mid-split), ``rollback --immediate`` and ``rollback --gradual``. The suite
kills at three calls spread over each command; ``TGK_KILL_POINTS=all``
kills after every call in turn (run once for the closing note).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.fixtures.spec import write_project
from tgk_deploy.cli.app import app
from tgk_deploy.emulator import DEFAULT_ACCOUNT_ID, DEFAULT_ZONE_ID

pytestmark = pytest.mark.prometheus

ALL_POINTS = os.environ.get("TGK_KILL_POINTS") == "all"
LATENCY_MS = 20
STEPS = ["staging", "canary", "half", "flags"]
PHASE = """\
phase: 1
name: foundation
summary: every action kind, for the kill test
risk: low
steps:
  - id: staging
    environment: staging
    actions:
      - deploy: {{percentage: 100}}
    bake: {staging}
  - id: canary
    actions:
      - export_d1: {{database: main}}
      - put_secret: {{name: KILL_KEY, from_env: KILL_SECRET}}
      - deploy: {{percentage: 10, vars: {{AI_ANALYSIS: true}}}}
      - email_rule: {{rule: worker, enabled: true}}
    bake: {canary}
  - id: half
    actions:
      - traffic: {{percentage: 50}}
    bake: {half}
  - id: flags
    actions:
      - set_vars: {{DYNAMIC_ROUTING: true}}
      - delete_secret: {{name: KILL_KEY}}
    bake: {flags}
rollback_triggers:
  - name: routing-errors
    query: vector(2)
    op: ">"
    threshold: 5
on_trigger: immediate-rollback
"""
ADVANCE = ["advance", "--phase", "1", "--yes"]
# scenario: (steps applied before, the command, the step whose bake must hold the re-run)
SCENARIOS = {
    "advance-canary": (["staging"], ADVANCE, "canary"),
    "advance-half": (["staging", "canary"], ADVANCE, "half"),
    "advance-flags": (["staging", "canary", "half"], ADVANCE, "flags"),
    "rollback-immediate": (["staging", "canary", "half"], ["rollback", "--immediate"], None),
    "rollback-gradual": (["staging", "canary", "half"], ["rollback", "--gradual", "--yes"], None),
}


class Stage:
    """A fresh world for one kill point: emulator state, project folder, environment."""

    def __init__(self, emulator, prometheus, folder: Path, scenario: str) -> None:
        before, self.command, holding = SCENARIOS[scenario]
        folder.mkdir(parents=True)
        bakes = {step: ("1h" if step == holding else "0s") for step in STEPS}
        self.project = write_project(folder, PHASE.format(**bakes))
        text, spaced = re.subn(r"(?m)^(\s+interval:) \S+", r"\1 0s", self.project.read_text())
        assert spaced == 1, "the gradual rollback's spacing must be zeroed: the CLI waits it out"
        self.project.write_text(text)
        emulator.reset()
        seeded = emulator.state.seed_demo()
        self.emulator = emulator
        self.env = {
            "CLOUDFLARE_API_BASE_URL": emulator.url,
            "CLOUDFLARE_API_TOKEN": "kill-test",
            "CLOUDFLARE_ACCOUNT_ID": DEFAULT_ACCOUNT_ID,
            "CLOUDFLARE_ZONE_ID": DEFAULT_ZONE_ID,
            "TGK_D1_DATABASE_ID": seeded["d1_database_id"],
            "PROMETHEUS_URL": prometheus.url,
            "PROMETHEUS_TOKEN": "unused",
            "TGK_DEPLOY_PROJECT": str(self.project),
            "KILL_SECRET": "kill-test-secret-value",
            "NO_COLOR": "1",
        }
        for _ in before:
            result = self.run(ADVANCE)
            assert result.exit_code == 0, result.output
        emulator.faults.set_latency(LATENCY_MS)

    def run(self, command: list[str]):
        return CliRunner().invoke(app, command, env={**self.env, "TGK_DEPLOY_JOURNAL": None})

    def killed_after(self, n: int) -> str | None:
        """Run the command as a process; SIGKILL it once its nth call took effect: which call."""
        hold = self.emulator.faults.hold_next("*", "*", skip=n - 1, after=True, timeout_s=60)
        env = {**os.environ, **self.env}
        env.pop("TGK_DEPLOY_JOURNAL", None)
        process = subprocess.Popen(
            [sys.executable, "-m", "tgk_deploy.cli.app", *self.command],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            while not hold.arrived.wait(0.02):
                if process.poll() is not None:
                    _, err = process.communicate()
                    assert process.returncode == 0, err.decode()[-2000:]
                    return None  # it finished in fewer calls: no such kill point
            process.send_signal(signal.SIGKILL)
            process.wait(10)
            return hold.call
        finally:
            hold.drop = True
            hold.released.set()
            self.emulator.faults.clear()
            self.emulator.faults.set_latency(LATENCY_MS)

    def finish(self) -> None:
        """The same command until it is done (an advance may find its stamp already there)."""
        for _ in range(4):
            result = self.run(self.command)
            if result.exit_code == 0 or (self.command == ADVANCE and result.exit_code == 4):
                return
        raise AssertionError(result.output)

    def state(self) -> dict[str, object]:
        api = self.emulator.state
        script = "tgk-email-orchestrator"
        deployments = api_deployments(self.emulator, script)
        versions = api_versions(self.emulator, script)
        live = deployments[0]
        tag = {v["id"]: (v["annotations"] or {}).get("workers/tag") or "seed" for v in versions}
        moves, previous = 0, None
        for deployment in reversed(deployments):
            split = sorted((v["version_id"], v["percentage"]) for v in deployment["versions"])
            moves += split != previous
            previous = split
        messages = [(d.get("annotations") or {}).get("workers/message") or "" for d in deployments]
        rules = {r["name"]: r["enabled"] for r in api_rules(self.emulator)}
        del api
        return {
            "split": sorted(
                (content(self.emulator, script, v["version_id"]), v["percentage"])
                for v in live["versions"]
            ),
            "mark": " ".join(w for w in messages[0].split() if not w.startswith("r=")),
            "rules": rules,
            "traffic moves": moves,
            "stamps": sorted(m.split()[2] for m in messages if m.startswith("tgk p=1 s=")),
            "tags": sorted(Counter(t for t in tag.values() if t != "seed").values()),
            "secrets": secret_names(self.emulator, script),
        }


def api_get(emulator, path: str):
    import httpx

    response = httpx.get(
        emulator.url + path, headers={"Authorization": "Bearer kill-test"}, timeout=10
    )
    return response.json()["result"]


def api_deployments(emulator, script: str) -> list[dict]:
    path = f"/accounts/{DEFAULT_ACCOUNT_ID}/workers/scripts/{script}/deployments"
    return api_get(emulator, path)["deployments"]


def api_versions(emulator, script: str) -> list[dict]:
    path = f"/accounts/{DEFAULT_ACCOUNT_ID}/workers/scripts/{script}/versions?per_page=100"
    return api_get(emulator, path)["items"]


def content(emulator, script: str, version_id: str) -> tuple[object, ...]:
    """What a version is: its content tag if tgk-deploy uploaded it, its vars and secret names."""
    path = f"/accounts/{DEFAULT_ACCOUNT_ID}/workers/scripts/{script}/versions/{version_id}"
    version = api_get(emulator, path)
    tag = (version.get("annotations") or {}).get("workers/tag") or "seed"
    bindings = (version.get("resources") or {}).get("bindings") or []
    return (
        tag if tag.startswith("tgk-p") else "derived",
        tuple(sorted((b["name"], b.get("text")) for b in bindings if b["type"] == "plain_text")),
        tuple(sorted(b["name"] for b in bindings if b["type"] == "secret_text")),
    )


def api_rules(emulator) -> list[dict]:
    return api_get(emulator, f"/zones/{DEFAULT_ZONE_ID}/email/routing/rules")


def secret_names(emulator, script: str) -> list[str]:
    path = f"/accounts/{DEFAULT_ACCOUNT_ID}/workers/scripts/{script}/secrets"
    return sorted(s["name"] for s in api_get(emulator, path))


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_a_kill_after_any_call_converges_to_the_clean_end_state(
    emulator, prometheus, tmp_path, scenario
):
    clean = Stage(emulator, prometheus, tmp_path / "clean", scenario)
    start = len(emulator.requests)
    assert clean.run(clean.command).exit_code == 0
    calls = len(emulator.requests) - start
    reference = clean.state()

    ran: list[str] = []
    points = range(1, calls + 1) if ALL_POINTS else sorted({calls // 4, calls // 2, calls - 1})
    for n in points:
        stage = Stage(emulator, prometheus, tmp_path / f"kill-{n}", scenario)
        call = stage.killed_after(n)
        if call is None:
            break
        method, _, path = call.partition(" ")
        where = method + " " + "/".join(p if len(p) < 20 else p[:8] for p in path.split("/")[3:])
        stage.finish()
        assert stage.state() == reference, f"killed after call {n} ({where})"
        quiet = len(emulator.requests)
        again = stage.run(stage.command)
        assert again.exit_code in (0, 4), again.output
        mutations = [r for r in emulator.requests[quiet:] if r.method != "GET"]
        assert mutations == [], f"a second re-run after a kill at call {n} changed {mutations}"
        ran.append(f"{n}: {where} -> converged")
    print(f"\n{scenario}: {calls} calls; kill points:\n  " + "\n  ".join(ran))
    assert ran
