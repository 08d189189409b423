"""A phase's checks at one instant: plan every query, fetch them all at once, judge.

This is what ``tgk-deploy gate`` and the engine call before every step. The
provider is the real Prometheus or a rehearsal scenario; the clock is injected
so that rehearsals and tests never wait on the wall clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from tgk_deploy.spec.models import MetricCheck, Phase, Spec
from tgk_deploy.triggers.evaluate import (
    GateKind,
    GateVerdict,
    LiveVersions,
    Outcome,
    gate_verdict,
    judge,
    plan_check,
)
from tgk_deploy.triggers.samples import MetricsProvider

Clock = Callable[[], datetime]


def checks_for(phase: Phase, kind: GateKind) -> Sequence[MetricCheck]:
    return phase.success_criteria if kind is GateKind.SUCCESS else phase.rollback_triggers


def evaluate_checks(
    phase: int,
    kind: GateKind,
    checks: Sequence[MetricCheck],
    provider: MetricsProvider,
    versions: LiveVersions,
    at: datetime,
) -> GateVerdict:
    """Judge ``checks`` at ``at``; every query of every check goes out in one batch."""
    at = at.replace(microsecond=0)
    plans = [
        plan_check(check, phase=phase, kind=kind, at=at, versions=versions) for check in checks
    ]
    requests = [request for plan in plans for request in plan.requests()]
    results = iter(provider.fetch(requests) if requests else [])
    verdicts = [
        judge(plan, [next(results) for _ in plan.requests()], simulated=provider.simulated)
        for plan in plans
    ]
    return gate_verdict(phase, kind, verdicts, at, simulated=provider.simulated)


def run_gate(
    spec: Spec,
    phase: int,
    kind: GateKind,
    provider: MetricsProvider,
    versions: LiveVersions,
    clock: Clock,
) -> GateVerdict:
    """The phase's success criteria or rollback triggers, judged now (``clock()``)."""
    phase_spec = spec.phase(phase)
    return evaluate_checks(phase, kind, checks_for(phase_spec, kind), provider, versions, clock())


def watch_gate(
    evaluate: Callable[[datetime], GateVerdict],
    *,
    clock: Clock,
    sleep: Callable[[float], None],
    wait: timedelta,
    interval: timedelta,
    on_verdict: Callable[[GateVerdict, datetime], None] | None = None,
) -> GateVerdict:
    """Re-evaluate every ``interval`` until the gate passes or ``wait`` has gone by.

    ``on_verdict(verdict, deadline)`` sees every evaluation (the live display).
    Returns the last verdict: pass, or whatever it was when time ran out.
    """
    deadline = clock() + wait
    while True:
        verdict = evaluate(clock())
        if on_verdict is not None:
            on_verdict(verdict, deadline)
        remaining = deadline - clock()
        if verdict.outcome is Outcome.PASS or remaining <= timedelta(0):
            return verdict
        sleep(min(interval, remaining).total_seconds())
