"""The sensor run: does a gate see what really happens to mail?

The real Worker in Miniflare handles 1,000 mails with faults in one minute of
simulated traffic (``wrangler/test/sensor.mjs``: Telegram 500s and timeouts, AI
timeouts, unknown recipients, rejects, bogus webhook posts) and pushes its
metrics to a real Pushgateway. After every 5 s of simulated traffic the
driver records the Pushgateway's exposition, the bytes a Prometheus scrape at
that moment would take; the Pushgateway goes on serving the last totals, as it
does. Those scrapes are backfilled at their simulated times into a real
Prometheus, and ``tgk-deploy gate`` and ``tgk-deploy backtest`` judge them.
Slow (about a minute): marked e2e, it runs once.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.fixtures.prometheus import (
    PrometheusServer,
    free_port,
    prometheus_binary,
    promtool_binary,
    stop_process,
)
from tests.fixtures.spec import REPO
from tgk_deploy.cli.app import app

pytestmark = [pytest.mark.e2e, pytest.mark.node, pytest.mark.prometheus]

WRANGLER = REPO / "wrangler"
PUSHGATEWAY = "/usr/bin/prometheus-pushgateway"
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # the simulated minute of traffic starts here
SCRAPE = timedelta(seconds=5)
SERVED_UNTIL = timedelta(minutes=12)  # the Pushgateway keeps serving the last totals
SAMPLE = re.compile(r"^(tgk_email_[a-z0-9_]+)(?:\{(.*)\})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
runner = CliRunner()


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def openmetrics(scrapes: list[tuple[datetime, str]]) -> str:
    """The scraped expositions as one OpenMetrics text with the scrape times (for promtool)."""
    series: dict[tuple[str, str], list[tuple[float, str]]] = {}
    for moment, text in scrapes:
        for line in text.splitlines():
            match = SAMPLE.match(line)
            if not match:
                continue
            name, labels, value = match.groups()
            # Prometheus drops empty labels (the Pushgateway's instance="")
            kept = sorted((k, v) for k, v in LABEL.findall(labels or "") if v != "")
            key = (name, ",".join(f'{k}="{v}"' for k, v in kept))
            series.setdefault(key, []).append((moment.timestamp(), value))
    lines = []
    for (name, labels), points in sorted(series.items()):
        lines += [f"{name}{{{labels}}} {value} {ts:.0f}" for ts, value in points]
    return "\n".join([*lines, "# EOF"]) + "\n"


def wait_ready(process: subprocess.Popen[bytes], url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the Pushgateway exited"
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # a real process starting up, not a simulated clock
    raise RuntimeError(f"the Pushgateway at {url} was not ready within {timeout}s")


@pytest.fixture(scope="module")
def sensor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    node = shutil.which("node")
    if node is None or not (WRANGLER / "node_modules" / "miniflare").is_dir():
        pytest.skip("Node.js and Miniflare are needed: .ci/install-node-deps.sh")
    if not Path(PUSHGATEWAY).exists():
        pytest.skip("the Pushgateway is needed: .ci/install-pushgateway.sh")
    if prometheus_binary() is None or promtool_binary() is None:
        pytest.skip("Prometheus is needed: .ci/install-prometheus.sh")
    directory = tmp_path_factory.mktemp("sensor")
    port = free_port()
    log = (directory / "pushgateway.log").open("wb")
    gateway = subprocess.Popen(
        [
            PUSHGATEWAY,
            f"--web.listen-address=127.0.0.1:{port}",
            # Debian's default persists to /var/lib/prometheus: this run keeps its own
            f"--persistence.file={directory / 'pushgateway.data'}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(gateway, url)
        run = subprocess.run(
            [node, "test/sensor.mjs", url, str(directory / "sensor.json")],
            cwd=WRANGLER,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        result = json.loads((directory / "sensor.json").read_text())
        result["final"] = httpx.get(f"{url}/metrics", timeout=5).text
    finally:
        stop_process(gateway)

    scrapes = [(T0 + timedelta(seconds=s["at_seconds"]), s["text"]) for s in result["scrapes"]]
    moment, last = scrapes[-1]
    while moment + SCRAPE <= T0 + SERVED_UNTIL:
        moment += SCRAPE
        scrapes.append((moment, last))
    server = PrometheusServer.start(openmetrics(scrapes), directory / "prometheus")
    try:
        yield {**result, "prometheus": server.url}
    finally:
        server.stop()


def cli(sensor: dict, monkeypatch: pytest.MonkeyPatch, *args: str):
    monkeypatch.chdir(REPO)
    env = {"PROMETHEUS_URL": sensor["prometheus"], "PROMETHEUS_TOKEN": "sensor"}
    return runner.invoke(app, [*args, "-o", "json"], env=env)


def fired(result) -> dict[str, dict]:
    verdict = json.loads(result.stdout)
    return {c["check"]: c for c in verdict["checks"] if c["outcome"] == "fail"}


def test_a_thousand_mails_in_a_minute_none_dropped(sensor):
    assert sensor["mails"] == 1000
    # what each mail became, as the MTA saw it: the plan, give or take a healthy call that a
    # loaded machine made miss its budget (a fallback too, and counted as one)
    seen, expected = sensor["seen"], sensor["expected"]
    assert sum(seen.values()) == 1000 and seen["failed"] == 0
    assert (seen["unrouted"], seen["rejected"]) == (expected["unrouted"], expected["rejected"])
    assert seen["fallback"] >= expected["fallback"]
    assert seen["delivered"] + seen["fallback"] == expected["delivered"] + expected["fallback"]
    pushed = {
        status: sum(
            float(v)
            for v in re.findall(
                rf'^tgk_email_delivery_total{{[^}}]*status="{status}"[^}}]*}} (\S+)$',
                sensor["final"],
                re.M,
            )
        )
        for status in sensor["expected"]
    }
    assert pushed == {k: float(v) for k, v in seen.items()}
    assert sum(pushed.values()) == 1000  # every mail counted once, the first one included
    assert len(sensor["scrapes"]) == 12  # one per 5 s of the simulated minute


def test_phase_1_gate_fires_delivery_rate_low_on_the_telegram_failures(sensor, monkeypatch):
    result = cli(
        sensor, monkeypatch, "gate", "-p", "1", "--criteria", "triggers",
        "--at", iso(T0 + timedelta(minutes=2, seconds=30)),
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    checks = fired(result)
    assert list(checks) == ["delivery-rate-low"]  # not delivery-stopped, not routing-errors
    # 60 of 920 routed mails fell back; unrouted and rejected mail does not count
    assert 0.03 < checks["delivery-rate-low"]["value"] < 0.2


def test_phase_2_gate_fires_ai_timeouts(sensor, monkeypatch):
    result = cli(
        sensor, monkeypatch, "gate", "-p", "2", "--criteria", "triggers",
        "--at", iso(T0 + timedelta(minutes=5, seconds=30)),
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    checks = fired(result)
    assert "ai-timeouts" in checks and "ai-errors" not in checks
    assert "pii-redaction-miss" not in checks
    assert 0.2 < checks["ai-timeouts"]["value"] < 0.6


def test_phase_4_gate_sees_the_bogus_posts_and_only_halts(sensor, monkeypatch):
    result = cli(
        sensor, monkeypatch, "gate", "-p", "4", "--criteria", "triggers",
        "--at", iso(T0 + timedelta(minutes=1, seconds=30)),
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert list(fired(result)) == ["webhook-auth-failures"]


def test_once_the_traffic_is_over_nothing_fires(sensor, monkeypatch):
    result = cli(
        sensor, monkeypatch, "gate", "-p", "1", "--criteria", "triggers",
        "--at", iso(T0 + timedelta(minutes=10)),
    )  # fmt: skip
    assert fired(result) == {}, result.output


def test_backtest_says_when_each_trigger_fired_and_for_how_long(sensor, monkeypatch):
    reports = {}
    for phase in ("1", "2", "4"):
        result = cli(
            sensor, monkeypatch, "backtest", "-p", phase,
            "--from", iso(T0), "--to", iso(T0 + timedelta(minutes=10)), "--step", "15s",
            "--incident-from", iso(T0), "--incident-to", iso(T0 + timedelta(minutes=1)),
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        reports[phase] = {c["check"]: c for c in json.loads(result.stdout)["triggers"]}
    delivery = reports["1"]["delivery-rate-low"]
    assert delivery["periods"], delivery
    # for: 2m: it fires 2 minutes after the first bad tick at the earliest, and a
    # 2-minute window lets it go within for + one evaluation after the incident ends
    assert delivery["fire_delay"] in ("2m", "2m15s")
    assert delivery["kept_firing"] in ("2m", "2m15s", "2m30s")
    assert reports["1"]["routing-errors"]["periods"] == []
    assert reports["1"]["delivery-stopped"]["periods"] == []
    timeouts = reports["2"]["ai-timeouts"]
    assert timeouts["fire_delay"] in ("5m", "5m15s")
    assert reports["4"]["webhook-auth-failures"]["periods"]
    print(  # the figures for the closing note (pytest -s shows them)
        {
            f"{phase}/{name}": (c["fire_delay"], c["kept_firing"])
            for phase, checks in reports.items()
            for name, c in checks.items()
        }
    )
