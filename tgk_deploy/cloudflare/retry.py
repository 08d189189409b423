"""One retry policy (tenacity) for every Cloudflare call, in place of the SDK's own.

Reads, PUTs and DELETEs are retried on 429, 5xx and connection errors with
exponential backoff and jitter; ``Retry-After`` is honoured whatever its
length (the SDK gives up above 60 s), but never past the command's deadline.
POSTs are retried only by callers that can tell whether the first attempt
took effect (see ``CloudflareAPI.upload_version`` and ``deploy``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type

T = TypeVar("T")


@dataclass
class Deadline:
    """The command-level ``--timeout``: every wait and retry fits inside it."""

    seconds: float
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=-1.0)

    def __post_init__(self) -> None:
        if self.started < 0:
            self.started = self.clock()

    def remaining(self) -> float:
        return self.seconds - (self.clock() - self.started)


class Transient(Exception):
    """A failure worth another attempt; ``retry_after`` is the server's word, if it gave one."""

    def __init__(self, cause: Exception, retry_after: float | None = None) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.retry_after = retry_after


@dataclass
class RetryPolicy:
    deadline: Deadline
    sleep: Callable[[float], None] = time.sleep
    base: float = 0.25
    cap: float = 8.0
    max_attempts: int = 8
    rng: random.Random = field(default_factory=random.Random)
    waits: list[float] = field(default_factory=list)  # what it waited, for tests and reports

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^attempt)]."""
        return self.rng.uniform(0, min(self.cap, self.base * (2**attempt)))

    def run(
        self,
        attempt_once: Callable[[], T],
        on_give_up: Callable[[Transient, str], Exception],
        before_retry: Callable[[], T | None] | None = None,
    ) -> T:
        """Call until it succeeds, a non-transient error, or the deadline/attempts run out.

        ``before_retry`` may find that a failed attempt did take effect after all
        (a POST whose response was lost) and return its result instead.
        """

        def wait(state: RetryCallState) -> float:
            failure = state.outcome.exception() if state.outcome else None
            assert isinstance(failure, Transient)
            attempts = state.attempt_number
            if attempts >= self.max_attempts:
                raise on_give_up(failure, f"gave up after {attempts} attempts") from failure.cause
            asked = failure.retry_after is not None
            pause = failure.retry_after if asked else self.backoff(attempts)
            left = max(0.0, self.deadline.remaining())
            if pause > left:
                who = "the server asked to wait" if asked else "the next retry would wait"
                reason = f"{who} {pause:g} s, more than the {left:.0f} s left of --timeout"
                raise on_give_up(failure, reason) from failure.cause
            self.waits.append(pause)
            return pause

        retrying = Retrying(
            retry=retry_if_exception_type(Transient),
            wait=wait,
            sleep=self.sleep,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                if before_retry is not None and attempt.retry_state.attempt_number > 1:
                    found = before_retry()
                    if found is not None:
                        return found
                return attempt_once()
        raise AssertionError("unreachable: tenacity either returns or raises")
