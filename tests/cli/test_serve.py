"""``tgk-deploy serve`` as an operator runs it: a process on the emulator, JSON log lines,
SIGTERM stops it after the rollback in progress; ``export alertmanager`` passes amtool."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from tests.cli.command_lines import check_options, resolve, tgk_deploy_calls
from tests.fixtures.alertmanager import alertmanager_binary
from tests.fixtures.cloudflare import PRODUCTION, seed_canary
from tests.fixtures.spec import REPO
from tests.receiver.conftest import TOKEN, alert, webhook
from tgk_deploy.cli.app import app
from tgk_deploy.emulator import DEFAULT_ACCOUNT_ID, DEFAULT_ZONE_ID

runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The real project and phases, with the journal in tmp_path."""
    text = (REPO / "tgk-deploy.yaml").read_text()
    text = text.replace("bundle: wrangler", f"bundle: {REPO / 'wrangler'}")
    text = text.replace(
        "journal: .tgk-deploy/journal.sqlite", f"journal: {tmp_path / 'journal.sqlite'}"
    )
    (tmp_path / "tgk-deploy.yaml").write_text(text)
    shutil.copytree(REPO / "phases", tmp_path / "phases")
    return tmp_path / "tgk-deploy.yaml"


def serve_process(emulator, project: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    environment = {
        **os.environ,
        "TGK_DEPLOY_PROJECT": str(project),
        "CLOUDFLARE_API_BASE_URL": emulator.url,
        "CLOUDFLARE_API_TOKEN": "emulator-test-token",
        "CLOUDFLARE_ACCOUNT_ID": DEFAULT_ACCOUNT_ID,
        "CLOUDFLARE_ZONE_ID": DEFAULT_ZONE_ID,
        "TGK_DEPLOY_RECEIVER_TOKEN": TOKEN,
        **env,
    }
    environment.pop("PROMETHEUS_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "tgk_deploy.cli.app", "serve", "--listen", "127.0.0.1:0", *args],
        env=environment,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def next_line(process: subprocess.Popen[str], event: str) -> dict:
    assert process.stderr is not None
    for raw in process.stderr:
        line = json.loads(raw)
        if line["event"] == event:
            return line
    raise AssertionError(f"the process ended before logging {event!r}")


def test_sigterm_mid_rollback_finishes_it_then_stops(emulator, cloudflare, project):
    ids = seed_canary(emulator)
    process = serve_process(emulator, project)
    try:
        url = next_line(process, "listening")["url"]
        assert httpx.get(f"{url}/healthz").json()["status"] == "ok"
        emulator.faults.set_latency(100)  # the rollback takes a while: SIGTERM lands inside it
        answer = httpx.post(
            f"{url}/alerts",
            json=webhook(alert(1, "delivery-rate-low", starts_at=datetime.now(UTC))),
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert answer.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    emulator.faults.set_latency(0)
    assert process.returncode == 0, err
    events = [json.loads(line) for line in err.splitlines()]
    kinds = [event["event"] for event in events]
    assert kinds.index("stopping") < kinds.index("alert") < kinds.index("stopped")
    handled = next(event for event in events if event["event"] == "alert")
    assert (handled["outcome"], handled["response"]) == ("acted", "immediate-rollback")
    assert TOKEN not in err and TOKEN not in out
    live = cloudflare.api.live_deployment(PRODUCTION)
    assert [(v.version_id, v.percentage) for v in live.versions] == [(ids["stable"], 100.0)]
    history = runner.invoke(app, ["history", "--project", str(project), "-o", "json"])
    runs = {run["command"]: run for run in json.loads(history.stdout)["runs"]}
    assert runs["serve"]["status"] == "stopped"
    assert [a["status"] for a in runs["serve"]["actions"]] == ["acted"]
    assert runs["rollback"]["status"] == "succeeded"


def test_serve_without_credentials_is_bad_input(emulator, project):
    process = serve_process(emulator, project, TGK_DEPLOY_RECEIVER_TOKEN="")
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "TGK_DEPLOY_RECEIVER_TOKEN" in err


@pytest.mark.alertmanager
def test_amtool_accepts_the_exported_receiver(tmp_path):
    if alertmanager_binary() is None or shutil.which("amtool") is None:
        pytest.skip("prometheus-alertmanager is not installed")
    result = runner.invoke(
        app, ["export", "alertmanager", "--url", "http://10.0.0.7:9095", "--auth", "basic"]
    )
    assert result.exit_code == 0, result.output
    snippet = yaml.safe_load(result.stdout)
    config = {
        "route": {"receiver": "oncall", **snippet["route"]},
        "receivers": [{"name": "oncall"}, *snippet["receivers"]],
    }
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config))

    checked = subprocess.run(
        ["amtool", "check-config", str(tmp_path / "alertmanager.yml")],
        capture_output=True,
        text=True,
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    webhook_config = snippet["receivers"][0]["webhook_configs"][0]
    assert webhook_config["url"] == "http://10.0.0.7:9095/alerts"
    assert webhook_config["http_config"]["basic_auth"]["password_file"]


@pytest.mark.alertmanager
def test_amtool_accepts_the_example_config():
    if shutil.which("amtool") is None:
        pytest.skip("prometheus-alertmanager is not installed")
    checked = subprocess.run(
        ["amtool", "check-config", str(REPO / "examples/alertmanager/alertmanager.yml")],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_systemd_unit_and_the_container_run_commands_the_cli_accepts():
    unit = (REPO / "examples/systemd/tgk-deploy-serve.service").read_text()
    [exec_start] = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    unit_argv = exec_start.split()[1:]
    containerfile = (REPO / "examples/container/Containerfile").read_text()
    entry = json.loads(containerfile.split("ENTRYPOINT ", 1)[1].splitlines()[0])
    cmd = json.loads(containerfile.split("\nCMD ", 1)[1].splitlines()[0])
    alertmanager_example = (REPO / "examples/alertmanager/alertmanager.yml").read_text()
    [export_line] = [
        line for line in alertmanager_example.splitlines() if "export alertmanager" in line
    ]

    for where, argv in (
        ("systemd unit", unit_argv),
        ("Containerfile", entry[1:] + cmd),
        ("alertmanager.yml", next(tgk_deploy_calls(export_line.lstrip("# ")))),
    ):
        command, args, path = resolve(argv)
        assert command is not None, f"{where}: tgk-deploy {path} is not a command"
        check_options(command, args, f"{where}: tgk-deploy {path}")
