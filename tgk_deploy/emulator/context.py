"""What the emulated services share besides the wire: one clock, one seeded id source, one lock.

All ids come from one seeded RNG and all timestamps from an injected clock, so
a rehearsal with the same seed and clock is repeatable; one re-entrant lock
makes each API call atomic across services (a demo seed touches them all).
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]

DEFAULT_ACCOUNT_ID = "023e105f4ecef8ad9ca31a8372d0c353"
DEFAULT_ZONE_ID = "9a7806061c88ada191ed06f989cc3dac"
DEFAULT_ZONE_NAME = "tgk.example"
DEFAULT_AUTHOR = "emulator@tgk-deploy.invalid"


class SimulatedClock:
    """A clock that moves only when told to: rehearsals run weeks of bake in seconds."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = moment


def wall_clock() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """Cloudflare's timestamps: UTC, microseconds, a ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Shared:
    """The clock, the seeded ids and the lock every service of one emulator uses."""

    def __init__(self, *, clock: Clock, seed: int, author_email: str) -> None:
        self.clock = clock
        self.seed = seed
        self.author_email = author_email
        self.public_origin = "http://127.0.0.1"  # the server sets its real origin
        self.lock = threading.RLock()
        self.rng = random.Random(seed)

    def restart_ids(self) -> None:
        self.rng = random.Random(self.seed)

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def hex32(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"
