"""Cloudflare's own CLI, wrangler 4.86, drives ``tgk-deploy emulator serve`` through a whole
workflow, and after every command ``tgk-deploy status --output json`` agrees with it.

wrangler is the second client: its requests were shaped by Cloudflare's API, not by
this project, so every route it needs and every rule it meets (10214/10215 on secrets,
the 10220-then-force rollback, keep_bindings) is held to a client we did not write.
Both programs run as real processes against one real server; the emulator is stopped
by its own PID. wrangler is kept off the internet: no metrics, no error reports, no
banner (its update check), and an npm registry that points at a closed local port.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tgk_deploy.emulator.context import DEFAULT_ZONE_NAME

ROOT = Path(__file__).resolve().parents[2]
WRANGLER_DIR = ROOT / "wrangler"
WRANGLER_BIN = WRANGLER_DIR / "node_modules" / ".bin" / "wrangler"
SCRIPT = "tgk-email-orchestrator"
ROLLBACK_MESSAGE = "r" * 120  # the most wrangler's rollback prompt allows

pytestmark = [pytest.mark.node, pytest.mark.e2e]


@dataclass
class Served:
    env: dict[str, str]  # what a client of the emulator needs in its environment
    process: subprocess.Popen[str]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed: wrangler needs node >= 20")
    assert WRANGLER_BIN.exists(), "wrangler is not installed: run .ci/install-node-deps.sh"
    tgk = Path(sys.executable).with_name("tgk-deploy")
    process = subprocess.Popen(
        [str(tgk), "emulator", "serve", "--seed-demo", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        exports: dict[str, str] = {}
        while "CLOUDFLARE_API_TOKEN" not in exports:
            line = process.stdout.readline()
            assert line, "tgk-deploy emulator serve stopped before printing its exports"
            key, _, value = line.removeprefix("export ").partition("=")
            exports[key] = value.split("#")[0].strip()
        home = tmp_path_factory.mktemp("wrangler-home")
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            **exports,
            "WRANGLER_SEND_METRICS": "false",
            "WRANGLER_SEND_ERROR_REPORTS": "false",
            "WRANGLER_HIDE_BANNER": "true",
            "WRANGLER_LOG_PATH": str(home / "logs"),
            "npm_config_registry": "http://127.0.0.1:9/",
            "CI": "true",  # non-interactive: wrangler takes each prompt's default
            "NO_COLOR": "1",
        }
        yield Served(env, process)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wrangler project around the real Worker's modules (no routes: nothing outside)."""
    directory = tmp_path_factory.mktemp("wrangler-project")
    src = WRANGLER_DIR / "src"
    (directory / "wrangler.toml").write_text(
        f'name = "{SCRIPT}"\n'
        f'main = "{src / "index.js"}"\n'
        'compatibility_date = "2024-09-23"\n'
        "workers_dev = false\n"
        "no_bundle = true\n"
        "find_additional_modules = true\n"
        f'base_dir = "{src}"\n'
        'rules = [{ type = "ESModule", globs = ["**/*.js"] }]\n\n'
        "[version_metadata]\n"
        'binding = "CF_VERSION_METADATA"\n\n'
        "[vars]\n"
        'AI_ANALYSIS = "false"\n'
    )
    return directory


def wrangler(served: Served, project: Path, *args: str, stdin: str | None = None) -> str:
    run = subprocess.run(
        [str(WRANGLER_BIN), *args],
        cwd=project,
        env=served.env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, f"wrangler {' '.join(args)} failed:\n{output[-4000:]}"
    return output


def run_status(served: Served) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("tgk-deploy")), "status", "--output", "json"],
        cwd=ROOT,
        env={**os.environ, **served.env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def status(served: Served) -> dict:
    run = run_status(served)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    return next(e for e in report["environments"] if e["script"] == SCRIPT) | {
        "email_rules": report["email_rules"]
    }


def wrangler_deployed(served: Served, project: Path) -> dict[str, tuple[float, list[str]]]:
    """`wrangler versions secret list`: each version that takes traffic, its share and
    its secrets (one call gives both: the header reads "-- Version ID (25%) secrets --")."""
    text = wrangler(served, project, "versions", "secret", "list")
    found: dict[str, tuple[float, list[str]]] = {}
    names: list[str] = []
    for line in text.splitlines():
        header = re.match(r"-- Version (\S+) \(([\d.]+)%\) secrets --", line)
        if header:
            names = []
            found[header.group(1)] = (float(header.group(2)), names)
        elif line.startswith("Secret Name: "):
            names.append(line.removeprefix("Secret Name: ").strip())
    return {version: (share, sorted(names)) for version, (share, names) in found.items()}


def wrangler_latest_secrets(served: Served, project: Path) -> list[str]:
    """`wrangler secret list` (GET .../secrets): the latest version's secrets."""
    text = wrangler(served, project, "secret", "list")
    return sorted(s["name"] for s in json.loads(text[text.index("[") :]))


def agree(served: Served, project: Path) -> dict:
    """tgk-deploy status and wrangler tell the same split and the same secrets."""
    seen = status(served)
    ours = {v["version_id"]: (v["percentage"], sorted(v["secret_names"])) for v in seen["split"]}
    assert ours == wrangler_deployed(served, project)
    assert seen["secret_names"] == sorted({n for _, names in ours.values() for n in names})
    return seen


def test_wrangler_drives_the_emulator_and_status_agrees(served: Served, project: Path):
    demo = status(served)
    assert demo["secret_names"] == ["SMOKE_TOKEN", "TELEGRAM_BOT_TOKEN"]  # seeded before phase 1

    # versions upload: a new version, no traffic
    uploaded = wrangler(served, project, "versions", "upload", "--message", "uploaded")
    upload_id = re.search(r"Worker Version ID: (\S+)", uploaded).group(1)
    assert agree(served, project)["split"] == demo["split"]

    # deploy: new code at 100 %, the secrets kept although wrangler names none
    deployed = wrangler(served, project, "deploy", "--message", "deployed")
    deploy_id = re.search(r"Current Version ID: (\S+)", deployed).group(1)
    after_deploy = agree(served, project)
    assert [v["version_id"] for v in after_deploy["split"]] == [deploy_id]
    assert after_deploy["secret_names"] == ["SMOKE_TOKEN", "TELEGRAM_BOT_TOKEN"]

    # secret put, bulk, delete: each a new version of the latest, deployed at 100 %
    wrangler(served, project, "secret", "put", "OPENAI_API_KEY", stdin="sk-wrangler\n")
    bulk = project / "bulk.json"
    bulk.write_text(json.dumps({"REPLY_SIGNING_SECRET": "a", "REPLY_SEND_TOKEN": "b"}))
    wrangler(served, project, "secret", "bulk", str(bulk))
    wrangler(served, project, "secret", "delete", "REPLY_SEND_TOKEN")
    secrets_changed = agree(served, project)
    expected = ["OPENAI_API_KEY", "REPLY_SIGNING_SECRET", "SMOKE_TOKEN", "TELEGRAM_BOT_TOKEN"]
    assert secrets_changed["secret_names"] == expected
    assert wrangler_latest_secrets(served, project) == expected
    with_secrets = secrets_changed["split"][0]["version_id"]

    # versions secret put: a new version with the secret, deployed nowhere yet
    made = wrangler(served, project, "versions", "secret", "put", "VS", stdin="v\n")
    staged = re.search(r"Created version (\S+) with secret VS", made).group(1)
    assert agree(served, project)["secret_names"] == expected  # traffic sees no VS
    assert wrangler_latest_secrets(served, project) == sorted([*expected, "VS"])

    # versions deploy: a split of the staged version and the live one
    wrangler(
        served,
        project,
        "versions",
        "deploy",
        f"{staged}@25%",
        f"{with_secrets}@75%",
        "--message",
        "split by hand",
        "--yes",
    )
    split = agree(served, project)
    assert {v["version_id"]: v["percentage"] for v in split["split"]} == {
        staged: 25.0,
        with_secrets: 75.0,
    }
    assert split["secret_names"] == sorted([*expected, "VS"])

    # rollback to the first upload: secrets changed since (10220), wrangler forces
    wrangler(served, project, "rollback", upload_id, "--message", ROLLBACK_MESSAGE, "--yes")
    rolled_back = agree(served, project)
    assert [v["version_id"] for v in rolled_back["split"]] == [upload_id]
    live = json.loads(wrangler(served, project, "deployments", "status", "--json"))
    assert rolled_back["message"] == live["annotations"]["workers/message"] == ROLLBACK_MESSAGE

    # d1 export by the database's name
    dump = project / "dump.sql"
    wrangler(served, project, "d1", "export", "tgk-email-db", "--remote", "--output", str(dump))
    assert "CREATE TABLE emails" in dump.read_text()

    # email routing rules by the zone's domain
    listed = wrangler(served, project, "email", "routing", "rules", "list", DEFAULT_ZONE_NAME)
    rules = dict(re.findall(r"Name:\s+(\S+)\s+Enabled:\s+(true|false)", listed))
    seen_rules = {r["name"]: r["enabled"] for r in rolled_back["email_rules"]}
    assert {name: enabled == "true" for name, enabled in rules.items()} == seen_rules

    # delete: the Worker is gone for both; status names what is missing (exit 6)
    wrangler(served, project, "delete", "--force")
    gone = run_status(served)
    assert gone.returncode == 6
    assert json.loads(gone.stdout)["missing"] == [
        f"Worker script '{SCRIPT}' (environments.production.script)"
    ]
