"""The phase files held against the user's RFC (ALC-RFC-006), row by row.

The tables below are written from the RFC (the reference copy is quoted in
each row): its deployment steps and their day or week, its risk levels, its
success criteria and its rollback triggers. Each row must have its
counterpart in the phase files, or the file must say why not in a
``rationale:``; a counterpart that departs (a later day is fine, an earlier
one is not; another threshold, another risk) needs a ``rationale:`` too.
Day numbers count from 0 = the RFC's "Day 1" (its first day, week 1).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.fixtures.spec import REPO
from tgk_deploy.planner.simulate import fresh_state, walk_rollout
from tgk_deploy.spec.load import load_spec
from tgk_deploy.spec.models import DeployAction, Phase, Spec

SPEC: Spec = load_spec(REPO / "tgk-deploy.yaml")


def day(n: int) -> int:
    return n - 1


def week(n: int, on_day: int = 1) -> int:
    return 7 * (n - 1) + on_day - 1


RFC_WEEKS = 11

# phase, the RFC's deployment step (verbatim), the earliest day it may land, the step here
STEPS = [
    (1, "Day 1: Deploy basic `tgk-email-orchestrator` Worker", day(1), "staging"),
    (1, "Day 3: Enable routing for 10% of production traffic", day(3), "canary-10"),
    (1, "Day 7: Increase to 50% traffic split", day(7), "canary-50"),
    (1, "Day 10: Full production deployment", day(10), "full"),
    (1, "Day 14: Remove old routing system", day(14), "retire-legacy"),
    (2, "Week 3: Deploy AI analysis to staging", week(3), "staging"),
    (2, "Week 3, Day 5: AI analysis for 25% of emails in production", week(3, 5), "canary-25"),
    (2, "Week 4: Full AI deployment", week(4), "full"),
    (2, "Week 4, Day 5: AI accuracy monitoring begins", week(4, 5), "accuracy-monitoring"),
    (
        3,
        "Week 5: Deploy dynamic routing to staging with external API mocks",
        week(5),
        "staging-mocks",
    ),
    (3, "Week 6: Integrate real external APIs (PagerDuty, Opsgenie)", week(6), "staging-apis"),
    (3, "Week 6, Day 5: Dynamic routing for critical alerts only", week(6, 5), "critical-only"),
    (3, "Week 7: Full dynamic routing deployment", week(7), "full"),
    (3, "Week 7, Day 5: Interactive buttons enabled", week(7, 5), "interactive-buttons"),
    (4, "Week 8: Deploy email reply functionality to staging", week(8), "staging"),
    (4, "Week 8, Day 5: Email replies enabled for pilot users", week(8, 5), "pilot"),
    (4, "Week 9: Full bidirectional deployment", week(9), "full"),
    (4, "Week 9, Day 5: Reply threading validation", week(9, 5), "threading-validation"),
    (5, "Week 10: Performance optimizations", week(10), "performance-check"),
    (5, "Week 10, Day 5: Enhanced monitoring deployed", week(10, 5), "monitoring-check"),
    (5, "Week 11: Final security hardening", week(11), "security-hardening"),
    (5, "Week 11, Day 5: Go-live readiness review", week(11, 5), "go-live-review"),
]

RISK = {1: "low", 2: "medium", 3: "high", 4: "medium", 5: "low"}

# phase, the RFC's success criterion (verbatim), its counterpart:
#   ("check", name, op, threshold): a measured success criterion (op/threshold None: no number in the RFC)
#   ("checklist", words): an item of a step's approval checklist that starts with these words
CRITERIA = [
    (1, "99.9% email delivery rate maintained", ("check", "delivery-rate", ">=", 0.999)),
    (1, "No routing errors in logs", ("check", "no-routing-errors", "==", 0)),
    (1, "Basic functionality works for all teams", ("checklist", "Basic functionality works")),
    (1, "Monitoring dashboards show expected metrics", ("checklist", "Monitoring dashboards show")),
    (2, "AI processing adds < 3 seconds to email delivery", ("check", "ai-added-latency", "<", 3)),
    (2, "Sentiment analysis accuracy > 85%", ("check", "ai-confidence", ">", 0.85)),
    (2, "No PII leakage incidents", ("checklist", "No PII leakage incidents")),
    (
        2,
        "AI failures don't break email delivery",
        ("check", "ai-failures-keep-delivery", None, None),
    ),
    (3, "On-call routing accuracy > 95%", ("check", "oncall-routing-accuracy", ">", 0.95)),
    (3, "Interactive buttons work for all users", ("checklist", "Interactive buttons work")),
    (
        3,
        "External API failures handled gracefully",
        ("check", "external-api-failures-keep-delivery", None, None),
    ),
    (3, "No routing loops or infinite redirects", ("checklist", "No routing loops")),
    (4, "Email replies deliver successfully", ("check", "reply-success-rate", None, None)),
    (4, "Reply threading works correctly", ("checklist", "Reply threading works")),
    (4, "No authentication bypasses", ("checklist", "No authentication bypasses")),
    (4, "Reply rate limits enforced", ("checklist", "Reply rate limits enforced")),
    (5, "Performance meets all SLAs", ("check", "routing-p95", None, None)),
    (5, "Monitoring covers all failure modes", ("checklist", "Monitoring covers all failure")),
    (5, "Security assessment passed", ("checklist", "Security assessment passed")),
    (5, "Documentation complete", ("checklist", "Documentation complete")),
]

# phase, the RFC's rollback trigger (verbatim), its counterpart:
#   ("trigger", name, op, threshold): a rollback trigger (op/threshold None: no number in the RFC)
#   ("halt",): no metric can say it; `tgk-deploy halt` is the documented way, and the step says so
TRIGGERS = [
    # the failed share above 0.5 %: the same statement as delivery below 99.5 %
    (1, "Email delivery rate drops below 99.5%", ("trigger", "delivery-rate-low", ">", 0.005)),
    (1, "> 5 routing errors per hour", ("trigger", "routing-errors", ">", 5)),
    (1, "Critical functionality broken", ("smoke",)),
    (2, "AI processing causes > 10 second delays", ("trigger", "ai-timeouts", ">", 10)),
    (2, "AI accuracy < 70%", ("trigger", "ai-confidence-low", "<", 0.70)),
    (2, "PII detection failures", ("trigger", "pii-redaction-miss", None, None)),
    (3, "On-call routing accuracy < 80%", ("trigger", "oncall-routing-accuracy-low", "<", 0.80)),
    (3, "Interactive buttons cause user confusion", ("halt",)),
    (
        3,
        "External API outages cause widespread failures",
        ("trigger", "external-api-failures", None, None),
    ),
    (4, "Email reply failures > 10%", ("trigger", "reply-failures", ">", 0.10)),
    (4, "Authentication issues discovered", ("trigger", "webhook-auth-failures", None, None)),
    (4, "Reply spam/abuse detected", ("trigger", "reply-abuse", None, None)),
]


def _landing_days() -> dict[tuple[int, str], int]:
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    scripts = {name: env.script for name, env in SPEC.project.environments.items()}
    return {
        (p.phase, p.step): (state.observed_at - start).days
        for p, state in walk_rollout(SPEC, fresh_state(start, scripts), "b" * 64)
    }


LANDING = _landing_days()


def _explained(phase: Phase, rfc_text: str) -> bool:
    """A row without its counterpart passes only when the phase file says why, naming the row."""
    return bool(phase.rationale) and rfc_text.lower() in " ".join(phase.rationale.split()).lower()


def _checklist(phase: Phase) -> list[str]:
    return [item for s in phase.steps if s.approval for item in s.approval.checklist]


@pytest.mark.parametrize(("number", "rfc", "earliest", "step_id"), STEPS, ids=[r[1] for r in STEPS])
def test_every_rfc_step_lands_no_earlier_than_the_rfc_says(number, rfc, earliest, step_id):
    phase = SPEC.phase(number)
    step = next((s for s in phase.steps if s.id == step_id), None)
    if step is None:
        assert _explained(phase, rfc), f"phase {number}: no step {step_id!r} for {rfc!r}"
        return
    landed = LANDING[(number, step_id)]
    assert landed >= earliest or step.rationale, (
        f"phase {number} step {step_id} lands on day {landed}; the RFC says {rfc!r} (day {earliest})"
    )


def test_every_step_without_an_rfc_row_says_why():
    from_rfc = {(number, step_id) for number, _, _, step_id in STEPS}
    for phase in SPEC.phases:
        for step in phase.steps:
            if (phase.phase, step.id) not in from_rfc:
                assert step.rationale, f"phase {phase.phase} step {step.id} is not in the RFC"


def test_the_whole_rollout_takes_the_rfc_eleven_weeks():
    last_phase = SPEC.phases[-1]
    last_step = last_phase.steps[-1]
    ends = LANDING[(last_phase.phase, last_step.id)] + last_step.bake.days
    assert ends >= 7 * RFC_WEEKS


@pytest.mark.parametrize(("number", "level"), sorted(RISK.items()))
def test_every_phase_has_the_rfc_risk_level_or_says_why(number, level):
    phase = SPEC.phase(number)
    assert phase.risk.value == level or phase.rationale, (
        f"phase {number} is {phase.risk.value} risk; the RFC says {level}"
    )


def _check_matches(check, op, threshold) -> bool:
    return op is None or (check.op.value == op and check.threshold == pytest.approx(threshold))


@pytest.mark.parametrize(("number", "rfc", "counterpart"), CRITERIA, ids=[r[1] for r in CRITERIA])
def test_every_rfc_success_criterion_is_measured_or_checked_by_hand(number, rfc, counterpart):
    phase = SPEC.phase(number)
    if counterpart[0] == "check":
        _, name, op, threshold = counterpart
        check = next((c for c in phase.success_criteria if c.name == name), None)
        if check is None:
            assert _explained(phase, rfc), f"phase {number}: no criterion {name!r} for {rfc!r}"
            return
        assert _check_matches(check, op, threshold) or check.rationale, (
            f"phase {number} {name}: {check.op.value} {check.threshold}; the RFC says {rfc!r}"
        )
    else:
        (_, words) = counterpart
        items = _checklist(phase) + (_checklist(SPEC.phase(number + 1)) if number < 5 else [])
        assert any(i.startswith(words) for i in items) or _explained(phase, rfc), (
            f"phase {number}: no approval checklist item for {rfc!r}"
        )


@pytest.mark.parametrize(("number", "rfc", "counterpart"), TRIGGERS, ids=[r[1] for r in TRIGGERS])
def test_every_rfc_rollback_trigger_has_its_counterpart(number, rfc, counterpart):
    phase = SPEC.phase(number)
    kind = counterpart[0]
    if kind == "trigger":
        _, name, op, threshold = counterpart
        trigger = next((t for t in phase.rollback_triggers if t.name == name), None)
        if trigger is None:
            assert _explained(phase, rfc), f"phase {number}: no trigger {name!r} for {rfc!r}"
            return
        assert _check_matches(trigger, op, threshold) or trigger.rationale, (
            f"phase {number} {name}: {trigger.op.value} {trigger.threshold}; the RFC says {rfc!r}"
        )
    elif kind == "halt":
        documented = any("tgk-deploy halt" in s.description for s in phase.steps)
        assert documented or _explained(phase, rfc), f"phase {number}: nothing stands for {rfc!r}"
    else:  # smoke: every production step that gives a new version traffic smoke-tests it first
        for later in SPEC.phases[number - 1 :]:  # the trigger stands for every phase after too
            for step in later.steps:
                kinds = [next(iter(type(a).model_fields)) for a in step.actions]
                gives_traffic = any(
                    isinstance(a, DeployAction) and not a.deploy.baseline for a in step.actions
                )
                if step.environment != "production" or not gives_traffic:
                    continue
                assert "smoke" in kinds and kinds.index("smoke") < kinds.index("deploy"), (
                    f"phase {later.phase} step {step.id} gives a new version traffic without "
                    f"a smoke check first ({rfc!r})"
                )


def test_the_buttons_have_their_own_rollback_and_go_off_with_dynamic_routing():
    assert "buttons" in SPEC.phase(3).features
    assert SPEC.project.features["buttons"].off_vars == {"INTERACTIVE_BUTTONS": "false"}
    assert "buttons" in SPEC.project.features_switched_off_with(["dynamic-routing"])
