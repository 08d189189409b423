"""The only Prometheus I/O: PromQL over httpx against ``/api/v1/query`` and ``/query_range``.

It fetches numbers and nothing else; ``evaluate.py`` judges them. Transient
failures (connection errors, timeouts, 429 and 5xx) are retried with jittered
exponential backoff until a deadline; Prometheus' own ``errorType``/``error``
and ``warnings`` are kept verbatim. ``fetch`` sends every distinct query of a
gate at once, on threads sharing one ``httpx.Client`` (one keep-alive pool
with a connection per query in flight).

A ``for:`` window is asked as ONE instant query: a subquery whose points fall
on the range query's exact grid (``window_query``), so the judge sees the same
points and values a range query gives, gaps and NaN included.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from math import gcd
from typing import Any, NamedTuple, Self

import httpx
from pydantic import BaseModel, ConfigDict
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_before_delay,
    wait_random_exponential,
)

from tgk_deploy.errors import (
    ConfigError,
    MetricsError,
    PrometheusQueryError,
    PrometheusUnreachable,
)
from tgk_deploy.spec.models import PrometheusSpec, env_ref_name
from tgk_deploy.triggers import recorded
from tgk_deploy.triggers.samples import (
    Point,
    QueryRequest,
    QueryResult,
    Series,
    is_instant_vector,
    untrustworthy,
)

QUERY_PATH = "api/v1/query"
QUERY_RANGE_PATH = "api/v1/query_range"
MAX_IN_FLIGHT = 64  # every distinct query of several phases' gates out at once (about 35 today)


class RetryPolicy(BaseModel):
    """How long to keep trying a query that failed for a reason that may pass."""

    model_config = ConfigDict(frozen=True)

    deadline: timedelta = timedelta(seconds=20)
    first_wait: timedelta = timedelta(milliseconds=200)
    max_wait: timedelta = timedelta(seconds=3)


class _Transient(Exception):
    """A failure worth retrying; turned into a MetricsError when the deadline passes."""

    def __init__(self, description: str, error: MetricsError | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.error = error
        self.retry_after: float | None = None


def _safe_url(url: httpx.URL | str) -> str:
    """The base URL without credentials or query: safe for messages."""
    parsed = httpx.URL(str(url))
    return str(parsed.copy_with(userinfo=b"", query=None, fragment=None))


def _timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("query times must be timezone-aware")
    return f"{moment.timestamp():.3f}"


def _seconds(duration: timedelta) -> str:
    return f"{duration.total_seconds():g}s"


class BadAnswer(ValueError):
    """Prometheus said success, but the answer is not what its API documents."""


def _parse_time(value: Any) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadAnswer(f"a sample time {value!r} is not a number")
    try:
        return datetime.fromtimestamp(float(value), tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise BadAnswer(f"a sample time {value!r} is not a time") from None


def _parse_value(value: Any) -> float:
    """Prometheus sends sample values as strings ("0.5", "+Inf", "NaN")."""
    if not isinstance(value, str):
        raise BadAnswer(f"a sample value {value!r} is not a string as the API sends it")
    try:
        return float(value)
    except ValueError:
        raise BadAnswer(f"a sample value {value!r} is not a number") from None


def _pair(item: Any, shift: timedelta = timedelta(0)) -> Point:
    if not isinstance(item, list | tuple) or len(item) != 2:
        raise BadAnswer(f"a sample {item!r} is not a [time, value] pair")
    return Point(time=_parse_time(item[0]) - shift, value=_parse_value(item[1]))


def _labels(item: dict[str, Any]) -> dict[str, str]:
    labels = item.get("metric", {})
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise BadAnswer(f"a series' labels {labels!r} are not a map of strings")
    return labels


def _items(result: Any, key: str) -> list[dict[str, Any]]:
    if not isinstance(result, list) or not all(
        isinstance(item, dict) and key in item for item in result
    ):
        raise BadAnswer(f"the result {str(result)[:80]!r} is not a list of series with {key!r}")
    return result


def _parse_series(result_type: Any, result: Any, shift: timedelta = timedelta(0)) -> list[Series]:
    """The series of a success answer, every shape checked: never an exception but BadAnswer.

    ``shift`` moves a window subquery's points back onto the instants they were
    evaluated at (see ``window_query``).
    """
    if result_type == "vector":
        return [
            Series(labels=_labels(item), points=[_pair(item["value"])])
            for item in _items(result, "value")
        ]
    if result_type == "matrix":
        series = []
        for item in _items(result, "values"):
            if not isinstance(item["values"], list):
                raise BadAnswer(f"a series' values {str(item['values'])[:80]!r} are not a list")
            points = [_pair(p, shift) for p in item["values"]]
            series.append(Series(labels=_labels(item), points=points))
        return series
    if result_type == "scalar":
        return [Series(points=[_pair(result)])]
    raise BadAnswer(f"a {result_type!r} result carries no numbers")


class WindowQuery(NamedTuple):
    """A window's points as one instant query: send ``query`` at ``time``.

    Prometheus stamps the points ``shift`` after the instants they were
    evaluated at; subtract it to read them on the request's grid.
    """

    query: str
    time: datetime
    shift: timedelta


def _ms(duration: timedelta) -> int:
    return round(duration.total_seconds() * 1000)


def window_query(request: QueryRequest) -> WindowQuery | None:
    """The subquery that evaluates ``request.query`` exactly where its range query would.

    A range query evaluates at ``start``, ``start + step``, ... up to ``at``. A
    subquery ``(q)[range:step]`` evaluates at multiples of ``step`` since the
    epoch: the same instants only when the grid's last point ``last`` is one.
    Otherwise the outer subquery runs at ``aligned`` (``last`` rounded up to a
    multiple of ``step``) and each of its points asks for ``q`` a ``shift``
    earlier through an inner one-point subquery: ``last_over_time((q)[r:g]
    offset shift)``, where ``g`` divides every grid instant and ``r < g`` keeps
    one point in range. The outer range is ``n`` steps and a half, so the
    window holds the grid's ``n + 1`` points whether the range's left end is
    closed (Prometheus 2) or open (Prometheus 3).

    None when the query cannot carry a subquery (not an instant vector) or the
    grid is finer than milliseconds allow: the caller asks a range query then.
    """
    assert request.window is not None and request.step is not None
    step, window = _ms(request.step), _ms(request.window)
    if step < 2 or window < 0 or not is_instant_vector(request.query):
        return None
    intervals = window // step
    last = round(request.start.timestamp() * 1000) + intervals * step
    aligned = -(-last // step) * step
    shift = aligned - last
    inner = f"({request.query})"
    if shift:
        grain = gcd(last, step)
        if grain < 2:
            return None
        inner = f"last_over_time({inner}[{grain // 2}ms:{grain}ms] offset {shift}ms)"
    return WindowQuery(
        query=f"({inner})[{intervals * step + step // 2}ms:{step}ms]",
        time=datetime.fromtimestamp(aligned / 1000, tz=UTC),
        shift=timedelta(milliseconds=shift),
    )


class PrometheusClient:
    """Queries one Prometheus server; build it with ``from_spec``, or from a URL in tests.

    ``transport`` is httpx's seam: tests and benchmarks may wrap the network.
    """

    simulated = False

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
        timeout: timedelta = timedelta(seconds=10),
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        max_concurrency: int = MAX_IN_FLIGHT,
        recording_rules: bool = False,
    ) -> None:
        if httpx.URL(base_url).scheme not in ("http", "https") or not httpx.URL(base_url).host:
            raise ConfigError(
                f"the Prometheus URL must look like http(s)://host:port[/path], "
                f"not {_safe_url(base_url)!r}"
            )
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.max_concurrency = max_concurrency
        self.recording_rules = recording_rules
        self._url = base_url
        self._options = {"headers": headers, "auth": auth, "transport": transport}
        self._client = httpx.Client(
            base_url=base_url,
            headers=dict(headers or {}),
            auth=auth,
            timeout=httpx.Timeout(timeout.total_seconds()),
            transport=transport,
            limits=httpx.Limits(
                max_connections=max_concurrency, max_keepalive_connections=max_concurrency
            ),
        )
        self.base_url = _safe_url(self._client.base_url)

    @classmethod
    def from_spec(
        cls,
        spec: PrometheusSpec,
        environ: Mapping[str, str] | None = None,
        **options: Any,
    ) -> Self:
        """Resolve the project's ``${NAME}`` references from the environment."""
        env = os.environ if environ is None else environ

        def resolve(ref: str | None, field: str) -> str | None:
            if ref is None:
                return None
            name = env_ref_name(ref)
            value = env.get(name)
            if not value:
                raise ConfigError(
                    f"{name} is not set: prometheus.{field} in tgk-deploy.yaml refers to it",
                    hint=f"export {name}=...",
                )
            return value

        url = resolve(spec.url, "url")
        assert url is not None
        token = resolve(spec.bearer_token, "bearer_token")
        username = resolve(spec.username, "username")
        password = resolve(spec.password, "password")
        if (username is None) != (password is None):
            raise ConfigError("prometheus.username and prometheus.password go together")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        auth = httpx.BasicAuth(username, password) if username and password else None
        options.setdefault("timeout", spec.timeout)
        options.setdefault("recording_rules", spec.recording_rules)
        return cls(url, headers=headers, auth=auth, **options)

    def bounded(self, seconds: float) -> PrometheusClient:
        """The same server, given up on within ``seconds``, retries included.

        For checks that must never hold anything up (a gradual rollback's
        between-step checks): a dead or blackholed Prometheus costs ``seconds``.
        """
        budget = timedelta(seconds=max(0.05, seconds))
        return PrometheusClient(
            self._url,
            timeout=budget,
            retry=RetryPolicy(
                deadline=budget,
                first_wait=min(self.retry.first_wait, budget / 10),
                max_wait=min(self.retry.max_wait, budget / 4),
            ),
            max_concurrency=self.max_concurrency,
            recording_rules=self.recording_rules,
            **self._options,  # type: ignore[arg-type]
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ single queries

    def query(self, query: str, at: datetime) -> QueryResult:
        """Instant query at ``at``; raises ``MetricsError``."""
        return self.run(QueryRequest(query=query, at=at))

    def query_range(
        self, query: str, start: datetime, end: datetime, step: timedelta
    ) -> QueryResult:
        """Range query over ``[start, end]`` every ``step``; raises ``MetricsError``."""
        return self._run(QueryRequest(query=query, at=end, window=end - start, step=step), None)

    def run(self, request: QueryRequest) -> QueryResult:
        """One request with retries; raises ``MetricsError`` once it gives up.

        A window goes out as one instant query (``window_query``) unless its
        query cannot carry a subquery; ``query_range`` callers get a range query.
        """
        window = window_query(request) if request.is_range else None
        return self._run(request, window)

    def _run(self, request: QueryRequest, window: WindowQuery | None) -> QueryResult:
        shift = timedelta(0)
        if window is not None:
            path = QUERY_PATH
            params = {"query": window.query, "time": _timestamp(window.time)}
            shift = window.shift
        elif request.is_range:
            path = QUERY_RANGE_PATH
            params = {
                "query": request.query,
                "start": _timestamp(request.start),
                "end": _timestamp(request.at),
                "step": _seconds(request.step or timedelta(minutes=1)),
            }
        else:
            path = QUERY_PATH
            params = {"query": request.query, "time": _timestamp(request.at)}
        params["timeout"] = _seconds(self.timeout)

        retrying = Retrying(
            retry=retry_if_exception_type(_Transient),
            wait=self._wait,
            stop=stop_before_delay(self.retry.deadline.total_seconds()),
            reraise=True,
        )
        try:
            body = retrying(self._post, path, params, request.query)
        except _Transient as exhausted:
            attempts = retrying.statistics.get("attempt_number", 1)
            if exhausted.error is not None:
                raise exhausted.error from None
            raise PrometheusUnreachable(
                f"Prometheus at {self.base_url} did not answer after {attempts} attempt(s) "
                f"within {_seconds(self.retry.deadline)}: {exhausted.description}",
                hint="check prometheus.url and that Prometheus is up; the verdict is inconclusive",
            ) from None
        data = body.get("data")
        result_type = data.get("resultType") if isinstance(data, dict) else None
        try:
            if not isinstance(data, dict):
                raise BadAnswer(f"data {str(data)[:80]!r} is not an object")
            series = _parse_series(result_type, data.get("result"), shift)
        except BadAnswer as bad:
            raise PrometheusQueryError(
                request.query,
                status=200,
                error_type="unexpected_result",
                error=f"cannot read the answer: {bad}",
                hint="the verdict is inconclusive; is prometheus.url a Prometheus HTTP API?",
            ) from None
        answer = QueryResult(
            request=request,
            result_type=str(result_type),
            series=series,
            warnings=[str(w) for w in body.get("warnings") or []],
        )
        problem = untrustworthy(answer)
        if problem is not None:
            raise PrometheusQueryError(
                request.query, status=200, error_type="untrustworthy_result", error=problem
            )
        return answer

    def _wait(self, state: RetryCallState) -> float:
        """Jittered exponential backoff, stretched to Retry-After when the server asks.

        A Retry-After longer than the deadline leaves makes ``stop_before_delay``
        give up at once rather than sleep past it.
        """
        backoff = wait_random_exponential(
            multiplier=self.retry.first_wait.total_seconds(),
            max=self.retry.max_wait.total_seconds(),
        )(state)
        failure = state.outcome.exception() if state.outcome else None
        if isinstance(failure, _Transient) and failure.retry_after is not None:
            return max(backoff, failure.retry_after)
        return backoff

    def _post(self, path: str, params: dict[str, str], query: str) -> dict[str, Any]:
        try:
            response = self._client.post(path, data=params)
        except httpx.TransportError as failure:
            raise _Transient(f"{type(failure).__name__}: {failure}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("status") == "success":
            return body
        if isinstance(body, dict) and body.get("status") == "error":
            error = PrometheusQueryError(
                query,
                status=response.status_code,
                error_type=str(body.get("errorType", "unknown")),
                error=str(body.get("error", "")),
            )
        else:
            snippet = " ".join(response.text.split())[:200]
            error = PrometheusQueryError(
                query,
                status=response.status_code,
                error_type="http",
                error=snippet or response.reason_phrase,
            )
        if response.status_code == 429 or response.status_code >= 500:
            transient = _Transient(error.message, error)
            retry_after = response.headers.get("Retry-After")
            if retry_after and retry_after.isdigit():
                transient.retry_after = float(retry_after)
            raise transient
        raise error

    # ------------------------------------------------------------------ a gate's queries

    def fetch(self, requests: Sequence[QueryRequest]) -> list[QueryResult]:
        """Answer every request concurrently; a failure becomes that result's ``error``.

        With ``recording_rules``, one round reads every recordable request from the
        recording rules, a lookup per shape; only what they cannot vouch for is
        asked raw, in a second round.
        """
        unique: dict[tuple[Any, ...], QueryRequest] = {}
        for request in requests:
            unique.setdefault(request.cache_key(), request)
        answers: dict[tuple[Any, ...], QueryResult] = {}
        if self.recording_rules:
            plan = recorded.lookups(unique.values())
            looked_up = self._answer_all([lookup.request for lookup in plan])
            for lookup, answer in zip(plan, looked_up, strict=True):
                for result in recorded.read(lookup, answer).values():
                    answers[result.request.cache_key()] = result
        raw = [request for key, request in unique.items() if key not in answers]
        answers.update((r.cache_key(), a) for r, a in zip(raw, self._answer_all(raw), strict=True))
        return [
            answers[request.cache_key()].model_copy(update={"request": request})
            for request in requests
        ]

    def _answer_all(self, requests: Sequence[QueryRequest]) -> list[QueryResult]:
        """Every request at once, one thread each up to ``max_concurrency``; errors as results."""

        def answer(request: QueryRequest) -> QueryResult:
            try:
                return self.run(request)
            except MetricsError as failure:
                return QueryResult(request=request, error=failure.message)

        if not requests:
            return []
        workers = max(1, min(self.max_concurrency, len(requests)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="prometheus") as pool:
            return list(pool.map(answer, requests))
