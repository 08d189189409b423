"""``tgk-deploy gate`` as CI meets it: exit 0 pass, 1 fail, 3 inconclusive, on a real Prometheus."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import httpx
import pytest
from typer.testing import CliRunner

from tests.fixtures.prometheus import SYNTHETIC, Case, PrometheusServer
from tests.fixtures.spec import REPO
from tgk_deploy.cli import gate as gate_command
from tgk_deploy.cli.app import app

pytestmark = pytest.mark.prometheus

runner = CliRunner()
TOKEN = "tok-SECRET-7f3a9"


WORKER = {"environment": "production", "version_id": "v1", "isolate": "a1b2c3d4"}


def phase_1_traffic(
    name: str, *, delivered: float, routing_errors: int, worker: dict[str, str] = WORKER
) -> Case:
    case = SYNTHETIC.case(name)
    rate = 10.0
    case.counter("tgk_email_delivery_total", rate * delivered, {"status": "delivered", **worker})
    case.counter("tgk_email_delivery_total", rate * (1 - delivered), {"status": "failed", **worker})
    case.events(
        "tgk_email_route_failures_total",
        routing_errors,
        within=timedelta(minutes=30),
        labels=worker,
    )
    return case


QUIET = phase_1_traffic("cli-phase-1-quiet", delivered=0.9995, routing_errors=2)
ROUTING_ERRORS = phase_1_traffic("cli-phase-1-routing-errors", delivered=0.9995, routing_errors=6)
EMPTY = SYNTHETIC.case("cli-phase-1-empty")
# no routing error at all: what phase 1's success criteria ask (its own isolate: they look 4d back)
CLEAN = phase_1_traffic(
    "cli-phase-1-clean",
    delivered=0.9995,
    routing_errors=0,
    worker={**WORKER, "isolate": "c1ea0001"},
)


@pytest.fixture
def env(prometheus: PrometheusServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(REPO)
    return {"PROMETHEUS_URL": prometheus.url, "PROMETHEUS_TOKEN": TOKEN}


def gate(env: dict[str, str], *args: str):
    return runner.invoke(app, ["gate", *args], env=env)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_quiet_triggers_exit_0(env):
    result = gate(env, "--phase", "1", "--criteria", "triggers", "--at", iso(QUIET.at))

    assert result.exit_code == 0, result.output
    assert "PASS: all 3 rollback triggers pass" in result.stdout
    assert "routing-errors" in result.stdout and "> 5" in result.stdout


def test_a_fired_trigger_exits_1_and_says_which_in_json(env):
    result = gate(
        env, "-p", "1", "--criteria", "triggers", "--at", iso(ROUTING_ERRORS.at), "-o", "json"
    )

    assert result.exit_code == 1
    verdict = json.loads(result.stdout)
    assert verdict["outcome"] == "fail"
    assert verdict["simulated"] is False
    fired = {c["check"]: c for c in verdict["checks"] if c["outcome"] == "fail"}
    assert list(fired) == ["routing-errors"]
    assert fired["routing-errors"]["value"] == 6
    assert fired["routing-errors"]["threshold"] == 5
    assert fired["routing-errors"]["query"].startswith(
        'sum((tgk_email_route_failures_total{environment="production"}'
    )
    assert verdict["evaluated_at"] == iso(ROUTING_ERRORS.at)


def test_success_criteria_are_the_default(env):
    result = gate(env, "--phase", "1", "--at", str(CLEAN.at.timestamp()), "-o", "json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["kind"] == "success"


def test_two_routing_errors_pass_the_triggers_but_not_the_no_routing_errors_criterion(env):
    triggers = gate(env, "--phase", "1", "--criteria", "triggers", "--at", iso(QUIET.at))
    success = gate(env, "--phase", "1", "--at", str(QUIET.at.timestamp()), "-o", "json")

    assert triggers.exit_code == 0, triggers.output
    assert success.exit_code == 1, success.output
    assert "no-routing-errors: does not hold: 2 is not == 0" in json.loads(success.stdout)["why"]


def test_no_data_exits_3_with_the_reason(env):
    result = gate(env, "--phase", "1", "--criteria", "triggers", "--at", iso(EMPTY.at))

    assert result.exit_code == 3
    assert "INCONCLUSIVE" in result.stdout and "no data" in result.stdout


def test_an_unreachable_prometheus_exits_3(env):
    unreachable = {**env, "PROMETHEUS_URL": "http://127.0.0.1:9"}

    result = gate(unreachable, "-p", "1", "--at", iso(QUIET.at), "--timeout", "0.3")

    assert result.exit_code == 3
    assert "did not answer" in result.stdout


def test_the_token_never_shows(env):
    for case in (QUIET, ROUTING_ERRORS, EMPTY):
        for fmt in ("text", "json"):
            result = gate(env, "-p", "1", "--criteria", "triggers", "--at", iso(case.at), "-o", fmt)
            assert TOKEN not in result.stdout + result.stderr


def test_a_missing_token_variable_is_bad_input(env):
    result = gate({**env, "PROMETHEUS_TOKEN": ""}, "-p", "1", "--at", iso(QUIET.at))

    assert result.exit_code == 2
    assert "PROMETHEUS_TOKEN is not set" in result.stderr


def test_an_unknown_phase_is_bad_input(env):
    result = gate(env, "-p", "9", "--at", iso(QUIET.at))

    assert result.exit_code == 2
    assert "there is no phase 9" in result.stderr


def test_wait_re_evaluates_until_the_deadline_on_an_injected_clock(env, monkeypatch):
    """--wait on 'now', where the synthetic data has nothing: inconclusive at every look."""
    now = [datetime.fromisoformat("2031-01-01T00:00:00+00:00")]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += timedelta(seconds=seconds)

    monkeypatch.setattr(gate_command, "_now", lambda: now[0])
    monkeypatch.setattr(gate_command, "_sleep", sleep)

    result = gate(env, "-p", "1", "--wait", "5m", "--interval", "2m", "-o", "json")

    assert result.exit_code == 3
    assert slept == [120, 120, 60]
    assert json.loads(result.stdout)["evaluated_at"] == "2031-01-01T00:05:00Z"


@pytest.mark.parametrize(
    ("name", "result"),
    [
        ("an object for a result", {"oops": 1}),
        ("+Inf for every query", "inf"),
        ("samples stamped 1970", "1970"),
    ],
)
def test_garbage_from_prometheus_is_inconclusive_with_the_reason_never_pass(
    monkeypatch, name, result
):
    """A server that answers success with garbage: exit 3 and why, not 0 and not a traceback."""
    import respx

    monkeypatch.chdir(REPO)
    at = QUIET.at

    def answer(request):
        from urllib.parse import parse_qs

        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        end = float(form.get("time") or form["end"])
        if result == "inf":
            body = [{"metric": {}, "value": [end, "+Inf"]}]
            kind = "vector"
            if "start" in form:
                kind = "matrix"
                step = float(form["step"].rstrip("s"))
                times = range(int(float(form["start"])), int(end) + 1, int(step))
                body = [{"metric": {}, "values": [[t, "+Inf"] for t in times]}]
        elif result == "1970":
            kind = "vector"
            body = [{"metric": {}, "value": [0, "0.9999"]}]
        else:
            kind, body = "vector", result
        return httpx.Response(
            200, json={"status": "success", "data": {"resultType": kind, "result": body}}
        )

    with respx.mock:
        respx.post(url__regex=r"http://prometheus\.test/api/v1/.*").mock(side_effect=answer)
        outcome = runner.invoke(
            app,
            ["gate", "-p", "1", "--criteria", "success", "--at", iso(at), "-o", "json"],
            env={"PROMETHEUS_URL": "http://prometheus.test", "PROMETHEUS_TOKEN": TOKEN},
        )

    assert outcome.exit_code == 3, (name, outcome.output)
    verdict = json.loads(outcome.stdout)
    assert verdict["outcome"] == "inconclusive"
    assert "Traceback" not in outcome.output
    reasons = " ".join(c["why"] for c in verdict["checks"])
    assert {
        "an object for a result": "cannot read",
        "+Inf for every query": "Inf",
        "samples stamped 1970": "1970",
    }[name] in reasons
