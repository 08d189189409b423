"""The thirteen ways the gates misjudged incidents (issue 10), each on a real Prometheus.

Series are shaped as the Worker pushes them through the Pushgateway: one
series per isolate, version and environment; a fresh isolate's series appears
with its first push, already holding its first event (born at 1), and the
Pushgateway keeps serving every group's last total. Each case judges the
checks of the committed phase files, so a test fails when a phase file
regresses into the old mistake.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from tests.fixtures.prometheus import SYNTHETIC, Case, PrometheusServer
from tests.fixtures.spec import REPO
from tgk_deploy.errors import SpecError
from tgk_deploy.spec.load import load_spec
from tgk_deploy.spec.models import ResponseKind
from tgk_deploy.triggers.alerts import alert_rules
from tgk_deploy.triggers.evaluate import CheckVerdict, GateKind, LiveVersions, Outcome
from tgk_deploy.triggers.gate import evaluate_checks
from tgk_deploy.triggers.prometheus import PrometheusClient

pytestmark = pytest.mark.prometheus

SPEC = load_spec(REPO / "tgk-deploy.yaml")
PRODUCTION = LiveVersions()
STAGING = LiveVersions(environment="staging")
MINUTE = timedelta(minutes=1)
ROUTED = ("delivered", "fallback", "failed")
ALL_STATUSES = (*ROUTED, "rejected", "unrouted")


def steady_mail(
    case: Case,
    per_minute: float,
    shares: dict[str, float],
    *,
    environment: str = "production",
    isolate: str = "5eed0001",
) -> None:
    """A long-lived isolate handling ``per_minute`` mails split by status ``shares``."""
    labels = {"environment": environment, "version_id": "v1", "isolate": isolate}
    for status in ALL_STATUSES:
        rate = per_minute / 60 * shares.get(status, 0.0)
        case.counter("tgk_email_delivery_total", rate, {"status": status, **labels})


def fresh_isolates(
    case: Case, metric: str, offsets: list[timedelta], labels=None, *, prefix="f", mail=True
) -> None:
    """Each event from a new isolate: its series is born at 1 with that event.

    ``mail``: the event came with a mail that fell back to legacy (a routing error
    does); a webhook post handles no mail.
    """
    for index, offset in enumerate(offsets):
        isolate = f"{prefix}{index:07x}"
        case.pushed(metric, [offset], labels, isolate=isolate)
        if mail:
            case.pushed(
                "tgk_email_delivery_total", [offset], {"status": "fallback"}, isolate=isolate
            )


def trigger(phase: int, name: str):
    return next(t for t in SPEC.phase(phase).rollback_triggers if t.name == name)


def criterion(phase: int, name: str):
    return next(c for c in SPEC.phase(phase).success_criteria if c.name == name)


def judge(client, phase, check, at, versions=PRODUCTION, kind=GateKind.TRIGGERS) -> CheckVerdict:
    [verdict] = evaluate_checks(phase, kind, [check], client, versions, at).checks
    return verdict


@pytest.fixture(scope="module")
def client(prometheus: PrometheusServer):
    with PrometheusClient(prometheus.url) as client:
        yield client


HEALTHY = {"delivered": 0.98, "rejected": 0.01, "unrouted": 0.01}

# ---------------------------------------------------------------- 1. born at 1, yet counted

SIX_FRESH = SYNTHETIC.case("case-1-six-routing-errors-from-fresh-isolates")
steady_mail(SIX_FRESH, 100, HEALTHY)
fresh_isolates(
    SIX_FRESH,
    "tgk_email_route_failures_total",
    [timedelta(hours=2, minutes=35, seconds=30) + 4 * MINUTE * i for i in range(6)],
)
FIVE_FRESH = SYNTHETIC.case("case-1-five-routing-errors-from-fresh-isolates")
steady_mail(FIVE_FRESH, 100, HEALTHY)
fresh_isolates(
    FIVE_FRESH,
    "tgk_email_route_failures_total",
    [timedelta(hours=2, minutes=39, seconds=30) + 4 * MINUTE * i for i in range(5)],
)
ONE_PII = SYNTHETIC.case("case-1-one-pii-catch-in-a-fresh-isolate")
steady_mail(ONE_PII, 100, HEALTHY)
ONE_PII.pushed("tgk_email_pii_blocked_total", [timedelta(hours=2, minutes=55)], isolate="f1")


def test_1_six_routing_errors_each_from_a_new_isolate_fire(client):
    verdict = judge(client, 1, trigger(1, "routing-errors"), SIX_FRESH.at)
    assert verdict.outcome is Outcome.FAIL, verdict.why
    assert verdict.value == 6


def test_1_five_routing_errors_from_new_isolates_stay_quiet(client):
    verdict = judge(client, 1, trigger(1, "routing-errors"), FIVE_FRESH.at)
    assert verdict.outcome is Outcome.PASS, verdict.why
    assert verdict.value == 5


def test_1_one_pii_catch_in_a_new_isolate_fires(client):
    verdict = judge(client, 2, trigger(2, "pii-redaction-miss"), ONE_PII.at)
    assert verdict.outcome is Outcome.FAIL, verdict.why
    assert verdict.value == 1


# ---------------------------------------------------------------- 2. five is five


def test_2_exactly_five_errors_do_not_fire_on_ticks_between_samples(client):
    for seconds in (0, 7, 17, 31, 53):
        at = FIVE_FRESH.at + timedelta(seconds=seconds)
        verdict = judge(client, 1, trigger(1, "routing-errors"), at)
        assert verdict.value == 5, (seconds, verdict.why)  # no extrapolation to 5.045
        assert verdict.outcome is Outcome.PASS


# ---------------------------------------------------------------- 3. an outage is not delivery

OUTAGE = SYNTHETIC.case("case-3-telegram-outage-everything-falls-back")
steady_mail(OUTAGE, 100, {"fallback": 0.98, "rejected": 0.01, "unrouted": 0.01})
CALM = SYNTHETIC.case("case-3-calm")
steady_mail(CALM, 100, {"delivered": 0.999, "fallback": 0.001})


def test_3_a_total_telegram_outage_fires_and_fails_the_delivery_rate(client):
    fired = judge(client, 1, trigger(1, "delivery-rate-low"), OUTAGE.at)
    assert fired.outcome is Outcome.FAIL and fired.value == pytest.approx(1.0)
    rate = judge(client, 1, criterion(1, "delivery-rate"), OUTAGE.at, kind=GateKind.SUCCESS)
    assert rate.outcome is Outcome.FAIL and rate.value == pytest.approx(0.0)


def test_3_a_calm_hour_passes(client):
    assert judge(client, 1, trigger(1, "delivery-rate-low"), CALM.at).outcome is Outcome.PASS
    rate = judge(client, 1, criterion(1, "delivery-rate"), CALM.at, kind=GateKind.SUCCESS)
    assert rate.outcome is Outcome.PASS, rate.why


# ---------------------------------------------------------------- 4. rejected on purpose

REJECTS = SYNTHETIC.case("case-4-one-percent-to-a-reject-route")
steady_mail(REJECTS, 100, {"delivered": 0.98, "rejected": 0.01, "unrouted": 0.01})


def test_4_mail_rejected_or_unrouted_by_design_is_no_failure(client):
    verdict = judge(client, 1, trigger(1, "delivery-rate-low"), REJECTS.at)
    assert verdict.outcome is Outcome.PASS and verdict.value == 0, verdict.why


# ---------------------------------------------------------------- 5. each gate its environment

STAGING_BURNS = SYNTHETIC.case("case-5-staging-fails-production-healthy")
steady_mail(STAGING_BURNS, 100, {"delivered": 1.0})
steady_mail(STAGING_BURNS, 100, {"failed": 1.0}, environment="staging", isolate="57a9e001")


def test_5_staging_failures_fire_stagings_trigger_not_productions(client):
    check = trigger(1, "delivery-rate-low")
    production = judge(client, 1, check, STAGING_BURNS.at)
    staging = judge(client, 1, check, STAGING_BURNS.at, versions=STAGING)
    assert production.outcome is Outcome.PASS and production.value == 0
    assert staging.outcome is Outcome.FAIL and staging.value == pytest.approx(1.0)


# ---------------------------------------------------------------- 6. timeouts are watched

AI_LABELS = {"environment": "production", "version_id": "v1", "isolate": "a1000001"}


def ai_traffic(case: Case, per_minute: float, timeout_share: float) -> None:
    """AI calls with ``timeout_share`` running into AI_TIMEOUT_MS (observed at ~3.0 s)."""
    rate = per_minute / 60
    case.counter("tgk_email_ai_requests_total", rate, AI_LABELS)
    case.counter(
        "tgk_email_ai_failures_total", rate * timeout_share, {"reason": "timeout", **AI_LABELS}
    )
    buckets = {0.5: 0.0, 1: 0.5, 2: 0.9, 2.5: 0.95, 3: 0.95, 3.5: 1.0}
    fast = 1 - timeout_share
    for le in (0.1, 0.25, 0.5, 1, 2, 2.5, 3, 3.5, 5, 10, 30):
        share = (buckets.get(le, 1.0) * fast) if le <= 3 else 1.0
        case.counter(
            "tgk_email_ai_processing_seconds_bucket", rate * share, {"le": f"{le:g}", **AI_LABELS}
        )
    case.counter("tgk_email_ai_processing_seconds_bucket", rate, {"le": "+Inf", **AI_LABELS})
    case.counter("tgk_email_ai_processing_seconds_count", rate, AI_LABELS)


AI_TIMEOUTS = SYNTHETIC.case("case-6-ai-calls-time-out-at-the-cap")
ai_traffic(AI_TIMEOUTS, 60, 0.3)
AI_FINE = SYNTHETIC.case("case-6-ai-mostly-fine")
ai_traffic(AI_FINE, 60, 0.02)


def test_6_ai_timeouts_at_the_cap_fire_the_rfc_alert(client):
    check = trigger(2, "ai-timeouts")
    assert check.alert == "AISlowProcessing"
    verdict = judge(client, 2, check, AI_TIMEOUTS.at)
    assert verdict.outcome is Outcome.FAIL and verdict.value == pytest.approx(0.3)
    latency = judge(
        client, 2, criterion(2, "ai-added-latency"), AI_TIMEOUTS.at, kind=GateKind.SUCCESS
    )
    assert latency.outcome is Outcome.FAIL  # p95 lands at the cap, not under 3 s
    assert 3 < latency.value <= 3.5


def test_6_a_few_timeouts_stay_quiet(client):
    assert judge(client, 2, trigger(2, "ai-timeouts"), AI_FINE.at).outcome is Outcome.PASS


# ---------------------------------------------------------------- 7. confidence has a count

FEW_DOUBTS = SYNTHETIC.case("case-7-ten-unsure-analyses")
FEW_DOUBTS.events(
    "tgk_email_ai_confidence_count", 10, within=timedelta(minutes=14), labels=AI_LABELS
)
FEW_DOUBTS.counter("tgk_email_ai_confidence_sum", 0.0, AI_LABELS)
MANY_DOUBTS = SYNTHETIC.case("case-7-many-unsure-analyses")
MANY_DOUBTS.counter("tgk_email_ai_confidence_count", 1.0, AI_LABELS)
MANY_DOUBTS.counter("tgk_email_ai_confidence_sum", 0.5, AI_LABELS)


def test_7_low_confidence_on_ten_analyses_is_inconclusive_not_a_rollback(client):
    verdict = judge(client, 2, trigger(2, "ai-confidence-low"), FEW_DOUBTS.at)
    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.why.startswith("sample too small: 10 events"), verdict.why


def test_7_low_confidence_on_many_analyses_fires_and_is_named_for_what_it_is(client):
    check = trigger(2, "ai-confidence-low")
    verdict = judge(client, 2, check, MANY_DOUBTS.at)
    assert verdict.outcome is Outcome.FAIL and verdict.value == pytest.approx(0.5)
    assert "model-reported confidence" in check.description
    assert "accuracy_ratio" not in check.query


# ---------------------------------------------------------------- 8. strangers cannot roll back

BOGUS_POSTS = SYNTHETIC.case("case-8-fifty-bogus-webhook-posts")
steady_mail(BOGUS_POSTS, 100, HEALTHY)
fresh_isolates(
    BOGUS_POSTS,
    "tgk_email_webhook_auth_failures_total",
    [timedelta(hours=2, minutes=50) + timedelta(seconds=10 * i) for i in range(50)],
    {"reason": "bad_secret"},
    prefix="b",
    mail=False,
)
fresh_isolates(
    BOGUS_POSTS,
    "tgk_email_reply_rate_limited_total",
    [timedelta(hours=2, minutes=51) + timedelta(seconds=5 * i) for i in range(30)],
    prefix="r",
    mail=False,
)

CALLER_RAISABLE = {"tgk_email_webhook_auth_failures_total", "tgk_email_reply_rate_limited_total"}


def test_8_bogus_webhook_posts_alert_but_only_halt(client):
    phase = SPEC.phase(4)
    fired = [(check, judge(client, 4, check, BOGUS_POSTS.at)) for check in phase.rollback_triggers]
    names = {check.name for check, verdict in fired if verdict.outcome is Outcome.FAIL}
    assert names == {"webhook-auth-failures", "reply-abuse"}
    for check, verdict in fired:
        if verdict.outcome is Outcome.FAIL:
            assert phase.response_for(check).action is ResponseKind.HALT


def test_8_no_trigger_that_rolls_back_reads_a_caller_raisable_counter():
    for phase in SPEC.phases:
        for check in phase.rollback_triggers:
            if phase.response_for(check).action is ResponseKind.HALT:
                continue
            assert not any(name in check.query for name in CALLER_RAISABLE), check.name


# ---------------------------------------------------------------- 9. the safety net working


def test_9_a_pii_catch_halts_and_rolls_nothing_back():
    phase = SPEC.phase(2)
    check = trigger(2, "pii-redaction-miss")
    assert phase.response_for(check).action is ResponseKind.HALT
    assert "tgk_email_pii_blocked_total" in check.query
    assert check.severity.value == "medium"


# ---------------------------------------------------------------- 10. recovery ends the alarm

BLIP = SYNTHETIC.case("case-10-two-minute-outage")
BLIP_START = timedelta(hours=2)
steady_mail(BLIP, 100, {"delivered": 1.0})
BLIP.counter(
    "tgk_email_delivery_total",
    lambda offset: 100 / 60 if BLIP_START <= offset < BLIP_START + 2 * MINUTE else 0.0,
    {"status": "fallback", "environment": "production", "version_id": "v1", "isolate": "b11b"},
)


def test_10_a_two_minute_outage_fires_and_stops_within_for_plus_one_evaluation(client):
    check = trigger(1, "delivery-rate-low")
    outage_end = BLIP.start + BLIP_START + 2 * MINUTE
    during = judge(client, 1, check, outage_end + MINUTE)
    assert during.outcome is Outcome.FAIL, during.why
    after = judge(client, 1, check, outage_end + check.for_ + MINUTE)
    assert after.outcome is Outcome.PASS, after.why


def test_10_rate_triggers_look_back_no_further_than_their_for():
    """A window longer than for: would keep a recovered incident firing for the difference."""
    import re

    for phase in SPEC.phases:
        for check in phase.rollback_triggers:
            if not check.for_:
                continue
            windows = {
                int(n) * {"m": 60, "h": 3600}[u]
                for n, u in re.findall(r"offset (\d+)([mh])", check.query)
            }
            assert max(windows) <= check.for_.total_seconds(), check.name


# ---------------------------------------------------------------- 11. night traffic

NIGHT_DOWN = SYNTHETIC.case("case-11-sixty-an-hour-all-failing")
steady_mail(NIGHT_DOWN, 1, {"fallback": 0.7, "failed": 0.3})
NIGHT_CALM = SYNTHETIC.case("case-11-sixty-an-hour-delivered")
steady_mail(NIGHT_CALM, 1, {"delivered": 1.0})


def test_11_night_traffic_all_failing_fires_whatever_the_minimum_sample(client):
    ratio = judge(client, 1, trigger(1, "delivery-rate-low"), NIGHT_DOWN.at)
    assert ratio.outcome is Outcome.INCONCLUSIVE  # 2 mails in 2 minutes: too few for a ratio
    stopped = judge(client, 1, trigger(1, "delivery-stopped"), NIGHT_DOWN.at)
    assert stopped.outcome is Outcome.FAIL, stopped.why
    calm = judge(client, 1, trigger(1, "delivery-stopped"), NIGHT_CALM.at)
    assert calm.outcome is Outcome.PASS, calm.why


# ---------------------------------------------------------------- 12. severities and names


def test_12_the_rfc_alerts_their_severities_and_one_page_per_condition():
    rules = {r["alert"]: r for g in alert_rules(SPEC).groups for r in g["rules"]}
    assert rules["EmailDeliveryFailing"]["labels"]["severity"] == "critical"
    assert rules["AISlowProcessing"]["labels"]["severity"] == "high"
    assert rules["RoutingErrorsIncreasing"]["labels"]["severity"] == "medium"
    exprs = [r["expr"] for r in rules.values()]
    assert len(exprs) == len(set(exprs))
    for group in alert_rules(SPEC).groups:
        if group["name"].startswith("tgk-deploy-phase-5"):
            for rule in group["rules"]:
                assert "rollback_command" not in rule["annotations"]


# ---------------------------------------------------------------- 13. empty is never pass


def test_13_a_gate_with_no_checks_is_inconclusive(client):
    verdict = evaluate_checks(5, GateKind.SUCCESS, [], client, PRODUCTION, CALM.at)
    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert "nothing to judge" in verdict.why


def test_13_require_success_without_criteria_is_a_validate_error(tmp_path: Path):
    (tmp_path / "phases").mkdir()
    (tmp_path / "tgk-deploy.yaml").write_text((REPO / "tgk-deploy.yaml").read_text())
    for path in (REPO / "phases").glob("*.yaml"):
        text = path.read_text()
        if path.name.startswith("5-"):
            document = yaml.safe_load(text)
            text = text.split("success_criteria:")[0] + "rollback_triggers: []\non_trigger: halt\n"
            assert any(step.get("require_success") for step in document["steps"])
        (tmp_path / "phases" / path.name).write_text(text)
    (tmp_path / "wrangler").symlink_to(REPO / "wrangler")

    with pytest.raises(SpecError) as problem:
        load_spec(tmp_path / "tgk-deploy.yaml")
    assert "5-production-optimization.yaml:" in str(problem.value)
    assert "require_success in a phase without success_criteria" in str(problem.value)
