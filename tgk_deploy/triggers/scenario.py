"""Made-up metrics for rehearsals: each check's value over simulated time, from a YAML file.

A scenario answers the same requests as Prometheus (``MetricsProvider``), so
``evaluate.py`` judges it exactly as it judges live numbers; only
``simulated = True`` differs, and every verdict it feeds says so. A scenario
file (``scenarios/*.yaml``)::

    name: ai-latency-incident
    description: AI p95 latency regresses three days into phase 2's canary
    sample: 5000                  # events behind every min_sample query (default)
    checks:                       # check names from phases/*.yaml
      ai-timeouts:                # piecewise: each segment holds until the next one
        - value: 4.2              # from the start of the rollout
        - {phase: 2, after: 3d, value: 14.5}    # 3 days after phase 2 started
        - {phase: 2, after: 3d2h, value: 4.0}

A segment may also give ``baseline`` (for relative checks), ``sample``,
``missing: true`` (no series: Prometheus has no data) or ``unreachable: true``.
A check the scenario does not mention is comfortably healthy, so a scenario
only names what goes wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import Field, model_validator

from tgk_deploy.errors import ConfigError, SpecError
from tgk_deploy.spec.models import Comparison, Duration, MetricCheck, Slug, Spec, StrictModel
from tgk_deploy.triggers.evaluate import GateKind
from tgk_deploy.triggers.samples import Point, QueryRequest, QueryResult, QueryRole, Series

DEFAULT_SAMPLE = 5000.0


class Segment(StrictModel):
    """From ``after`` (since the rollout, or since ``phase`` started) until the next segment."""

    phase: int | None = Field(default=None, ge=1)
    after: Duration = timedelta(0)
    value: float | None = None
    baseline: float | None = None
    sample: float | None = None
    missing: bool = False
    unreachable: bool = False

    @model_validator(mode="after")
    def _says_something(self) -> Segment:
        if self.value is None and not (self.missing or self.unreachable):
            raise ValueError("a segment needs a value, or missing: true, or unreachable: true")
        return self


class Scenario(StrictModel):
    name: Slug
    description: str = ""
    sample: float = Field(default=DEFAULT_SAMPLE, gt=0)
    checks: dict[Slug, list[Segment]] = Field(default_factory=dict)


def load_scenario(path: Path) -> Scenario:
    """Read a scenario file; problems come back as file:line:column like the phase files."""
    from tgk_deploy.spec.load import read_yaml, validate_model

    located = read_yaml(path)
    scenario = validate_model(located, Scenario)
    if located.problems or scenario is None:
        raise SpecError(located.problems)
    return scenario


SCENARIOS_DIR = "scenarios"


def find_scenario(name_or_path: str, project_dir: Path) -> Path:
    """``clean`` -> ``<project>/scenarios/clean.yaml``; a path is taken as it is."""
    if name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path:
        path = Path(name_or_path)
    else:
        path = project_dir / SCENARIOS_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (project_dir / SCENARIOS_DIR).glob("*.yaml"))
        raise ConfigError(
            f"no scenario {name_or_path!r}; known: {', '.join(known) or 'none'}",
            hint=f"add {SCENARIOS_DIR}/{name_or_path}.yaml",
        )
    return path


def healthy_value(op: Comparison, threshold: float, *, must_hold: bool) -> float:
    """A value comfortably on the good side: holding ``op`` for criteria, not for triggers."""
    wants_above = (
        op in (Comparison.GT, Comparison.GE)
        if must_hold
        else op
        in (
            Comparison.LT,
            Comparison.LE,
        )
    )
    wants_below = (
        op in (Comparison.LT, Comparison.LE)
        if must_hold
        else op
        in (
            Comparison.GT,
            Comparison.GE,
        )
    )
    if wants_above:
        if 0 <= threshold < 1:
            return (1 + threshold) / 2  # ratios: halfway to 1
        return threshold * 1.5 if threshold > 0 else threshold + 1
    if wants_below:
        if threshold > 0:
            return threshold / 2
        return threshold if op in (Comparison.LE, Comparison.GT) else threshold - 1
    equal_is_good = (op is Comparison.EQ) == must_hold
    return threshold if equal_is_good else threshold + 1


class ScenarioProvider:
    """Answers query requests from a scenario; the engine tells it when phases start."""

    simulated = True

    def __init__(self, scenario: Scenario, spec: Spec, rollout_start: datetime) -> None:
        known = {c.name for p in spec.phases for c in (*p.success_criteria, *p.rollback_triggers)}
        unknown = sorted(set(scenario.checks) - known)
        if unknown:
            raise ConfigError(
                f"scenario {scenario.name} names check(s) no phase declares: {', '.join(unknown)}"
            )
        self.scenario = scenario
        self.spec = spec
        self.rollout_start = rollout_start
        self.phase_starts: dict[int, datetime] = {}

    def phase_started(self, phase: int, at: datetime) -> None:
        """Segments with ``phase: N`` count their ``after`` from here."""
        self.phase_starts.setdefault(phase, at)

    def _check(self, phase: int | None, name: str | None) -> tuple[MetricCheck, GateKind] | None:
        for candidate in self.spec.phases:
            if phase is not None and candidate.phase != phase:
                continue
            for check in candidate.success_criteria:
                if check.name == name:
                    return check, GateKind.SUCCESS
            for trigger in candidate.rollback_triggers:
                if trigger.name == name:
                    return trigger, GateKind.TRIGGERS
        return None

    def _segment(self, name: str | None, at: datetime) -> Segment | None:
        timed = []
        for index, segment in enumerate(self.scenario.checks.get(name or "", [])):
            origin = (
                self.rollout_start
                if segment.phase is None
                else self.phase_starts.get(segment.phase)
            )
            if origin is not None and origin + segment.after <= at:
                timed.append((origin + segment.after, index, segment))
        return max(timed, key=lambda item: (item[0], item[1]))[2] if timed else None

    def _number(self, request: QueryRequest, at: datetime) -> float | None:
        """The value at ``at`` for the request's role; None when the scenario says no data."""
        segment = self._segment(request.check, at)
        if segment is not None and segment.missing:
            return None
        if request.role is QueryRole.SAMPLE:
            if segment is not None and segment.sample is not None:
                return segment.sample
            return self.scenario.sample
        if request.role is QueryRole.BASELINE:
            return segment.baseline if segment and segment.baseline is not None else 1.0
        if segment is not None and segment.value is not None:
            return segment.value
        found = self._check(request.phase, request.check)
        if found is None:
            return None
        check, kind = found
        # relative checks: the baseline defaults to 1, so the threshold is the factor itself
        return healthy_value(check.op, check.threshold, must_hold=kind is GateKind.SUCCESS)

    def _answer(self, request: QueryRequest) -> QueryResult:
        if request.phase is not None:
            self.phase_started(request.phase, request.at)
        segment = self._segment(request.check, request.at)
        if segment is not None and segment.unreachable:
            return QueryResult(
                request=request,
                error=f"simulated: Prometheus unreachable (scenario {self.scenario.name})",
            )
        if request.is_range and request.window is not None and request.step is not None:
            count = int(request.window / request.step) + 1
            moments = [request.start + i * request.step for i in range(count)]
        else:
            moments = [request.at]
        points = []
        for moment in moments:
            number = self._number(request, moment)
            if number is not None:
                points.append(Point(time=moment, value=number))
        series = [Series(labels={"scenario": self.scenario.name}, points=points)] if points else []
        return QueryResult(
            request=request,
            result_type="matrix" if request.is_range else "vector",
            series=series,
        )

    def fetch(self, requests: Sequence[QueryRequest]) -> list[QueryResult]:
        return [self._answer(request) for request in requests]
