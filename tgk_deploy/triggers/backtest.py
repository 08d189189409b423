"""A phase's checks replayed over a past window: when each would have fired or passed.

This is how an operator proves a trigger before trusting it. Every query of
every check is asked once as a range query (the check's value, its baseline,
its minimum sample) from ``start - for`` to ``end`` every ``step``; then, tick
by tick, the same rule as a gate: the condition holds at a tick when the
sample is large enough and ``value <op> threshold`` holds, and the check fires
(a trigger) or passes (a criterion) at a tick when the condition held at every
tick of the ``for:`` window ending there. Pure apart from the provider's fetch.

A *bad* tick is one where the condition points the wrong way: a trigger's
condition holds, a criterion's does not. The report says how long after the
first bad tick the trigger fired (its fire delay) and how long it kept firing
after the last bad tick. When the operator knows when the incident really
began and ended (``incident``), delays are measured from those moments instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from tgk_deploy.errors import ConfigError
from tgk_deploy.spec.models import Duration, MetricCheck, Phase, format_duration
from tgk_deploy.triggers.evaluate import GateKind, LiveVersions, MissingVersion, render_query
from tgk_deploy.triggers.samples import MetricsProvider, QueryRequest, QueryResult, QueryRole

MAX_POINTS = 11_000  # Prometheus refuses range queries with more points per series


class Period(BaseModel):
    """A stretch of consecutive ticks where the check fired (or passed)."""

    model_config = ConfigDict(frozen=True)

    start: datetime
    end: datetime


class CheckBacktest(BaseModel):
    """One check over the window; every time is a tick of the range queries."""

    model_config = ConfigDict(frozen=True)

    check: str
    kind: GateKind
    query: str
    ticks: int = Field(description="ticks judged in [from, to]")
    no_data: int = Field(description="ticks without a usable value (no series, NaN, a gap)")
    small_sample: int = Field(description="ticks whose minimum sample was not met")
    bad: int = Field(description="ticks where the condition pointed the wrong way")
    first_bad: datetime | None = None
    last_bad: datetime | None = None
    periods: list[Period] = Field(
        default_factory=list, description="when it fired (trigger) or passed (criterion)"
    )
    fire_delay: Duration | None = Field(
        default=None, description="first firing tick - first bad tick (or incident start)"
    )
    kept_firing: Duration | None = Field(
        default=None,
        description="last firing tick + step - last bad tick (or incident end): how long it "
        "went on after the trouble stopped",
    )
    problem: str | None = None

    @property
    def fired(self) -> bool:
        return self.kind is GateKind.TRIGGERS and bool(self.periods)

    def summary(self) -> str:
        """One line for people."""
        if self.problem:
            return f"{self.check}: cannot backtest: {self.problem}"
        verb = "fired" if self.kind is GateKind.TRIGGERS else "passed"
        gaps = []
        if self.no_data:
            gaps.append(f"{self.no_data} tick(s) without data")
        if self.small_sample:
            gaps.append(f"{self.small_sample} below the minimum sample")
        note = f" ({', '.join(gaps)})" if gaps else ""
        if not self.periods:
            return f"{self.check}: never {verb} in {self.ticks} ticks{note}"
        when = ", ".join(
            f"{p.start.isoformat()}..{p.end.isoformat()}" for p in self.periods[:3]
        ) + (f" and {len(self.periods) - 3} more" if len(self.periods) > 3 else "")
        line = f"{self.check}: {verb} {when}"
        if self.kind is GateKind.TRIGGERS and self.fire_delay is not None:
            line += f"; fire delay {format_duration(self.fire_delay)}"
        if self.kind is GateKind.TRIGGERS and self.kept_firing is not None:
            line += f", kept firing {format_duration(self.kept_firing)} after the last bad tick"
        return line + note


class Backtest(BaseModel):
    """Every trigger and success criterion of a phase over ``[start, end]``."""

    model_config = ConfigDict(frozen=True)

    phase: int
    environment: str
    start: datetime
    end: datetime
    step: Duration
    incident_start: datetime | None = None
    incident_end: datetime | None = None
    triggers: list[CheckBacktest] = Field(default_factory=list)
    success_criteria: list[CheckBacktest] = Field(default_factory=list)


def _requests(
    check: MetricCheck,
    *,
    phase: int,
    start: datetime,
    end: datetime,
    step: timedelta,
    versions: LiveVersions,
) -> list[QueryRequest]:
    lead = check.for_ or timedelta(0)
    first = start - lead
    queries = [(check.query, QueryRole.VALUE)]
    if check.relative_to:
        queries.append((check.relative_to, QueryRole.BASELINE))
    if check.min_sample:
        queries.append((check.min_sample.query, QueryRole.SAMPLE))
    return [
        QueryRequest(
            query=render_query(query, versions),
            at=end,
            window=end - first,
            step=step,
            phase=phase,
            check=check.name,
            role=role,
        )
        for query, role in queries
    ]


def _by_tick(result: QueryResult) -> tuple[dict[int, float], str | None]:
    """Values keyed by unix millisecond; a problem when there is more than one series."""
    if result.error:
        return {}, result.error
    series = [s for s in result.series if s.points]
    if len(series) > 1:
        return {}, f"the {result.request.role.value} query returned {len(series)} series, not one"
    if not series:
        return {}, None
    return {round(p.time.timestamp() * 1000): p.value for p in series[0].points}, None


def judge_range(
    check: MetricCheck,
    kind: GateKind,
    results: Sequence[QueryResult],
    *,
    start: datetime,
    end: datetime,
    step: timedelta,
    incident: tuple[datetime, datetime] | None = None,
) -> CheckBacktest:
    """Tick-by-tick verdicts of one check from its range answers."""
    by_role = {r.request.role: r for r in results}
    value_result = by_role[QueryRole.VALUE]
    base = {
        "check": check.name,
        "kind": kind,
        "query": value_result.request.query,
    }
    tables: dict[QueryRole, dict[int, float]] = {}
    for role, result in by_role.items():
        table, problem = _by_tick(result)
        if problem:
            return CheckBacktest(**base, ticks=0, no_data=0, small_sample=0, bad=0, problem=problem)
        tables[role] = table

    lead = check.for_ or timedelta(0)
    moments: list[datetime] = []
    moment = start - lead
    while moment <= end:
        moments.append(moment)
        moment += step

    holds: list[bool | None] = []  # None: cannot say (no data or too small a sample)
    no_data = small = 0
    judged = [m >= start for m in moments]
    for moment, counted in zip(moments, judged, strict=True):
        key = round(moment.timestamp() * 1000)
        value = tables[QueryRole.VALUE].get(key)
        baseline = tables.get(QueryRole.BASELINE, {}).get(key, 1.0)
        sample = tables.get(QueryRole.SAMPLE, {}).get(key) if check.min_sample else None
        threshold = check.threshold * baseline if check.relative_to else check.threshold
        if value is None or math.isnan(value) or math.isnan(threshold):
            holds.append(None)
            no_data += counted
            continue
        if check.min_sample and (sample is None or not sample >= check.min_sample.count):
            holds.append(None)
            small += counted
            continue
        holds.append(check.op.holds(value, threshold))

    bad_side = kind is GateKind.TRIGGERS  # a trigger's condition holding is the bad side
    needed = int(lead / step) + 1
    active: list[datetime] = []
    bad_moments: list[datetime] = []
    for index, moment in enumerate(moments):
        if not judged[index]:
            continue
        if holds[index] is not None and holds[index] == bad_side:
            bad_moments.append(moment)
        window = holds[max(0, index - needed + 1) : index + 1]
        if len(window) == needed and all(h is True for h in window):
            active.append(moment)

    periods: list[Period] = []
    for moment in active:
        if periods and moment - periods[-1].end == step:
            periods[-1] = Period(start=periods[-1].start, end=moment)
        else:
            periods.append(Period(start=moment, end=moment))

    first_bad = incident[0] if incident else (bad_moments[0] if bad_moments else None)
    last_bad = incident[1] if incident else (bad_moments[-1] if bad_moments else None)
    fire_delay = kept = None
    if kind is GateKind.TRIGGERS and periods and first_bad is not None and last_bad is not None:
        firing_after = [p for p in periods if p.end >= first_bad]
        if firing_after:
            fire_delay = max(timedelta(0), max(firing_after[0].start, first_bad) - first_bad)
        kept = max(timedelta(0), periods[-1].end + step - last_bad)
    return CheckBacktest(
        **base,
        ticks=sum(judged),
        no_data=no_data,
        small_sample=small,
        bad=len(bad_moments),
        first_bad=bad_moments[0] if bad_moments else None,
        last_bad=bad_moments[-1] if bad_moments else None,
        periods=periods,
        fire_delay=fire_delay,
        kept_firing=kept,
    )


def backtest(
    phase: Phase,
    provider: MetricsProvider,
    *,
    start: datetime,
    end: datetime,
    step: timedelta,
    versions: LiveVersions,
    incident: tuple[datetime, datetime] | None = None,
) -> Backtest:
    """Replay every trigger and success criterion of ``phase`` over ``[start, end]``."""
    if end <= start:
        raise ConfigError("--to must be after --from")
    if step <= timedelta(0):
        raise ConfigError("--step must be longer than 0")
    checks: list[tuple[MetricCheck, GateKind]] = [
        *((t, GateKind.TRIGGERS) for t in phase.rollback_triggers),
        *((c, GateKind.SUCCESS) for c in phase.success_criteria),
    ]
    longest = max((c.for_ or timedelta(0) for c, _ in checks), default=timedelta(0))
    points = int((end - start + longest) / step) + 1
    if points > MAX_POINTS:
        raise ConfigError(
            f"{points} points per query: Prometheus answers at most {MAX_POINTS}; "
            "give a longer --step or a shorter window"
        )
    planned: list[tuple[MetricCheck, GateKind, list[QueryRequest] | str]] = []
    for check, kind in checks:
        try:
            planned.append(
                (
                    check,
                    kind,
                    _requests(
                        check,
                        phase=phase.phase,
                        start=start,
                        end=end,
                        step=step,
                        versions=versions,
                    ),
                )
            )
        except MissingVersion as missing:
            planned.append((check, kind, str(missing)))
    requests = [r for _, _, rs in planned if not isinstance(rs, str) for r in rs]
    answers = iter(provider.fetch(requests) if requests else [])
    triggers: list[CheckBacktest] = []
    criteria: list[CheckBacktest] = []
    for check, kind, rs in planned:
        if isinstance(rs, str):
            verdict = CheckBacktest(
                check=check.name,
                kind=kind,
                query=check.query,
                ticks=0,
                no_data=0,
                small_sample=0,
                bad=0,
                problem=rs,
            )
        else:
            verdict = judge_range(
                check,
                kind,
                [next(answers) for _ in rs],
                start=start,
                end=end,
                step=step,
                incident=incident,
            )
        (triggers if kind is GateKind.TRIGGERS else criteria).append(verdict)
    return Backtest(
        phase=phase.phase,
        environment=versions.environment,
        start=start,
        end=end,
        step=step,
        incident_start=incident[0] if incident else None,
        incident_end=incident[1] if incident else None,
        triggers=triggers,
        success_criteria=criteria,
    )
