"""What a metrics provider is asked and what it answers: the seam between fetch and judge.

``evaluate.py`` turns checks into ``QueryRequest``s and ``QueryResult``s into
verdicts; a provider (the real Prometheus in ``prometheus.py``, the rehearsal
scenario in ``scenario.py``) only turns requests into results. Neither side
knows the other, so the verdict logic is the same for live and simulated data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field


class QueryRole(StrEnum):
    """Which number of a check a query gives."""

    VALUE = "value"  # the check's own query
    BASELINE = "baseline"  # relative_to: the value the threshold is a factor of
    SAMPLE = "sample"  # min_sample: how many events the numbers stand on


class QueryRequest(BaseModel):
    """One PromQL evaluation: at an instant, or over ``[at - window, at]`` every ``step``.

    ``phase``, ``check`` and ``role`` say who asks; Prometheus ignores them, the
    scenario provider answers by them.
    """

    model_config = ConfigDict(frozen=True)

    query: str
    at: datetime
    window: timedelta | None = None
    step: timedelta | None = None
    phase: int | None = None
    check: str | None = None
    role: QueryRole = QueryRole.VALUE

    @property
    def is_range(self) -> bool:
        return self.window is not None

    @property
    def start(self) -> datetime:
        return self.at - self.window if self.window is not None else self.at

    def cache_key(self) -> tuple[str, datetime, timedelta | None, timedelta | None]:
        """Requests with equal keys get equal answers from Prometheus: fetch once."""
        return (self.query, self.at, self.window, self.step)


class Point(BaseModel):
    model_config = ConfigDict(frozen=True, ser_json_inf_nan="strings")

    time: datetime
    value: float

    @property
    def is_nan(self) -> bool:
        return math.isnan(self.value)


class Series(BaseModel):
    """One labelled series; an instant query gives one point per series."""

    model_config = ConfigDict(frozen=True)

    labels: dict[str, str] = Field(default_factory=dict)
    points: list[Point] = Field(default_factory=list)

    def describe_labels(self) -> str:
        """As PromQL writes a series: ``name{label="value",...}``."""
        name = self.labels.get("__name__", "")
        inner = ",".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()) if k != "__name__")
        return name + "{" + inner + "}"


class QueryResult(BaseModel):
    """The answer to one request: series, or ``error`` saying why there are no numbers.

    ``error`` and ``warnings`` carry the provider's words verbatim (Prometheus'
    ``errorType: error``, or why it could not be reached).
    """

    model_config = ConfigDict(frozen=True)

    request: QueryRequest
    result_type: str = "vector"
    series: list[Series] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    error: str | None = None
    recorded: bool = False  # read from tgk-deploy's recording rules (see recorded.py)


STALENESS = timedelta(minutes=5)  # Prometheus' own lookback: a sample older is no answer


def untrustworthy(result: QueryResult) -> str | None:
    """Why numbers that parsed still cannot be judged: infinite, or stamped outside the query.

    Prometheus stamps an instant answer with the evaluation time and a range
    answer with its steps; a sample older than the query's start minus
    ``STALENESS`` (or later than its end plus it) is a stale or forged answer.
    NaN is left to the judge, which says what it usually means.
    """
    request = result.request
    earliest, latest = request.start - STALENESS, request.at + STALENESS
    for series in result.series:
        for point in series.points:
            if math.isinf(point.value):
                return (
                    f"{series.describe_labels()} is {'+' if point.value > 0 else '-'}Inf at "
                    f"{point.time.isoformat()}: a non-finite value cannot be compared"
                )
            if not earliest <= point.time <= latest:
                return (
                    f"{series.describe_labels()} has a sample stamped {point.time.isoformat()}, "
                    f"outside the query's {request.start.isoformat()} .. "
                    f"{request.at.isoformat()} (± {int(STALENESS.total_seconds() // 60)} min): "
                    "stale or not an answer to this query"
                )
    return None


@lru_cache(maxsize=256)
def is_instant_vector(query: str) -> bool:
    """True when the expression is an instant vector: only those can carry a subquery or be recorded.

    A scalar (``scalar(...)``, ``time()``, a number) or anything that does not
    parse is False: it goes out as a range query, which Prometheus judges.
    """
    import promql_parser  # a few ms, and only for a gate with for: windows

    try:
        expression = promql_parser.parse(query)
    except ValueError:
        return False
    return _vector(expression, promql_parser)


def _vector(node: Any, promql: Any) -> bool:
    if isinstance(node, promql.ParenExpr | promql.UnaryExpr):
        return _vector(node.expr, promql)
    if isinstance(node, promql.BinaryExpr):
        return _vector(node.lhs, promql) or _vector(node.rhs, promql)
    if isinstance(node, promql.Call):
        return bool(node.func.return_type == promql.ValueType.Vector)
    return isinstance(node, promql.AggregateExpr | promql.VectorSelector)


class MetricsProvider(Protocol):
    """Anything that answers query requests: the real Prometheus or a rehearsal scenario."""

    simulated: bool
    """True when the numbers are made up (rehearsals); every verdict says so."""

    def fetch(self, requests: Sequence[QueryRequest]) -> list[QueryResult]:
        """Answer every request, in order. Failures come back as ``QueryResult.error``.

        Implementations answer the requests concurrently where they do I/O, and
        never raise for one failed query: a gate judges the others.
        """
        ...
