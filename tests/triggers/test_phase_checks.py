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

# One long-lived isolate, labelled as metrics.js labels every series (the fresh-isolate
# shapes are in test_incident_cases.py).
WORKER = {"environment": "production", "version_id": "v1", "isolate": "0a1b2c3d"}
# wrangler/src/metrics.js BUCKETS
AI_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 2.5, 3, 3.5, 5, 10, 30)
ROUTING_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 2.5, 5, 10)


def delivery(
    case: Case, delivered_ratio: float, per_hour: float, worker: dict[str, str] = WORKER
) -> None:
    """Routed mail delivered at ``delivered_ratio``; the rest falls back or fails.

    Rejected and unrouted mail (by design) come on top and must not count either way.
    """
    rate = per_hour / HOUR
    for status, share in (
        ("delivered", delivered_ratio),
        ("fallback", (1 - delivered_ratio) * 0.6),
        ("failed", (1 - delivered_ratio) * 0.4),
        ("rejected", 0.1),
        ("unrouted", 0.1),
    ):
        case.counter("tgk_email_delivery_total", rate * share, {"status": status, **worker})


def failing(case: Case, share: float, per_hour: float) -> None:
    """Delivery where ``share`` of routed mail fell back to legacy or failed."""
    delivery(case, 1 - share, per_hour)


def counted(metric: str, labels: dict[str, str] | None = None, *, within: timedelta) -> Signal_:
    """``count`` events of ``metric`` in the ``within`` before the case's end, on healthy mail."""

    def emit(case: Case, count: float, per_hour: float) -> None:
        delivery(case, 0.9995, per_hour)
        case.events(metric, int(count), within=within, labels={**(labels or {}), **WORKER})

    return emit


def latency(metric: str, buckets: tuple[float, ...]) -> Signal_:
    def emit(case: Case, p95: float, per_hour: float) -> None:
        fractions = quantile_fractions(0.95, p95, buckets)
        case.histogram(metric, per_hour / HOUR, fractions, WORKER, mean=p95 / 2)

    return emit


def confidence(case: Case, mean: float, per_hour: float) -> None:
    """The model's self-reported confidence as the Worker's histogram sum and count."""
    rate = per_hour / HOUR
    case.counter("tgk_email_ai_confidence_count", rate, WORKER)
    case.counter("tgk_email_ai_confidence_sum", rate * mean, WORKER)


def ai_failing(reason: str) -> Signal_:
    """AI calls of which ``share`` failed for ``reason`` (timeouts, or HTTP errors)."""

    def emit(case: Case, share: float, per_hour: float) -> None:
        rate = per_hour / HOUR
        case.counter("tgk_email_ai_requests_total", rate, WORKER)
        case.counter("tgk_email_ai_failures_total", rate * share, {"reason": reason, **WORKER})
        other = "network" if reason != "network" else "timeout"
        case.counter("tgk_email_ai_failures_total", 0.0, {"reason": other, **WORKER})

    return emit


# Checks over days (`offset 4d`, `[4d:1h]`) reach the slots of earlier cases: their
# series get an isolate of their own, so no other case's series is subtracted from them.
DAYS_ROUTING = {**WORKER, "isolate": "d4a70001"}
DAYS_AI = {**WORKER, "isolate": "d4a70002"}
DAYS_SCHEDULE = {**WORKER, "isolate": "d4a70003"}


def routing_errors_over_days(case: Case, count: float, per_hour: float) -> None:
    """``count`` routing errors in the last two hours of healthy mail."""
    delivery(case, 0.9995, per_hour, DAYS_ROUTING)
    case.events(
        "tgk_email_route_failures_total", int(count), within=timedelta(hours=2), labels=DAYS_ROUTING
    )


def delivery_while_ai_fails(case: Case, delivered_ratio: float, per_hour: float) -> None:
    """5 % of AI calls time out every hour while routed mail is delivered at ``delivered_ratio``."""
    delivery(case, delivered_ratio, per_hour, DAYS_AI)
    rate = per_hour / HOUR
    case.counter("tgk_email_ai_requests_total", rate, DAYS_AI)
    case.counter("tgk_email_ai_failures_total", rate * 0.05, {"reason": "timeout", **DAYS_AI})


def delivery_while_schedule_fails(case: Case, delivered_ratio: float, per_hour: float) -> None:
    """A tenth of schedule-API calls fail every hour while mail is delivered at ``delivered_ratio``."""
    delivery(case, delivered_ratio, per_hour, DAYS_SCHEDULE)
    schedule = {"api": "schedule", **DAYS_SCHEDULE}
    rate = per_hour / HOUR
    case.counter("tgk_email_external_api_requests_total", rate, schedule)
    case.counter("tgk_email_external_api_failures_total", rate * 0.1, schedule)


def oncall(case: Case, responder_share: float, per_hour: float) -> None:
    rate = per_hour / HOUR
    for outcome, share in (
        ("responder", responder_share),
        ("unknown", (1 - responder_share) / 2),
        ("failed", (1 - responder_share) / 2),
    ):
        case.counter("tgk_email_oncall_lookups_total", rate * share, {"outcome": outcome, **WORKER})


def external_api_failures(case: Case, failed_ratio: float, per_hour: float) -> None:
    """Schedule-API calls failing at ``failed_ratio``; healthy Telegram calls beside them."""
    schedule = {"api": "schedule", **WORKER}
    case.counter("tgk_email_external_api_requests_total", per_hour / HOUR, schedule)
    case.counter("tgk_email_external_api_failures_total", per_hour / HOUR * failed_ratio, schedule)
    telegram = {"api": "telegram", **WORKER}
    case.counter("tgk_email_external_api_requests_total", 10 * per_hour / HOUR, telegram)
    case.counter("tgk_email_external_api_failures_total", 0.0, telegram)


def replies(measured: str) -> Signal_:
    """Replies sent and failed; ``measured`` says which status the level is the share of."""

    def emit(case: Case, ratio: float, per_hour: float) -> None:
        sent = ratio if measured == "sent" else 1 - ratio
        rate = per_hour / HOUR
        case.counter("tgk_email_reply_total", rate * sent, {"status": "sent", **WORKER})
        case.counter("tgk_email_reply_total", rate * (1 - sent), {"status": "failed", **WORKER})

    return emit


Signal_ = Callable[[Case, float, float], None]


@dataclass(frozen=True)
class Signal:
    emit: Signal_
    healthy: float
    past_threshold: float
    per_hour: float = HOUR


AI_LATENCY = latency("tgk_email_ai_processing_seconds", AI_BUCKETS)
ROUTING_LATENCY = latency("tgk_email_routing_duration_seconds", ROUTING_BUCKETS)
QUARTER = timedelta(minutes=15)

SIGNALS: dict[tuple[int, str], Signal] = {
    (1, "delivery-rate"): Signal(delivery, 0.9995, 0.9985, per_hour=36000),
    (1, "delivery-rate-low"): Signal(failing, 0.004, 0.006, per_hour=36000),
    # night traffic, 60 mails an hour: all delivered, then none
    (1, "delivery-stopped"): Signal(delivery, 1.0, 0.0, per_hour=60),
    (1, "no-routing-errors"): Signal(routing_errors_over_days, 0, 1, per_hour=3600),
    (2, "ai-failures-keep-delivery"): Signal(delivery_while_ai_fails, 0.998, 0.994),
    (3, "external-api-failures-keep-delivery"): Signal(delivery_while_schedule_fails, 0.998, 0.994),
    (1, "routing-errors"): Signal(
        counted("tgk_email_route_failures_total", within=timedelta(minutes=30)), 5, 6
    ),
    (2, "ai-added-latency"): Signal(AI_LATENCY, 2.8, 3.2),
    (2, "ai-confidence"): Signal(confidence, 0.86, 0.84),
    (2, "ai-timeouts"): Signal(ai_failing("timeout"), 0.04, 0.06),
    (2, "ai-errors"): Signal(ai_failing("http_error"), 0.18, 0.22),
    (2, "ai-confidence-low"): Signal(confidence, 0.72, 0.68),
    (2, "pii-redaction-miss"): Signal(counted("tgk_email_pii_blocked_total", within=QUARTER), 0, 1),
    (3, "oncall-routing-accuracy"): Signal(oncall, 0.96, 0.94),
    (3, "oncall-routing-accuracy-low"): Signal(oncall, 0.82, 0.78),
    (3, "external-api-failures"): Signal(external_api_failures, 0.45, 0.55),
    (4, "reply-success-rate"): Signal(replies("sent"), 0.985, 0.975, per_hour=600),
    (4, "reply-failures"): Signal(replies("failed"), 0.09, 0.11, per_hour=600),
    (4, "webhook-auth-failures"): Signal(
        counted("tgk_email_webhook_auth_failures_total", {"reason": "bad_secret"}, within=QUARTER),
        5,
        6,
    ),
    (4, "reply-abuse"): Signal(
        counted("tgk_email_reply_rate_limited_total", within=QUARTER), 20, 21
    ),
    (5, "delivery-rate"): Signal(delivery, 0.9995, 0.9985, per_hour=36000),
    (5, "routing-p95"): Signal(ROUTING_LATENCY, 1.8, 2.2),
    (5, "ai-p95"): Signal(AI_LATENCY, 2.8, 3.2),
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

    assert healthy.value == pytest.approx(0.004) and healthy.outcome is Outcome.PASS
    assert fired.value == pytest.approx(0.006) and fired.outcome is Outcome.FAIL
    assert fired.values == pytest.approx([0.006] * 3)  # held for the whole 2m
    assert fired.sample_size == pytest.approx(1200)  # routed mail in 2 minutes


def test_ai_timeouts_at_4_percent_pass_and_at_6_percent_fire(client):
    entry = phase_check(2, "ai-timeouts")

    assert judge_at(client, entry, HEALTHY[entry.id]).value == pytest.approx(0.04)
    fired = judge_at(client, entry, PAST_THRESHOLD[entry.id])
    assert fired.value == pytest.approx(0.06) and fired.outcome is Outcome.FAIL


def test_rfc_five_routing_errors_in_an_hour_pass_and_six_still_occurring_fire(client):
    entry = phase_check(1, "routing-errors")

    healthy = judge_at(client, entry, HEALTHY[entry.id])
    fired = judge_at(client, entry, PAST_THRESHOLD[entry.id])

    assert healthy.value <= 5 and healthy.outcome is Outcome.PASS
    assert fired.value == 6 and fired.outcome is Outcome.FAIL
