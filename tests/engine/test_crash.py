"""Crash safety: the Nth mutation fails (before or after Cloudflare applied it), the same
command runs again, and the end state is the one a clean run reaches, with no duplicates.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from tests.engine.test_advance import run_to
from tgk_deploy.engine import rollback
from tgk_deploy.engine.advance import AdvanceStatus, advance, approve
from tgk_deploy.errors import TgkError

MUTATIONS_IN_BRIDGE = 8  # claim, D1 export (start + 2 polls), upload, deploy, email rule, stamp
MUTATIONS_IN_GRADUAL = 6  # 75, 50, 25, pin stable, two email rules


def fingerprint(world) -> dict[str, object]:
    """What must be true after the command, whatever happened on the way."""
    observed = world.observe()
    production = observed.environments["production"]
    live = production.live
    return {
        "shares": sorted(
            (production.versions[v.version_id].tag or "baseline", v.percentage)
            for v in live.versions
        ),
        "mark": (live.mark.kind, live.mark.step, live.mark.detail) if live.mark else None,
        "rules": {k: r.enabled for k, r in observed.email_rules.items()},
    }


def assert_no_duplicates(world) -> None:
    production = world.observe().environments["production"]
    tags = Counter(v.tag for v in production.versions.values() if v.tag)
    assert all(count == 1 for count in tags.values()), tags
    stamps = Counter(
        (d.mark.phase, d.mark.step)
        for d in production.deployments
        if d.mark and d.mark.step and d.mark.kind.value == "step"
    )
    assert all(count == 1 for count in stamps.values()), stamps


def advance_until_applied(world, phase: int) -> None:
    for _ in range(3):
        report = advance(world.context(), phase)
        if report.status is AdvanceStatus.APPLIED:
            return
        if report.plan and report.plan.refusals and report.plan.refusals[0].reason.value == "bake":
            return  # the step before the crash was in fact completed
    raise AssertionError(report.message)


@pytest.fixture
def staged(world):
    """Phase 1 staging applied and baked, the bridge approved: the next advance is the bridge."""
    advance(world.context(), 1)
    approve(world.context(), 1, "bridge")
    world.clock.advance(timedelta(days=1))
    return world


def test_the_reference_bridge_step_makes_the_expected_number_of_mutations(staged):
    before = (
        staged.emulator.calls("POST")
        + staged.emulator.calls("PUT")
        + staged.emulator.calls("DELETE")
    )
    advance(staged.context(), 1)
    after = (
        staged.emulator.calls("POST")
        + staged.emulator.calls("PUT")
        + staged.emulator.calls("DELETE")
    )
    assert after - before == MUTATIONS_IN_BRIDGE


@pytest.mark.parametrize("applied", [False, True], ids=["lost-before", "applied-then-failed"])
@pytest.mark.parametrize("n", range(1, MUTATIONS_IN_BRIDGE + 1))
def test_advance_converges_after_the_nth_mutation_fails(staged, n, applied):
    reference = None
    staged.emulator.faults.fail_nth_mutation(n, status=400, after=applied)
    with pytest.raises(TgkError):
        advance(staged.context(), 1)
    advance_until_applied(staged, 1)
    reference = {
        "shares": [(_bridge_tag(staged), 100.0)],
        "mark": ("step", "bridge", None),
        "rules": {"worker": True, "legacy": True},
    }
    got = fingerprint(staged)
    got["mark"] = (got["mark"][0].value, got["mark"][1], got["mark"][2]) if got["mark"] else None
    assert got == reference
    assert_no_duplicates(staged)


def _bridge_tag(world) -> str:
    """Phase 1's bridge, the stable version of every phase-1 rollback (a baseline tag)."""
    production = world.observe().environments["production"]
    return next(
        v.tag for v in production.versions.values() if v.tag and v.tag.startswith("tgk-p1b-")
    )


@pytest.fixture
def at_full(world):
    run_to(world, 1, "full")
    return world


@pytest.mark.parametrize("applied", [False, True], ids=["lost-before", "applied-then-failed"])
@pytest.mark.parametrize("n", range(1, MUTATIONS_IN_GRADUAL + 1))
def test_gradual_rollback_converges_after_the_nth_mutation_fails(at_full, n, applied):
    at_full.emulator.faults.fail_nth_mutation(n, status=400, after=applied)
    try:
        rollback.gradual(at_full.context())
    except TgkError:
        rollback.gradual(at_full.context())
    state = fingerprint(at_full)
    assert state["shares"] == [(_bridge_tag(at_full), 100.0)]
    assert state["mark"][0].value == "rollback"
    assert state["rules"] == {"worker": False, "legacy": True}
    assert_no_duplicates(at_full)
