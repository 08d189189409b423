"""Runs on one machine are kept apart; time is whatever the engine's clock says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tgk_deploy.engine.clock import SimulatedClock
from tgk_deploy.engine.lock import run_lock
from tgk_deploy.errors import ConflictError


def test_a_second_run_is_refused_while_the_first_holds_the_lock(tmp_path):
    lock = tmp_path / "run.lock"
    with run_lock(lock, "r1", "advance --phase 1"):
        with pytest.raises(ConflictError) as refused, run_lock(lock, "r2", "advance --phase 1"):
            pass
        assert "r1" in refused.value.message and "advance --phase 1" in refused.value.message
    with run_lock(lock, "r3", "rollback"):
        pass  # released when the first run ended


def test_the_simulated_clock_moves_only_when_asked():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    clock = SimulatedClock(start)
    assert clock.now() == start
    clock.sleep(3600)
    clock.advance(timedelta(days=2))
    assert clock.now() - start == timedelta(days=2, hours=1)
