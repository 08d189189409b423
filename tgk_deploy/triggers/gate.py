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


GateSpec = tuple[int, GateKind, Sequence[MetricCheck]]
"""One gate to judge: phase number, which checks, and the checks themselves."""


def evaluate_gates(
    gates: Sequence[GateSpec],
    provider: MetricsProvider,
    versions: LiveVersions,
    at: datetime,
) -> list[GateVerdict]:
    """Judge several gates at one instant; every query of every check goes out in one batch."""
    at = at.replace(microsecond=0)
    planned = [
        (
            phase,
            kind,
            [plan_check(c, phase=phase, kind=kind, at=at, versions=versions) for c in checks],
        )
        for phase, kind, checks in gates
    ]
    requests = [r for _, _, plans in planned for plan in plans for r in plan.requests()]
    results = iter(provider.fetch(requests) if requests else [])
    return [
        gate_verdict(
            phase,
            kind,
            [
                judge(plan, [next(results) for _ in plan.requests()], simulated=provider.simulated)
                for plan in plans
            ],
            at,
            simulated=provider.simulated,
        )
        for phase, kind, plans in planned
    ]


def evaluate_checks(
    phase: int,
    kind: GateKind,
    checks: Sequence[MetricCheck],
    provider: MetricsProvider,
    versions: LiveVersions,
    at: datetime,
) -> GateVerdict:
    """Judge ``checks`` as one gate of ``phase`` at ``at``."""
    [verdict] = evaluate_gates([(phase, kind, checks)], provider, versions, at)
    return verdict


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


def run_gates(
    spec: Spec,
    phases: Sequence[int],
    kind: GateKind,
    provider: MetricsProvider,
    versions: LiveVersions,
    clock: Clock,
) -> list[GateVerdict]:
    """Several phases' gates at one instant in one concurrent batch.

    For the engine: before a step of phase N it checks the triggers of N and of
    the earlier phases still live; one batch costs one round trip, not N.
    """
    gates = [(n, kind, checks_for(spec.phase(n), kind)) for n in phases]
    return evaluate_gates(gates, provider, versions, clock())


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
