"""Seeded, deterministic fault injection for the emulator.

The server asks ``Faults.decide(method, path)`` once per API call, before the
call reaches the state. The answer says how long to wait and whether to
answer with an error, drop the connection, or run the call and then drop
(or replace) its response — the case that makes a retried POST create a
second version unless the client looks before it retries.

Order of precedence: one-shot faults (``fail_next``) first, then the Nth
mutation hook, then the random rates. ``hold_next`` forces an interleaving
apart from all of these: one call waits until another has been handled. Random draws come from one
``random.Random(seed)``: the same requests in the same order meet the same
faults.
"""

from __future__ import annotations

import fnmatch
import random
import threading
from dataclasses import dataclass, field
from typing import Literal

MUTATIONS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_PREFIX = "/client/v4"

FaultKind = Literal["respond", "drop"]


@dataclass(frozen=True)
class Fault:
    """What to do to one call. ``after``: let the call change state first."""

    kind: FaultKind
    status: int = 500
    retry_after: float | None = None
    code: int | None = None
    message: str | None = None
    after: bool = False
    reason: str = ""

    def describe(self) -> str:
        when = "after applying" if self.after else "before applying"
        what = "drop connection" if self.kind == "drop" else f"HTTP {self.status}"
        return f"{what} {when} ({self.reason})" if self.reason else f"{what} {when}"


@dataclass(frozen=True)
class Decision:
    latency_s: float
    fault: Fault | None
    hold: Hold | None = None  # wait for its release (before or after handling the call)
    releases: tuple[threading.Event, ...] = ()  # set once this call has been handled


@dataclass
class Hold:
    """Keep one call back until another has been handled, or a test says: forced interleavings.

    ``after``: the call changes state first and only its answer is held (a
    test can then kill the client, as if it died right after the call).
    ``arrived`` is set when the held call is waiting; ``released`` lets it go
    on; ``drop`` set before releasing closes its connection instead.
    """

    method: str
    pattern: str
    until_method: str | None
    until_pattern: str | None
    timeout_s: float
    skip: int = 0  # matching calls to let through first
    after: bool = False
    drop: bool = False
    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    taken: bool = False
    call: str = ""  # "METHOD /path" of the call held

    def wait(self) -> None:
        self.arrived.set()
        self.released.wait(self.timeout_s)


@dataclass
class _Scheduled:
    method: str
    pattern: str
    fault: Fault
    times: int

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and path_matches(self.pattern, path)


@dataclass
class _NthMutation:
    n: int
    fault: Fault
    seen: int = 0


@dataclass
class _Rates:
    error_rate: float = 0.0
    error_status: int = 500
    drop_rate: float = 0.0
    latency_ms: float = 0.0
    jitter_ms: float = 0.0


def path_matches(pattern: str, path: str) -> bool:
    """``.../deployments`` matches any path ending so; ``*`` globs; else the exact path.

    Paths are compared without ``/client/v4`` and without the query string, so
    a pattern written for the API reads the way the API docs do.
    """
    path = strip_prefix(path)
    pattern = strip_prefix(pattern)
    if pattern.startswith("..."):
        return path.endswith(pattern[3:])
    if "*" in pattern or "?" in pattern or "[" in pattern:
        return fnmatch.fnmatchcase(path, pattern)
    return path == pattern


def strip_prefix(path: str) -> str:
    path = path.split("?", 1)[0]
    return path[len(API_PREFIX) :] if path.startswith(API_PREFIX) else path


@dataclass
class Faults:
    """The fault plan of one emulator; every method is safe to call from tests mid-run."""

    seed: int = 0
    _rates: _Rates = field(default_factory=_Rates)
    _scheduled: list[_Scheduled] = field(default_factory=list)
    _nth: list[_NthMutation] = field(default_factory=list)
    _holds: list[Hold] = field(default_factory=list)
    injected: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(self.seed)

    # ---- configuration

    def clear(self, *, seed: int | None = None) -> None:
        """No faults, no latency; the RNG starts over (from ``seed`` if given)."""
        with self._lock:
            if seed is not None:
                self.seed = seed
            self._rng = random.Random(self.seed)
            self._rates = _Rates()
            self._scheduled.clear()
            self._nth.clear()
            for hold in self._holds:
                hold.released.set()  # never leave a call hanging across a reset
            self._holds.clear()
            self.injected.clear()

    def set_latency(self, ms: float, *, jitter_ms: float = 0.0) -> None:
        """Every API call waits ``ms`` (plus a seeded 0..jitter) before it is answered."""
        with self._lock:
            self._rates.latency_ms = ms
            self._rates.jitter_ms = jitter_ms

    @property
    def latency_ms(self) -> float:
        return self._rates.latency_ms

    def set_error_rate(self, rate: float, *, status: int = 500) -> None:
        """A share ``rate`` of calls, drawn from the seeded RNG, answer ``status``."""
        with self._lock:
            self._rates.error_rate = rate
            self._rates.error_status = status

    def set_drop_rate(self, rate: float) -> None:
        """A share ``rate`` of calls have their connection closed without an answer."""
        with self._lock:
            self._rates.drop_rate = rate

    def fail_next(
        self,
        method: str,
        path: str,
        *,
        status: int = 500,
        retry_after: float | None = None,
        code: int | None = None,
        message: str | None = None,
        times: int = 1,
        after: bool = False,
    ) -> None:
        """The next ``times`` calls of ``method`` on ``path`` answer ``status``.

        ``after=True`` applies the call first, then answers the error: the
        client sees a failure although the change happened.
        """
        fault = Fault("respond", status, retry_after, code, message, after, "fail_next")
        self._schedule(method, path, fault, times)

    def drop_next(self, method: str, path: str, *, times: int = 1, after: bool = False) -> None:
        """Close the connection of the next ``times`` matching calls without a response.

        ``after=True`` applies the mutation and then drops: the client cannot
        tell whether its POST made a version.
        """
        self._schedule(method, path, Fault("drop", after=after, reason="drop_next"), times)

    def fail_nth_mutation(
        self,
        n: int,
        *,
        status: int = 500,
        drop: bool = False,
        after: bool = False,
        retry_after: float | None = None,
    ) -> None:
        """The ``n``-th POST/PUT/PATCH/DELETE from now (1-based) fails."""
        if n < 1:
            raise ValueError("n counts from 1")
        fault = (
            Fault("drop", after=after, reason=f"mutation #{n}")
            if drop
            else Fault("respond", status, retry_after, after=after, reason=f"mutation #{n}")
        )
        with self._lock:
            self._nth.append(_NthMutation(n, fault))

    def hold_next(
        self,
        method: str,
        path: str,
        *,
        until: tuple[str, str] | None = None,
        skip: int = 0,
        after: bool = False,
        timeout_s: float = 10.0,
    ) -> Hold:
        """Hold the next ``method path`` call (after ``skip`` others) until ``until`` is handled.

        The held call then goes on: it lands after the other, whatever the
        clients' timing. Without ``until`` only the test releases it
        (``hold.released.set()``); ``timeout_s`` bounds the wait either way.
        """
        hold = Hold(
            method.upper(),
            path,
            until[0].upper() if until else None,
            until[1] if until else None,
            timeout_s,
            skip=skip,
            after=after,
        )
        with self._lock:
            self._holds.append(hold)
        return hold

    def _schedule(self, method: str, path: str, fault: Fault, times: int) -> None:
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._scheduled.append(_Scheduled(method.upper(), path, fault, times))

    # ---- the server's question

    def decide(self, method: str, path: str) -> Decision:
        method = method.upper()
        with self._lock:
            latency = self._rates.latency_ms
            if self._rates.jitter_ms:
                latency += self._rng.uniform(0, self._rates.jitter_ms)
            fault = self._pick(method, path)
            if fault is not None:
                self.injected.append(f"{method} {strip_prefix(path)}: {fault.describe()}")
            held = None
            for hold in self._holds:
                if hold.taken or hold.method not in ("*", method):
                    continue
                if not path_matches(hold.pattern, path):
                    continue
                if hold.skip:
                    hold.skip -= 1
                    continue
                held = hold
                break
            if held is not None:
                held.taken = True
                held.call = f"{method} {strip_prefix(path)}"
                self.injected.append(f"{method} {strip_prefix(path)}: held")
            releases = tuple(
                h.released
                for h in self._holds
                if h is not held
                and h.until_method in ("*", method)
                and h.until_pattern is not None
                and path_matches(h.until_pattern, path)
            )
            self._holds = [h for h in self._holds if not (h.taken and h.released.is_set())]
            return Decision(latency / 1000.0, fault, hold=held, releases=releases)

    def _pick(self, method: str, path: str) -> Fault | None:
        for scheduled in self._scheduled:
            if scheduled.matches(method, path):
                scheduled.times -= 1
                if scheduled.times == 0:
                    self._scheduled.remove(scheduled)
                return scheduled.fault
        if method in MUTATIONS and self._nth:
            hit: Fault | None = None
            for hook in list(self._nth):
                hook.seen += 1
                if hook.seen == hook.n:
                    self._nth.remove(hook)
                    hit = hit or hook.fault
            if hit is not None:
                return hit
        rates = self._rates
        if rates.drop_rate and self._rng.random() < rates.drop_rate:
            return Fault("drop", reason="drop rate")
        if rates.error_rate and self._rng.random() < rates.error_rate:
            return Fault("respond", rates.error_status, reason="error rate")
        return None

    def snapshot(self) -> dict[str, object]:
        """The plan as JSON, for the control plane."""
        with self._lock:
            return {
                "seed": self.seed,
                "latency_ms": self._rates.latency_ms,
                "jitter_ms": self._rates.jitter_ms,
                "error_rate": self._rates.error_rate,
                "error_status": self._rates.error_status,
                "drop_rate": self._rates.drop_rate,
                "scheduled": [
                    {
                        "method": s.method,
                        "path": s.pattern,
                        "times": s.times,
                        **_fault_json(s.fault),
                    }
                    for s in self._scheduled
                ],
                "nth_mutation": [
                    {"n": h.n, "seen": h.seen, **_fault_json(h.fault)} for h in self._nth
                ],
                "injected": list(self.injected),
            }


def _fault_json(fault: Fault) -> dict[str, object]:
    return {
        "kind": fault.kind,
        "status": fault.status,
        "retry_after": fault.retry_after,
        "after": fault.after,
    }
