"""Gates on a real Prometheus with checks written here: relative triggers, windows, odd data."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.fixtures.prometheus import SYNTHETIC, PrometheusServer
from tgk_deploy.spec.models import MetricCheck, Trigger
from tgk_deploy.triggers.evaluate import GateKind, LiveVersions, Outcome
from tgk_deploy.triggers.gate import evaluate_checks
from tgk_deploy.triggers.prometheus import PrometheusClient, RetryPolicy

pytestmark = pytest.mark.prometheus

CANDIDATE, STABLE = "cand-0002", "stab-0001"
VERSIONS = LiveVersions(candidate=CANDIDATE, stable=STABLE)


def split_traffic(name: str, candidate_failed: float, stable_failed: float):
    """25 % of mail on the candidate, 75 % on stable, each failing at its own ratio."""
    case = SYNTHETIC.case(name)
    for version, per_second, failed in (
        (CANDIDATE, 2.5, candidate_failed),
        (STABLE, 7.5, stable_failed),
    ):
        case.counter(
            "tgk_email_delivery_total",
            per_second * (1 - failed),
            {"status": "delivered", "version_id": version},
        )
        case.counter(
            "tgk_email_delivery_total",
            per_second * failed,
            {"status": "failed", "version_id": version},
        )
    return case


CANDIDATE_WORSE = split_traffic(
    "relative-candidate-worse", candidate_failed=0.006, stable_failed=0.002
)
CANDIDATE_ALIKE = split_traffic(
    "relative-candidate-alike", candidate_failed=0.003, stable_failed=0.002
)
ONLY_STABLE = SYNTHETIC.case("relative-only-stable").counter(
    "tgk_email_delivery_total", 10, {"status": "delivered", "version_id": STABLE}
)

ACCURACY_DROPS_LATE = SYNTHETIC.case("accuracy-drops-5m-before").gauge(
    "tgk_email_ai_accuracy_ratio",
    lambda since: 0.6 if since >= timedelta(hours=3) - timedelta(minutes=5) else 0.9,
)
ACCURACY_WITH_GAP = (
    SYNTHETIC.case("accuracy-with-a-gap")
    .gauge("tgk_email_ai_accuracy_ratio", 0.6, end=timedelta(hours=2, minutes=30))
    .gauge("tgk_email_ai_accuracy_ratio", 0.6, begin=timedelta(hours=2, minutes=57))
)
TWO_MODELS = (
    SYNTHETIC.case("accuracy-two-models")
    .gauge("tgk_email_ai_accuracy_ratio", 0.9, {"model": "a"})
    .gauge("tgk_email_ai_accuracy_ratio", 0.5, {"model": "b"})
)


def failure_ratio(version: str) -> str:
    selector = f'version_id="{{{{{version}}}}}"'
    return (
        f'(sum(rate(tgk_email_delivery_total{{{selector},status="failed"}}[15m])) or vector(0))'
        f" / sum(rate(tgk_email_delivery_total{{{selector}}}[15m]))"
    )


CANDIDATE_FAILS_MORE = Trigger.model_validate(
    {
        "name": "candidate-failure-ratio",
        "description": "the candidate fails mail at more than twice the stable version's ratio",
        "query": failure_ratio("candidate"),
        "relative_to": failure_ratio("stable"),
        "op": ">",
        "threshold": 2,
        "for": "10m",
        "min_sample": {
            "query": 'sum(increase(tgk_email_delivery_total{version_id="{{candidate}}"}[15m]))',
            "count": 100,
        },
    }
)
ACCURACY_LOW = Trigger(
    name="accuracy-low", query="avg(tgk_email_ai_accuracy_ratio)", op="<", threshold=0.7,
    for_=timedelta(minutes=10),
)  # fmt: skip


@pytest.fixture(scope="module")
def client(prometheus: PrometheusServer):
    with PrometheusClient(prometheus.url) as client:
        yield client


def judge(client, check: MetricCheck, at, kind=GateKind.TRIGGERS, versions=VERSIONS):
    return evaluate_checks(3, kind, [check], client, versions, at)


def test_a_candidate_failing_at_three_times_stable_fires_the_relative_trigger(client):
    gate = judge(client, CANDIDATE_FAILS_MORE, CANDIDATE_WORSE.at)

    [verdict] = gate.checks
    assert verdict.outcome is Outcome.FAIL
    assert (
        'version_id="cand-0002"' in verdict.query
        and 'version_id="stab-0001"' in verdict.relative_query
    )
    assert verdict.value == pytest.approx(0.006)
    assert verdict.baseline == pytest.approx(0.002)
    assert verdict.effective_threshold == pytest.approx(0.004)
    assert verdict.sample_size == pytest.approx(2.5 * 900)
    assert verdict.why.startswith("fired: > threshold x baseline at all 11 points over 10m")


def test_a_candidate_within_twice_stable_passes(client):
    [verdict] = judge(client, CANDIDATE_FAILS_MORE, CANDIDATE_ALIKE.at).checks

    assert verdict.outcome is Outcome.PASS
    assert verdict.value == pytest.approx(0.003)


def test_a_relative_trigger_with_no_candidate_traffic_is_inconclusive(client):
    [verdict] = judge(client, CANDIDATE_FAILS_MORE, ONLY_STABLE.at).checks

    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.why == "no data: the minimum-sample query returned no series"


def test_a_relative_trigger_without_a_live_candidate_asks_nothing_and_is_inconclusive(client):
    [verdict] = judge(
        client, CANDIDATE_FAILS_MORE, CANDIDATE_WORSE.at, versions=LiveVersions(stable=STABLE)
    ).checks

    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert "no candidate version is live" in verdict.why


def test_for_does_not_fire_on_a_drop_that_began_five_minutes_ago(client):
    [now] = judge(client, ACCURACY_LOW, ACCURACY_DROPS_LATE.at).checks

    assert now.value == pytest.approx(0.6)
    assert now.outcome is Outcome.PASS
    assert now.why.startswith("not fired: held at 6 of 11 points over 10m")


def test_for_fires_once_the_drop_has_lasted_the_whole_window(client):
    [later] = judge(client, ACCURACY_LOW, ACCURACY_DROPS_LATE.at + timedelta(minutes=5)).checks

    assert later.outcome is Outcome.FAIL


def test_a_gap_in_the_window_is_inconclusive_even_if_every_point_seen_fires(client):
    [verdict] = judge(client, ACCURACY_LOW, ACCURACY_WITH_GAP.at).checks

    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert "points of the 10m window have no data" in verdict.why


def test_several_series_where_one_was_expected_is_inconclusive(client):
    check = MetricCheck(name="accuracy", query="tgk_email_ai_accuracy_ratio", op=">", threshold=0.8)

    [verdict] = judge(client, check, TWO_MODELS.at, kind=GateKind.SUCCESS).checks

    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert (
        "2 series where one was expected: "
        'tgk_email_ai_accuracy_ratio{model="a"}, tgk_email_ai_accuracy_ratio{model="b"}'
    ) in verdict.why


def test_a_gate_is_as_bad_as_its_worst_check(client):
    gate = evaluate_checks(
        2, GateKind.TRIGGERS, [CANDIDATE_FAILS_MORE, ACCURACY_LOW], client, VERSIONS,
        CANDIDATE_WORSE.at,
    )  # fmt: skip

    assert [c.outcome for c in gate.checks] == [Outcome.FAIL, Outcome.INCONCLUSIVE]
    assert gate.outcome is Outcome.FAIL
    assert gate.why.startswith("1 of 2 rollback triggers fired: candidate-failure-ratio: fired")


def test_an_unreachable_prometheus_makes_every_check_inconclusive_never_pass():
    policy = RetryPolicy(
        deadline=timedelta(milliseconds=200), first_wait=timedelta(milliseconds=10)
    )
    with PrometheusClient("http://127.0.0.1:9", retry=policy) as nowhere:
        gate = evaluate_checks(
            2, GateKind.TRIGGERS, [CANDIDATE_FAILS_MORE, ACCURACY_LOW], nowhere, VERSIONS,
            CANDIDATE_WORSE.at,
        )  # fmt: skip

    assert gate.outcome is Outcome.INCONCLUSIVE
    assert all("did not answer" in c.why for c in gate.checks)
