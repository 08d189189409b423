"""Gates read from recording rules: the raw queries' verdicts, one light request per shape.

The live tests evaluate the exported rules with Prometheus' own engine
(``promtool tsdb create-blocks-from rules`` over series shaped as the Worker
pushes them) and compare every check of every phase, judged from the recorded
series, with the same check judged from the raw queries.
"""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.fixtures.prometheus import (
    PrometheusServer,
    SyntheticData,
    promtool_binary,
    quantile_fractions,
)
from tests.fixtures.spec import REPO
from tgk_deploy.spec.load import load_spec
from tgk_deploy.triggers.evaluate import CheckVerdict, GateKind, LiveVersions, render_query
from tgk_deploy.triggers.gate import evaluate_gates
from tgk_deploy.triggers.prometheus import PrometheusClient
from tgk_deploy.triggers.recorded import (
    FRESHNESS,
    INTERVAL,
    KEY,
    NO_DATA,
    RECORD,
    lookups,
    query_key,
    read,
    recordable,
    recording_rules,
    render_recording_file,
)
from tgk_deploy.triggers.samples import Point, QueryRequest, QueryResult, Series

SPEC = load_spec(REPO / "tgk-deploy.yaml")
COMMITTED = REPO / "alerts" / "tgk-deploy.recording.yml"
AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
EVERY_GATE = [
    (phase.phase, kind, checks)
    for phase in SPEC.phases
    for kind, checks in (
        (GateKind.SUCCESS, phase.success_criteria),
        (GateKind.TRIGGERS, phase.rollback_triggers),
    )
]


def every_query(environment: str) -> set[str]:
    versions = LiveVersions(environment=environment)
    return {
        render_query(query, versions)
        for phase in SPEC.phases
        for check in (*phase.success_criteria, *phase.rollback_triggers)
        for query in (
            check.query,
            check.relative_to,
            check.min_sample.query if check.min_sample else None,
        )
        if query
    }


# --------------------------------------------------------------------------- the rules file


def test_the_committed_file_is_what_export_recording_rules_writes():
    assert COMMITTED.read_text() == render_recording_file(
        recording_rules(SPEC, sorted(SPEC.project.environments))
    )


@pytest.mark.skipif(promtool_binary() is None, reason="promtool is not installed")
def test_promtool_accepts_the_committed_rules():
    checked = subprocess.run(
        [str(promtool_binary()), "check", "rules", str(COMMITTED)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_query_a_gate_asks_is_recorded_once_per_environment_under_its_key():
    document = recording_rules(SPEC, ["staging", "production"])
    assert [g["name"] for g in document["groups"]] == [
        "tgk-deploy-gate-queries-staging",
        "tgk-deploy-gate-queries-production",
    ]
    for group, environment in zip(document["groups"], ["staging", "production"], strict=True):
        assert group["interval"] == f"{int(INTERVAL.total_seconds())}s"
        keys = [rule["labels"][KEY] for rule in group["rules"]]
        assert len(keys) == len(set(keys))
        expected = {query_key(q) for q in every_query(environment) if recordable(q)}
        assert set(keys) == expected
        for rule in group["rules"]:
            assert rule["record"] == RECORD
            assert f'environment="{environment}"' in rule["expr"]


def test_queries_that_need_a_live_version_are_left_to_the_raw_path():
    phase = SPEC.phases[0]
    check = phase.rollback_triggers[0]
    versioned = check.model_copy(
        update={"query": 'sum(tgk_email_delivery_total{version_id="{{candidate}}"})'}
    )
    spec = SPEC.model_copy(
        update={
            "phases": [phase.model_copy(update={"rollback_triggers": [versioned]})],
        }
    )
    [group] = recording_rules(spec, ["production"])["groups"]
    assert all(
        "{{" not in rule["expr"] and "version_id" not in rule["expr"] for rule in group["rules"]
    )


# --------------------------------------------------------------------------- reading, pure


def request(query: str, window: timedelta | None = None) -> QueryRequest:
    return QueryRequest(query=query, at=AT, window=window, step=MINUTE if window else None)


def test_one_lookup_per_shape_and_scalars_stay_raw():
    asked = [
        request("sum(a)"),
        request("sum(b)"),
        request("sum(c)", 5 * MINUTE),
        request("sum(d)", 5 * MINUTE),
        request("sum(e)", 10 * MINUTE),
        request("scalar(sum(f))"),
    ]
    plan = lookups(asked)
    assert [sorted(lookup.wanted) for lookup in plan] == [
        sorted(query_key(q) for q in ("sum(a)", "sum(b)")),
        sorted(query_key(q) for q in ("sum(c)", "sum(d)")),
        [query_key("sum(e)")],
    ]
    for lookup in plan:
        assert lookup.request.query.startswith(f"last_over_time({RECORD}{{{KEY}=~")
        assert f"[{round(FRESHNESS.total_seconds() * 1000)}ms]" in lookup.request.query
        shape = next(iter(lookup.wanted.values()))
        assert (lookup.request.at, lookup.request.window) == (shape.at, shape.window)


def window_points(values: list[float], window: timedelta) -> list[Point]:
    start = AT - window
    return [Point(time=start + i * MINUTE, value=v) for i, v in enumerate(values)]


def test_a_request_is_vouched_for_only_when_its_rule_ran_at_every_point():
    window = 3 * MINUTE
    full, gapped, empty, absent = (request(f"sum({n})", window) for n in "wxyz")
    [lookup] = lookups([full, gapped, empty, absent])
    answer = QueryResult(
        request=lookup.request,
        result_type="matrix",
        series=[
            Series(
                labels={KEY: query_key(full.query), "le": "1"},
                points=window_points([1, 2, 3, 4], window),
            ),
            Series(
                labels={KEY: query_key(gapped.query)},
                points=window_points([1, 2, 3, 4], window)[1:],
            ),
            Series(
                labels={KEY: query_key(empty.query), NO_DATA: "1"},
                points=window_points([math.nan] * 4, window),
            ),
        ],
    )
    vouched = read(lookup, answer)
    assert set(vouched) == {query_key(full.query), query_key(empty.query)}
    [series] = vouched[query_key(full.query)].series
    assert series.labels == {"le": "1"}
    assert [p.value for p in series.points] == [1, 2, 3, 4]
    assert vouched[query_key(empty.query)].series == []
    assert all(result.recorded for result in vouched.values())
    assert vouched[query_key(full.query)].request == full


def test_a_failed_lookup_vouches_for_nothing():
    [lookup] = lookups([request("sum(a)")])
    assert read(lookup, QueryResult(request=lookup.request, error="timeout")) == {}


# --------------------------------------------------------------------------- on a real Prometheus

DATA = SyntheticData()
INCIDENT = DATA.case("recorded-telegram-outage")
OUTAGE = timedelta(hours=2, minutes=50)  # the last ten minutes: every delivery fails


def _mail(case, isolate: str, version: str) -> None:
    labels = {"environment": "production", "version_id": version, "isolate": isolate}
    delivered = lambda t: 0.0 if t >= OUTAGE else 0.8  # noqa: E731
    failed = lambda t: 0.8 if t >= OUTAGE else 0.0005  # noqa: E731
    case.counter("tgk_email_delivery_total", delivered, {**labels, "status": "delivered"})
    case.counter("tgk_email_delivery_total", failed, {**labels, "status": "failed"})
    case.counter("tgk_email_delivery_total", 0.01, {**labels, "status": "rejected"})
    case.counter("tgk_email_ai_requests_total", 0.6, labels)
    case.counter("tgk_email_ai_failures_total", 0.002, {**labels, "reason": "timeout"})
    case.histogram("tgk_email_ai_processing_seconds", 0.6, quantile_fractions(0.95, 2.0), labels)
    case.histogram("tgk_email_routing_duration_seconds", 0.8, quantile_fractions(0.95, 0.9), labels)
    case.counter("tgk_email_ai_confidence_count", 0.6, labels)
    case.counter("tgk_email_ai_confidence_sum", 0.5, labels)
    case.counter("tgk_email_oncall_lookups_total", 0.1, {**labels, "outcome": "responder"})
    case.counter("tgk_email_reply_total", 0.05, {**labels, "status": "sent"})


for index in range(4):
    _mail(INCIDENT, f"5eed000{index}", "v1" if index < 3 else "v2")
for minute in range(6):  # routing errors, each from a fresh isolate, as the Worker pushes them
    INCIDENT.pushed(
        "tgk_email_route_failures_total",
        [OUTAGE + timedelta(minutes=minute, seconds=20)],
        isolate=f"f00{minute}",
    )


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(with the rules backfilled up to a minute past the case, without them)."""
    if promtool_binary() is None:
        pytest.skip("Prometheus is not installed (apt-get install prometheus)")
    plain = PrometheusServer.start(DATA.openmetrics(), tmp_path_factory.mktemp("plain"))
    source = PrometheusServer.start(DATA.openmetrics(), tmp_path_factory.mktemp("recorded"))
    rules = render_recording_file(recording_rules(SPEC, ["production"]))
    recorded = source.record(rules, INCIDENT.start, INCIDENT.at + MINUTE)
    try:
        yield recorded.url, plain.url
    finally:
        recorded.stop()
        plain.stop()


def judge_all(url: str, at: datetime, *, recording_rules: bool) -> list[CheckVerdict]:
    with PrometheusClient(url, recording_rules=recording_rules) as client:
        gates = evaluate_gates(EVERY_GATE, client, LiveVersions(), at)
    return [check for gate in gates for check in gate.checks]


def same_numbers(recorded: CheckVerdict, raw: CheckVerdict) -> None:
    assert recorded.outcome is raw.outcome, (recorded.check, recorded.why, raw.why)
    assert recorded.check == raw.check
    for field in ("value", "sample_size", "baseline"):
        ours, theirs = getattr(recorded, field), getattr(raw, field)
        assert (ours is None) == (theirs is None), (recorded.check, field)
        if theirs is not None:
            assert ours == pytest.approx(theirs, rel=1e-9, nan_ok=True), (recorded.check, field)
    assert recorded.values == pytest.approx(raw.values, rel=1e-9), recorded.check


def last_evaluation(url: str, at: datetime) -> datetime:
    """When Prometheus last evaluated the rules at or before ``at`` (its group's own offset)."""
    answer = httpx.post(
        f"{url}/api/v1/query",
        data={"query": f"max(timestamp({RECORD}))", "time": f"{at.timestamp():.3f}"},
    ).json()
    return datetime.fromtimestamp(float(answer["data"]["result"][0]["value"][1]), tz=UTC)


@pytest.mark.prometheus
@pytest.mark.parametrize(
    "before", [timedelta(0), 7 * MINUTE, 5 * MINUTE - timedelta(seconds=17)], ids=str
)
def test_every_check_read_from_the_rules_judges_as_its_raw_query_at_the_last_evaluation(
    servers, before
):
    recorded_url, _ = servers
    at = INCIDENT.at - before
    evaluated = last_evaluation(recorded_url, at)
    assert timedelta(0) <= at - evaluated < INTERVAL
    recorded = judge_all(recorded_url, at, recording_rules=True)
    raw = judge_all(recorded_url, evaluated, recording_rules=False)
    assert {v.outcome.value for v in raw} >= {"pass", "fail"}  # the incident fires something
    for from_rules, from_queries in zip(recorded, raw, strict=True):
        assert from_rules.recorded, from_rules.check
        assert not from_queries.recorded
        same_numbers(from_rules, from_queries)


@pytest.mark.prometheus
def test_without_the_rules_or_once_they_stop_every_query_is_asked_raw(servers):
    recorded_url, plain_url = servers
    for url, at in ((plain_url, INCIDENT.at), (recorded_url, INCIDENT.at + 2 * MINUTE)):
        asked = judge_all(url, at, recording_rules=True)
        raw = judge_all(url, at, recording_rules=False)
        assert not any(v.recorded for v in asked)
        for ours, theirs in zip(asked, raw, strict=True):
            same_numbers(ours, theirs)  # Prometheus sums in no fixed order: equal to 1e-9


@pytest.mark.prometheus
def test_a_query_edited_since_the_export_is_asked_raw(servers):
    recorded_url, _ = servers
    phase = SPEC.phase(1)
    trigger = phase.rollback_triggers[0]
    edited = trigger.model_copy(update={"query": f"({trigger.query.strip()}) * 1"})
    with PrometheusClient(recorded_url, recording_rules=True) as client:
        [gate] = evaluate_gates(
            [(1, GateKind.TRIGGERS, [edited, *phase.rollback_triggers[1:]])],
            client,
            LiveVersions(),
            INCIDENT.at,
        )
    assert not gate.checks[0].recorded
    assert all(check.recorded for check in gate.checks[1:])


def sent_bodies(url: str) -> list[str]:
    """The bodies of every request one client sends for all the gates at once."""
    sent: list[str] = []

    class Counting(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            sent.append(request.read().decode())
            return super().handle_request(request)

    with PrometheusClient(url, recording_rules=True, transport=Counting()) as client:
        evaluate_gates(EVERY_GATE, client, LiveVersions(), INCIDENT.at)
    return sent


@pytest.mark.prometheus
def test_with_the_rules_a_gate_is_one_request_per_shape_and_without_them_one_more_round(servers):
    recorded_url, plain_url = servers
    asked = {
        r.cache_key(): r
        for phase, kind, checks in EVERY_GATE
        for r in _requests(phase, kind, checks)
    }
    shapes = len(lookups(asked.values()))
    assert shapes < len(asked) / 4
    assert len(sent_bodies(recorded_url)) == shapes
    assert len(sent_bodies(plain_url)) == shapes + len(asked)


def _requests(phase, kind, checks):
    from tgk_deploy.triggers.evaluate import plan_check

    for check in checks:
        yield from plan_check(
            check, phase=phase, kind=kind, at=INCIDENT.at, versions=LiveVersions()
        ).requests()


@pytest.mark.prometheus
def test_gate_says_which_checks_it_read_from_the_rules(servers, monkeypatch):
    from typer.testing import CliRunner

    from tgk_deploy.cli.app import app

    recorded_url, plain_url = servers
    monkeypatch.chdir(REPO)
    at = INCIDENT.at.isoformat().replace("+00:00", "Z")
    args = ["gate", "-p", "1", "--criteria", "triggers", "--at", at]
    for url, recorded in ((recorded_url, True), (plain_url, False)):
        env = {"PROMETHEUS_URL": url, "PROMETHEUS_TOKEN": "t"}
        as_json = CliRunner().invoke(app, [*args, "-o", "json"], env=env)
        assert as_json.exit_code == 1, as_json.output  # the outage fires phase 1's triggers
        assert {c["recorded"] for c in json.loads(as_json.stdout)["checks"]} == {recorded}
        text = CliRunner().invoke(app, args, env=env).stdout
        assert ("3 of 3 checks read from tgk-deploy's recording rules" in text) is recorded
