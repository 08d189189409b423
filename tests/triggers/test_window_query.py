"""A for: window asked as one instant subquery answers exactly what the range query answered.

On a real Prometheus, with series shaped as the Worker pushes them (one per
isolate, born at 1 with its first event, the Pushgateway serving the last total;
an isolate that goes quiet and whose series goes stale; a ratio with nothing
under it, so NaN, or something over nothing, so +Inf), every windowed
query of the phase files and a few sharper ones is asked both ways at instants
on and off the step grid: the points (times, values, NaN), the series, and the
verdicts of every check must be the same.

"The same" values means equal to 12 significant digits: Prometheus itself sums
a vector's series in an order that changes from one evaluation to the next, so
the range query alone answers 0.9962640099626401 on one run and ...402 on the
next (the last bit of a float), and so does the subquery.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta

import pytest

from tests.fixtures.prometheus import SYNTHETIC, PrometheusServer
from tests.fixtures.spec import REPO
from tgk_deploy.spec.load import load_spec
from tgk_deploy.triggers.evaluate import GateKind, LiveVersions, range_step, render_query
from tgk_deploy.triggers.gate import evaluate_checks
from tgk_deploy.triggers.prometheus import PrometheusClient, window_query
from tgk_deploy.triggers.samples import QueryRequest, QueryResult

pytestmark = pytest.mark.prometheus

SPEC = load_spec(REPO / "tgk-deploy.yaml")
VERSIONS = LiveVersions(candidate="v2", stable="v1")
MINUTE = timedelta(minutes=1)

PUSHED = SYNTHETIC.case("window-query-as-the-worker-pushes")
for isolate, version in (("5eed0001", "v1"), ("5eed0002", "v2")):
    labels = {"environment": "production", "version_id": version, "isolate": isolate}
    for status, per_second in (("delivered", 1.6), ("fallback", 0.004), ("failed", 0.002)):
        PUSHED.counter("tgk_email_delivery_total", per_second, {**labels, "status": status})
    for name, per_second in (
        ("tgk_email_ai_requests_total", 0.8),
        ("tgk_email_oncall_lookups_total", 0.3),
        ("tgk_email_reply_total", 0.1),
        ("tgk_email_ai_confidence_count", 0.8),
        ("tgk_email_ai_confidence_sum", 0.7),
    ):
        PUSHED.counter(name, per_second, labels)
    PUSHED.histogram(
        "tgk_email_routing_duration_seconds",
        1.0,
        {0.5: 0.2, 1: 0.5, 2: 0.97, 5: 0.99},
        labels,
    )
for index in range(12):  # fresh isolates, each born at 1 with its first failure
    offset = timedelta(hours=2, minutes=3 * index, seconds=20)
    for name, extra in (
        ("tgk_email_ai_failures_total", {"reason": "timeout"}),
        ("tgk_email_ai_failures_total", {"reason": "upstream_5xx"}),
        ("tgk_email_external_api_failures_total", {"api": "schedule"}),
        ("tgk_email_reply_total", {"status": "failed"}),
    ):
        PUSHED.pushed(name, [offset, offset + MINUTE], extra, isolate=f"f{index:07x}")
    PUSHED.pushed(
        "tgk_email_oncall_lookups_total",
        [offset],
        {"outcome": "responder"},
        isolate=f"f{index:07x}",
    )
PUSHED.pushed(  # external API requests only in one isolate, for half an hour
    "tgk_email_external_api_requests_total",
    [timedelta(hours=2, seconds=s) for s in range(0, 1800, 7)],
    {"api": "schedule"},
    isolate="a0000001",
)
QUIET = timedelta(hours=2, minutes=40)
PUSHED.gauge(  # scraped until QUIET, then stale: the window's end has no data
    "tgk_email_queue_depth", 3.0, {"environment": "production"}, end=QUIET
)
PUSHED.counter("tgk_email_retries_total", 0.0, {"environment": "production"})  # 0/0: NaN
PUSHED.counter("tgk_email_attempts_total", 0.0, {"environment": "production"})

EXTRA = (
    'tgk_email_queue_depth{environment="production"}',
    "sum(rate(tgk_email_retries_total[5m])) / sum(rate(tgk_email_attempts_total[5m]))",
    "sum(rate(tgk_email_ai_requests_total[5m])) / sum(rate(tgk_email_retries_total[5m]))",
    'sum by (version_id) (rate(tgk_email_delivery_total{status="delivered"}[5m]))',
    'sum(tgk_email_delivery_total{status="failed"}) > 1e12',  # always empty
    "scalar(sum(tgk_email_ai_requests_total))",  # a scalar: asked as a range query
)
WINDOWS = [c.for_ for p in SPEC.phases for c in (*p.success_criteria, *p.rollback_triggers)]
QUERIES = [
    render_query(c.query, VERSIONS)
    for p in SPEC.phases
    for c in (*p.success_criteria, *p.rollback_triggers)
    if c.for_
]
# on the hour; between scrapes; a whole minute off; half a step off a 2m step; a second before
OFFSETS = [timedelta(0), timedelta(seconds=-37), -MINUTE, timedelta(minutes=-3), -QUIET / 60]
AT = [PUSHED.at + offset for offset in OFFSETS] + [PUSHED.start + QUIET + timedelta(seconds=150)]
SHAPES = sorted({w for w in WINDOWS if w} | {timedelta(minutes=90), timedelta(hours=2)})


class RangeQueries(PrometheusClient):
    """The client as it was: every window a range query (the reference)."""

    def run(self, request: QueryRequest) -> QueryResult:
        return self._run(request, None)


@pytest.fixture(scope="module")
def clients(prometheus: PrometheusServer):
    with PrometheusClient(prometheus.url) as new, RangeQueries(prometheus.url) as old:
        yield new, old


def same(a: object, b: object) -> bool:
    """Equal, floats to 12 digits (see the module docstring), NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-12)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def points(results: Sequence[QueryResult]) -> list[object]:
    """Every answer as comparable data: the error, or each series' points."""
    shown: list[object] = []
    for result in results:
        if result.error:
            shown.append(("error", result.error))
            continue
        shown.append(
            sorted(
                (
                    tuple(sorted((k, v) for k, v in s.labels.items() if k != "__name__")),
                    [(p.time, p.value) for p in s.points],
                )
                for s in result.series
            )
        )
    return shown


def requests(query: str) -> list[QueryRequest]:
    return [
        QueryRequest(query=query, at=at, window=window, step=range_step(window))
        for at in AT
        for window in SHAPES
    ]


@pytest.mark.parametrize("query", [*dict.fromkeys(QUERIES), *EXTRA])
def test_the_subquery_gives_the_range_querys_points(clients, query):
    new, old = clients
    asked = requests(query)
    assert all(window_query(r) for r in asked) != query.startswith("scalar(")

    answered, reference = new.fetch(asked), old.fetch(asked)

    assert same(points(answered), points(reference)), (points(answered), points(reference))
    assert "1e12" in query or any(r.series or "+Inf" in (r.error or "") for r in reference)


def test_the_sharper_cases_do_say_what_they_are_for(clients):
    """The data above really has a stale end, NaN and +Inf (else the comparison proves less)."""
    _, old = clients
    stale, nan, inf, *_ = EXTRA
    ten = timedelta(minutes=10)
    late = PUSHED.start + QUIET + timedelta(seconds=150 + 300)
    [gap] = old.fetch([QueryRequest(query=stale, at=late, window=ten, step=MINUTE)])
    [nans] = old.fetch([QueryRequest(query=nan, at=PUSHED.at, window=ten, step=MINUTE)])
    [infinite] = old.fetch([QueryRequest(query=inf, at=PUSHED.at, window=ten, step=MINUTE)])

    assert 0 < len(gap.series[0].points) < 11
    assert all(math.isnan(p.value) for p in nans.series[0].points)
    assert infinite.error and "+Inf" in infinite.error


def test_off_the_grid_the_subquery_evaluates_where_the_range_query_did():
    at = PUSHED.at - timedelta(seconds=37)
    request = QueryRequest(query="sum(up)", at=at, window=timedelta(hours=1), step=2 * MINUTE)

    shaped = window_query(request)

    assert shaped is not None
    assert shaped.time.timestamp() % 120 == 0 and shaped.time >= at
    assert shaped.time - shaped.shift == at
    assert "offset" in shaped.query and shaped.query.endswith("[3660000ms:120000ms]")


def test_a_scalar_query_is_no_subquery():
    request = QueryRequest(query="scalar(up)", at=PUSHED.at, window=MINUTE * 5, step=MINUTE)

    assert window_query(request) is None


@pytest.mark.parametrize("at", AT, ids=[str(o) for o in OFFSETS] + ["after-quiet"])
def test_every_check_of_every_phase_gets_the_same_verdict_either_way(clients, at):
    new, old = clients
    for phase in SPEC.phases:
        for kind in GateKind:
            checks = phase.success_criteria if kind is GateKind.SUCCESS else phase.rollback_triggers
            now = evaluate_checks(phase.phase, kind, checks, new, VERSIONS, at)
            before = evaluate_checks(phase.phase, kind, checks, old, VERSIONS, at)

            assert now.outcome is before.outcome, (now.why, before.why)
            assert same(now.model_dump(), before.model_dump()), (now.why, before.why)
