"""Time as the engine sees it. Bakes last days in production; a rehearsal runs them in seconds.

Everything that waits asks a ``Clock``: the system clock sleeps, the simulated
clock jumps. Nothing in the engine calls ``time.sleep`` or ``datetime.now``.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    simulated: bool

    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    simulated = False

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class SimulatedClock:
    """Starts at ``start`` and moves only when something sleeps or ``advance`` is called."""

    simulated = True

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        self.advance(timedelta(seconds=max(0.0, seconds)))

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._now += delta
