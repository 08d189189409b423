"""Numbers -> verdicts: pass, fail or inconclusive. Pure: no I/O, no clock.

A success criterion passes when ``value <op> threshold`` holds; a rollback
trigger fires (its verdict is fail) when it holds. No data, NaN, more series
than one, too small a sample, or a provider error are inconclusive with the
reason: never pass. ``for:`` means the condition held at every step of the
window ``[at - for, at]``; a missing step is inconclusive. Relative checks
(``relative_to``) compare against ``threshold x baseline`` point by point over
the same window, with ``{{candidate}}``/``{{stable}}`` rendered to the live
version ids.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from tgk_deploy.errors import ExitCode
from tgk_deploy.spec.models import Comparison, MetricCheck, Severity, format_duration
from tgk_deploy.triggers.samples import QueryRequest, QueryResult, QueryRole, Series

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
MAX_RANGE_POINTS = 30


def _finite_or_text(value: float) -> float | str:
    """JSON has no NaN or Infinity: spell them as Prometheus does."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return value


Number = Annotated[float, PlainSerializer(_finite_or_text, when_used="json")]
"""A float that stays valid JSON (+Inf from histogram_quantile is a real answer)."""


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"

    @property
    def exit_code(self) -> int:
        """The documented exit code of a command that reports this verdict: 0, 1 or 3."""
        return {
            Outcome.PASS: ExitCode.OK,
            Outcome.FAIL: ExitCode.FAILED,
            Outcome.INCONCLUSIVE: ExitCode.INCONCLUSIVE,
        }[self]


class GateKind(StrEnum):
    """Which checks of a phase a gate judges."""

    SUCCESS = "success"  # success criteria: pass when they hold
    TRIGGERS = "triggers"  # rollback triggers: fail when they fire


class LiveVersions(BaseModel):
    """What a gate's queries are rendered with.

    ``{{candidate}}`` and ``{{stable}}``: the version ids a live split gives;
    ``{{environment}}``: the environment judged, so that staging's failures never
    fire production's triggers (every Worker series carries ``environment``).
    """

    model_config = ConfigDict(frozen=True)

    candidate: str | None = None
    stable: str | None = None
    environment: str = "production"


class MissingVersion(ValueError):
    pass


def render_query(query: str, versions: LiveVersions) -> str:
    """Fill ``{{candidate}}``/``{{stable}}``/``{{environment}}``; MissingVersion when one is not live."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        value = getattr(versions, name, None)
        if not value:
            raise MissingVersion(f"the query needs {{{{{name}}}}} but no {name} version is live")
        return value

    return _PLACEHOLDER.sub(fill, query)


def range_step(window: timedelta) -> timedelta:
    """Step of the range query for a ``for:`` window: a minute, doubled until <= 31 points.

    Up to 2h30m the step stays within Prometheus' 5m lookback, so every scrape
    of a gauge is seen; rate windows in the phase files are 10m or longer.
    Fewer points keep a gate's Prometheus CPU small (see bench/triggers).
    """
    step = timedelta(minutes=1)
    while window / step > MAX_RANGE_POINTS:
        step *= 2
    return min(step, window) if window > timedelta(0) else step


# --------------------------------------------------------------------------- verdicts


class CheckVerdict(BaseModel):
    """One check judged, with everything needed to say why (journaled as JSON)."""

    model_config = ConfigDict(frozen=True)

    phase: int
    check: str
    kind: GateKind
    outcome: Outcome
    why: str
    query: str
    relative_query: str | None = None
    sample_query: str | None = None
    op: Comparison
    threshold: Number = Field(description="as declared (a factor when relative)")
    effective_threshold: Number | None = Field(
        default=None, description="what the value was compared with: threshold x baseline"
    )
    value: Number | None = Field(default=None, description="the latest value")
    baseline: Number | None = None
    values: list[Number] = Field(default_factory=list, description="every point of a for: window")
    window: str | None = Field(default=None, description="the for: duration")
    points_expected: int | None = None
    sample_size: Number | None = None
    min_sample: Number | None = None
    severity: Severity
    evaluated_at: datetime
    simulated: bool = False
    recorded: bool = Field(
        default=False,
        description="numbers read from tgk-deploy's recording rules: the raw queries' "
        "at their last evaluation, at most 45 s before evaluated_at",
    )
    warnings: list[str] = Field(default_factory=list)

    @property
    def fired(self) -> bool:
        """A trigger that fired (a failed success criterion is not 'fired')."""
        return self.kind is GateKind.TRIGGERS and self.outcome is Outcome.FAIL


class GateVerdict(BaseModel):
    """A phase's success criteria or rollback triggers judged together."""

    model_config = ConfigDict(frozen=True)

    phase: int
    kind: GateKind
    outcome: Outcome
    why: str
    evaluated_at: datetime
    simulated: bool = False
    checks: list[CheckVerdict] = Field(default_factory=list)

    @property
    def fired(self) -> list[CheckVerdict]:
        """The rollback triggers that fired; the engine looks up each one's response."""
        return [c for c in self.checks if c.fired]


def aggregate(outcomes: Sequence[Outcome]) -> Outcome:
    """Any fail -> fail; else any inconclusive -> inconclusive; else pass (when not empty)."""
    if not outcomes:
        return Outcome.INCONCLUSIVE
    if Outcome.FAIL in outcomes:
        return Outcome.FAIL
    if Outcome.INCONCLUSIVE in outcomes:
        return Outcome.INCONCLUSIVE
    return Outcome.PASS


def gate_verdict(
    phase: int,
    kind: GateKind,
    checks: Sequence[CheckVerdict],
    evaluated_at: datetime,
    *,
    simulated: bool = False,
) -> GateVerdict:
    outcome = aggregate([c.outcome for c in checks])
    noun = "success criteria" if kind is GateKind.SUCCESS else "rollback triggers"
    if not checks:
        # empty is never pass: a gate with nothing to check has not seen anything
        why = f"phase {phase} declares no {noun}: nothing to judge, so no pass"
    elif outcome is Outcome.PASS:
        why = f"all {len(checks)} {noun} pass"
    else:
        culprits = [c for c in checks if c.outcome is outcome]
        verb = "fired" if kind is GateKind.TRIGGERS and outcome is Outcome.FAIL else outcome.value
        why = f"{len(culprits)} of {len(checks)} {noun} {verb}: " + "; ".join(
            f"{c.check}: {c.why}" for c in culprits
        )
    if simulated:
        why = "[simulated] " + why
    return GateVerdict(
        phase=phase,
        kind=kind,
        outcome=outcome,
        why=why,
        evaluated_at=evaluated_at,
        simulated=simulated,
        checks=list(checks),
    )


# --------------------------------------------------------------------------- planning


class CheckPlan(BaseModel):
    """The queries one check needs at one instant, or why it cannot be asked."""

    model_config = ConfigDict(frozen=True)

    phase: int
    check: MetricCheck
    kind: GateKind
    at: datetime
    value: QueryRequest | None = None
    baseline: QueryRequest | None = None
    sample: QueryRequest | None = None
    problem: str | None = None

    def requests(self) -> list[QueryRequest]:
        return [r for r in (self.value, self.baseline, self.sample) if r is not None]


def plan_check(
    check: MetricCheck,
    *,
    phase: int,
    kind: GateKind,
    at: datetime,
    versions: LiveVersions,
) -> CheckPlan:
    """Render the check's queries for ``at``: ranges over the ``for:`` window, else instants."""
    window = check.for_ if check.for_ else None
    step = range_step(window) if window else None

    def request(query: str, role: QueryRole, ranged: bool) -> QueryRequest:
        return QueryRequest(
            query=render_query(query, versions),
            at=at,
            window=window if ranged else None,
            step=step if ranged else None,
            phase=phase,
            check=check.name,
            role=role,
        )

    try:
        return CheckPlan(
            phase=phase,
            check=check,
            kind=kind,
            at=at,
            value=request(check.query, QueryRole.VALUE, True),
            baseline=(
                request(check.relative_to, QueryRole.BASELINE, True) if check.relative_to else None
            ),
            sample=(
                request(check.min_sample.query, QueryRole.SAMPLE, False)
                if check.min_sample
                else None
            ),
        )
    except MissingVersion as missing:
        return CheckPlan(phase=phase, check=check, kind=kind, at=at, problem=str(missing))


# --------------------------------------------------------------------------- judging


def _num(value: float) -> str:
    return f"{value:.6g}"


class _Inconclusive(Exception):
    pass


def _one_series(result: QueryResult, what: str) -> Series:
    if result.error:
        raise _Inconclusive(f"{what}: {result.error}")
    if not result.series or not any(s.points for s in result.series):
        raise _Inconclusive(f"no data: the {what} returned no series")
    if len(result.series) > 1:
        shown = ", ".join(s.describe_labels() for s in result.series[:3])
        more = f" and {len(result.series) - 3} more" if len(result.series) > 3 else ""
        raise _Inconclusive(
            f"the {what} returned {len(result.series)} series where one was expected: "
            f"{shown}{more}; aggregate it (e.g. sum(...))"
        )
    return result.series[0]


def _instant_value(result: QueryResult, what: str) -> float:
    series = _one_series(result, what)
    value = series.points[-1].value
    if math.isnan(value):
        raise _Inconclusive(f"the {what} is NaN (no events in its window?)")
    return value


def _window_values(result: QueryResult, what: str) -> list[float]:
    """Values at every step of the window, in order; any gap or NaN is inconclusive."""
    series = _one_series(result, what)
    request = result.request
    assert request.window is not None and request.step is not None
    expected = int(request.window / request.step) + 1
    by_millisecond = {round(p.time.timestamp() * 1000): p.value for p in series.points}
    values: list[float] = []
    missing: list[datetime] = []
    for index in range(expected):
        moment = request.start + index * request.step
        value = by_millisecond.get(round(moment.timestamp() * 1000))
        if value is None:
            missing.append(moment)
        elif math.isnan(value):
            raise _Inconclusive(f"the {what} is NaN at {moment.isoformat()}")
        else:
            values.append(value)
    if missing:
        raise _Inconclusive(
            f"{len(missing)} of {expected} points of the {format_duration(request.window)} "
            f"window have no data (first at {missing[0].isoformat()}): "
            "cannot say the condition held throughout"
        )
    return values


def judge(
    plan: CheckPlan, results: Sequence[QueryResult], *, simulated: bool = False
) -> CheckVerdict:
    """The verdict of one check from the answers to its plan's requests."""
    check = plan.check
    by_role = {r.request.role: r for r in results}
    facts: dict[str, object] = {
        "phase": plan.phase,
        "check": check.name,
        "kind": plan.kind,
        "query": plan.value.query if plan.value else check.query,
        "relative_query": plan.baseline.query if plan.baseline else check.relative_to,
        "sample_query": plan.sample.query if plan.sample else None,
        "op": check.op,
        "threshold": check.threshold,
        "window": format_duration(check.for_) if check.for_ else None,
        "min_sample": check.min_sample.count if check.min_sample else None,
        "severity": check.severity,
        "evaluated_at": plan.at,
        "simulated": simulated,
        "recorded": bool(results) and all(r.recorded for r in results),
        "warnings": [w for r in results for w in r.warnings],
    }
    if plan.value and plan.value.window and plan.value.step:
        facts["points_expected"] = int(plan.value.window / plan.value.step) + 1

    def verdict(outcome: Outcome, why: str, **more: object) -> CheckVerdict:
        label = "[simulated] " if simulated else ""
        return CheckVerdict.model_validate(
            {**facts, **more, "outcome": outcome, "why": label + why}
        )

    if plan.problem:
        return verdict(Outcome.INCONCLUSIVE, plan.problem)

    try:
        sample_size = None
        if plan.sample is not None and check.min_sample is not None:
            sample_size = _instant_value(by_role[QueryRole.SAMPLE], "minimum-sample query")
            facts["sample_size"] = sample_size
            if sample_size < check.min_sample.count:
                raise _Inconclusive(
                    f"sample too small: {_num(sample_size)} events, "
                    f"at least {_num(check.min_sample.count)} needed"
                )
        assert plan.value is not None
        if plan.value.is_range:
            values = _window_values(by_role[QueryRole.VALUE], "query")
            baselines = (
                _window_values(by_role[QueryRole.BASELINE], "relative_to query")
                if plan.baseline
                else None
            )
        else:
            values = [_instant_value(by_role[QueryRole.VALUE], "query")]
            baselines = (
                [_instant_value(by_role[QueryRole.BASELINE], "relative_to query")]
                if plan.baseline
                else None
            )
    except _Inconclusive as reason:
        return verdict(Outcome.INCONCLUSIVE, str(reason))

    thresholds = (
        [check.threshold * b for b in baselines] if baselines else [check.threshold] * len(values)
    )
    if any(math.isnan(t) for t in thresholds):
        return verdict(
            Outcome.INCONCLUSIVE,
            "threshold x baseline is NaN (infinite baseline with a zero factor?)",
            values=values,
        )
    holds = [check.op.holds(v, t) for v, t in zip(values, thresholds, strict=True)]
    latest, effective = values[-1], thresholds[-1]
    numbers: dict[str, object] = {
        "value": latest,
        "values": values if plan.value.is_range else [],
        "effective_threshold": effective,
        "baseline": baselines[-1] if baselines else None,
    }
    relation = f"{check.op}" if holds[-1] else f"is not {check.op}"
    compared = f"{_num(latest)} {relation} {_num(effective)}"
    if baselines:
        compared += f" ({_num(check.threshold)} x baseline {_num(baselines[-1])})"
    if plan.value.is_range:
        condition_holds = all(holds)
        bound = "threshold x baseline" if baselines else "threshold"
        detail = (
            f"{check.op} {bound} at all {len(holds)} points over {facts['window']}"
            if condition_holds
            else f"held at {sum(holds)} of {len(holds)} points over {facts['window']}"
        ) + f" (latest {compared})"
    else:
        condition_holds = holds[0]
        detail = compared

    if plan.kind is GateKind.SUCCESS:
        outcome = Outcome.PASS if condition_holds else Outcome.FAIL
        why = ("holds: " if condition_holds else "does not hold: ") + detail
    else:
        outcome = Outcome.FAIL if condition_holds else Outcome.PASS
        why = ("fired: " if condition_holds else "not fired: ") + detail
    if sample_size is not None:
        why += f"; sample {_num(sample_size)} events"
    return verdict(outcome, why, **numbers)
