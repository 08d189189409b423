"""Every success criterion and rollback trigger in phases/*.yaml, judged by a real Prometheus.

For each check the table below names the synthetic signal it reads and two
levels taken from the rollout RFC: a healthy one (the criterion holds / the
trigger stays quiet) and one just past the threshold (the criterion fails /
the trigger fires). Each level gets its own slot of synthetic time; so do
"no data at all" and "healthy numbers on too few events".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest

from tests.fixtures.prometheus import SYNTHETIC, Case, PrometheusServer, quantile_fractions
from tests.fixtures.spec import REPO
from tgk_deploy.spec.load import load_spec
from tgk_deploy.spec.models import MetricCheck
from tgk_deploy.triggers.evaluate import CheckVerdict, GateKind, LiveVersions, Outcome
from tgk_deploy.triggers.gate import evaluate_checks
from tgk_deploy.triggers.prometheus import PrometheusClient

pytestmark = pytest.mark.prometheus

SPEC = load_spec(REPO / "tgk-deploy.yaml")
VERSIONS = LiveVersions(candidate="cand-0002", stable="stab-0001")
HOUR = 3600.0

# ---------------------------------------------------------------- signals: what the Worker emits


def delivery(case: Case, delivered_ratio: float, per_hour: float) -> None:
    """Mail through the Worker; delivered and forwarded-to-legacy both count as delivered."""
    rate = per_hour / HOUR
    for status, share in (
        ("delivered", delivered_ratio * 0.9),
        ("forwarded_legacy", delivered_ratio * 0.1),
        ("failed", (1 - delivered_ratio) * 0.7),
        ("rejected", (1 - delivered_ratio) * 0.3),
    ):
        case.counter("tgk_email_delivery_total", rate * share, {"status": status})


def counted(metric: str, labels: dict[str, str] | None = None) -> Signal_:
    """``count`` events of ``metric`` in the last hour, on top of healthy mail volume."""

    def emit(case: Case, count: float, per_hour: float) -> None:
        delivery(case, 0.9995, per_hour)
        case.events(metric, int(count), within=timedelta(hours=1), labels=labels)

    return emit


def latency(metric: str) -> Signal_:
    def emit(case: Case, p95: float, per_hour: float) -> None:
        case.histogram(metric, per_hour / HOUR, quantile_fractions(0.95, p95), mean=p95 / 2)

    return emit


def gauge(metric: str) -> Signal_:
    def emit(case: Case, value: float, per_hour: float) -> None:
        del per_hour
        case.gauge(metric, value, {"model": "gpt-4o-mini"})
        case.gauge(metric, value, {"model": "fallback"})

    return emit


def external_api_failures(case: Case, failed_ratio: float, per_hour: float) -> None:
    """Schedule-API calls failing at ``failed_ratio``; healthy Telegram calls beside them."""
    schedule = {"api": "schedule"}
    case.counter("tgk_email_external_api_requests_total", per_hour / HOUR, schedule)
    case.counter("tgk_email_external_api_failures_total", per_hour / HOUR * failed_ratio, schedule)
    telegram = {"api": "telegram"}
    case.counter("tgk_email_external_api_requests_total", 10 * per_hour / HOUR, telegram)
    case.counter("tgk_email_external_api_failures_total", 0.0, telegram)


def replies(measured: str) -> Signal_:
    """Replies sent and failed; ``measured`` says which status the level is the share of."""

    def emit(case: Case, ratio: float, per_hour: float) -> None:
        sent = ratio if measured == "sent" else 1 - ratio
        case.counter("tgk_email_reply_total", per_hour / HOUR * sent, {"status": "sent"})
        case.counter("tgk_email_reply_total", per_hour / HOUR * (1 - sent), {"status": "failed"})

    return emit


Signal_ = Callable[[Case, float, float], None]


@dataclass(frozen=True)
class Signal:
    emit: Signal_
    healthy: float
    past_threshold: float
    per_hour: float = HOUR


AI_LATENCY = latency("tgk_email_ai_processing_seconds")
ROUTING_LATENCY = latency("tgk_email_routing_duration_seconds")
AI_ACCURACY = gauge("tgk_email_ai_accuracy_ratio")
ONCALL_ACCURACY = gauge("tgk_email_oncall_routing_accuracy_ratio")

SIGNALS: dict[tuple[int, str], Signal] = {
    (1, "delivery-rate"): Signal(delivery, 0.9995, 0.9985, per_hour=36000),
    (1, "delivery-rate-low"): Signal(delivery, 0.996, 0.994, per_hour=36000),
    (1, "routing-errors"): Signal(counted("tgk_email_route_failures_total"), 5, 6),
    (2, "ai-added-latency"): Signal(AI_LATENCY, 2.8, 3.2),
    (2, "sentiment-accuracy"): Signal(AI_ACCURACY, 0.86, 0.84),
    (2, "ai-p95-slow"): Signal(AI_LATENCY, 9, 11),
    (2, "ai-accuracy-low"): Signal(AI_ACCURACY, 0.72, 0.68),
    (2, "pii-detection-failure"): Signal(counted("tgk_email_pii_detection_failures_total"), 0, 1),
    (3, "oncall-routing-accuracy"): Signal(ONCALL_ACCURACY, 0.96, 0.94),
    (3, "oncall-routing-accuracy-low"): Signal(ONCALL_ACCURACY, 0.82, 0.78),
    (3, "external-api-failures"): Signal(external_api_failures, 0.45, 0.55),
    (4, "reply-success-rate"): Signal(replies("sent"), 0.985, 0.975, per_hour=600),
    (4, "reply-failures"): Signal(replies("failed"), 0.09, 0.11, per_hour=600),
    (4, "reply-auth-failures"): Signal(counted("tgk_email_reply_auth_failures_total"), 5, 6),
    (4, "reply-abuse"): Signal(counted("tgk_email_reply_rate_limited_total"), 20, 21),
    (5, "delivery-rate"): Signal(delivery, 0.9995, 0.9985, per_hour=36000),
    (5, "routing-p95"): Signal(ROUTING_LATENCY, 1.8, 2.2),
    (5, "ai-p95"): Signal(AI_LATENCY, 2.8, 3.2),
    (5, "delivery-rate-low"): Signal(delivery, 0.996, 0.994, per_hour=36000),
    (5, "routing-p95-slow"): Signal(ROUTING_LATENCY, 4.5, 5.5),
}

# ---------------------------------------------------------------- the checks, and a slot per level


@dataclass(frozen=True)
class PhaseCheck:
    phase: int
    kind: GateKind
    check: MetricCheck

    @property
    def id(self) -> str:
        return f"{self.phase}-{self.check.name}"


PHASE_CHECKS = [
    PhaseCheck(phase.phase, kind, check)
    for phase in SPEC.phases
    for kind, checks in (
        (GateKind.SUCCESS, phase.success_criteria),
        (GateKind.TRIGGERS, phase.rollback_triggers),
    )
    for check in checks
]
IDS = [c.id for c in PHASE_CHECKS]
WITH_MIN_SAMPLE = [c for c in PHASE_CHECKS if c.check.min_sample]

NO_DATA = SYNTHETIC.case("phase-checks-no-data")
HEALTHY: dict[str, Case] = {}
PAST_THRESHOLD: dict[str, Case] = {}
TOO_FEW: dict[str, Case] = {}
for entry in PHASE_CHECKS:
    signal = SIGNALS.get((entry.phase, entry.check.name))
    if signal is None:
        continue  # test_every_check_has_a_signal says which
    HEALTHY[entry.id] = SYNTHETIC.case(f"phase-{entry.id}-healthy")
    signal.emit(HEALTHY[entry.id], signal.healthy, signal.per_hour)
    PAST_THRESHOLD[entry.id] = SYNTHETIC.case(f"phase-{entry.id}-past-threshold")
    signal.emit(PAST_THRESHOLD[entry.id], signal.past_threshold, signal.per_hour)
    if entry.check.min_sample:
        TOO_FEW[entry.id] = SYNTHETIC.case(f"phase-{entry.id}-too-few")
        signal.emit(TOO_FEW[entry.id], signal.healthy, entry.check.min_sample.count / 4)


@pytest.fixture(scope="module")
def client(prometheus: PrometheusServer):
    with PrometheusClient(prometheus.url) as client:
        yield client


def judge_at(client: PrometheusClient, entry: PhaseCheck, case: Case) -> CheckVerdict:
    gate = evaluate_checks(entry.phase, entry.kind, [entry.check], client, VERSIONS, case.at)
    [verdict] = gate.checks
    return verdict


# ---------------------------------------------------------------- the specification


def test_every_check_in_the_phase_files_has_a_synthetic_signal():
    missing = [c.id for c in PHASE_CHECKS if (c.phase, c.check.name) not in SIGNALS]
    stale = sorted(set(SIGNALS) - {(c.phase, c.check.name) for c in PHASE_CHECKS})

    assert not missing, f"add these to SIGNALS: {missing}"
    assert not stale, f"no longer in the phase files: {stale}"


@pytest.mark.parametrize("entry", PHASE_CHECKS, ids=IDS)
def test_healthy_data_passes(client, entry: PhaseCheck):
    verdict = judge_at(client, entry, HEALTHY[entry.id])

    assert verdict.outcome is Outcome.PASS, verdict.why


@pytest.mark.parametrize("entry", PHASE_CHECKS, ids=IDS)
def test_data_just_past_the_threshold_fails(client, entry: PhaseCheck):
    verdict = judge_at(client, entry, PAST_THRESHOLD[entry.id])

    assert verdict.outcome is Outcome.FAIL, verdict.why
    assert verdict.value is not None


@pytest.mark.parametrize("entry", PHASE_CHECKS, ids=IDS)
def test_no_data_is_inconclusive(client, entry: PhaseCheck):
    verdict = judge_at(client, entry, NO_DATA)

    assert verdict.outcome is Outcome.INCONCLUSIVE, verdict.why


@pytest.mark.parametrize("entry", WITH_MIN_SAMPLE, ids=[c.id for c in WITH_MIN_SAMPLE])
def test_healthy_numbers_on_too_few_events_are_inconclusive(client, entry: PhaseCheck):
    verdict = judge_at(client, entry, TOO_FEW[entry.id])

    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.why.startswith("sample too small"), verdict.why


# ---------------------------------------------------------------- the RFC's numbers, spelled out


def phase_check(phase: int, name: str) -> PhaseCheck:
    return next(c for c in PHASE_CHECKS if c.phase == phase and c.check.name == name)


def test_rfc_delivery_at_99_6_percent_passes_and_at_99_4_percent_fires(client):
    entry = phase_check(1, "delivery-rate-low")

    healthy = judge_at(client, entry, HEALTHY[entry.id])
    fired = judge_at(client, entry, PAST_THRESHOLD[entry.id])

    assert healthy.value == pytest.approx(0.996) and healthy.outcome is Outcome.PASS
    assert fired.value == pytest.approx(0.994) and fired.outcome is Outcome.FAIL
    assert fired.values == pytest.approx([0.994] * 11)  # held for the whole 10m
    assert fired.sample_size == pytest.approx(36000)


def test_rfc_ai_p95_at_9_seconds_passes_and_at_11_seconds_fires(client):
    entry = phase_check(2, "ai-p95-slow")

    assert judge_at(client, entry, HEALTHY[entry.id]).value == pytest.approx(9)
    fired = judge_at(client, entry, PAST_THRESHOLD[entry.id])
    assert fired.value == pytest.approx(11) and fired.outcome is Outcome.FAIL


def test_rfc_five_routing_errors_in_an_hour_pass_and_six_fire(client):
    entry = phase_check(1, "routing-errors")

    healthy = judge_at(client, entry, HEALTHY[entry.id])
    fired = judge_at(client, entry, PAST_THRESHOLD[entry.id])

    assert healthy.value == 5 and healthy.outcome is Outcome.PASS
    assert fired.value == 6 and fired.outcome is Outcome.FAIL
