"""Races with forced interleavings: the emulator holds one runner's call until the other's lands.

Two runners each have their own API client, journal and lock (two machines).
Advance against an immediate rollback: the rollback's end state always
stands. Advance against advance: one runner makes the step's changes, the
other stops having made none but its claim.
"""

from __future__ import annotations

import threading
import traceback
from datetime import timedelta

import pytest

from tests.engine.test_advance import run_to
from tgk_deploy.engine import rollback
from tgk_deploy.engine.advance import AdvanceStatus, advance, approve
from tgk_deploy.errors import ConflictError
from tgk_deploy.journal.store import Journal
from tgk_deploy.planner.observed import MarkKind

DEPLOYMENTS = ".../workers/scripts/tgk-email-orchestrator/deployments"
VERSIONS = ".../workers/scripts/tgk-email-orchestrator/versions"
RULES = "/zones/*/email/routing/rules/*"


def runner(world, name: str):
    """A context as a second machine would have it: its own client, journal and lock."""
    folder = world.tmp / name
    folder.mkdir(exist_ok=True)
    return world.context(api=world.api_for(), journal=Journal(folder / "journal.sqlite"))


def in_thread(call) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except ConflictError as error:
            outcome.append(error)
        except Exception:  # only a conflict is acceptable: shown by the assertion
            outcome.append(traceback.format_exc())

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


# --------------------------------------------------------------------------- advance vs rollback

# (step the advance applies, the advance's call held until the rollback is done)
ADVANCE_CALLS = {
    "retire-legacy": [
        ("POST", DEPLOYMENTS, 0),  # the claim
        ("PUT", RULES, 0),  # the legacy rule off
        ("POST", DEPLOYMENTS, 1),  # the stamp
    ],
    "canary-50": [
        ("POST", DEPLOYMENTS, 0),  # the claim
        ("POST", DEPLOYMENTS, 1),  # the 50 % split
        ("POST", DEPLOYMENTS, 2),  # the stamp
    ],
}
CASES = [
    pytest.param(step, call, id=f"{step}-{call[0]}-{call[1].rsplit('/', 1)[-1]}-{call[2]}")
    for step, calls in ADVANCE_CALLS.items()
    for call in calls
]


def at_step_before(world, step: str) -> None:
    run_to(world, 1, "full" if step == "retire-legacy" else "canary-10")
    world.clock.advance(timedelta(days=4))
    if step == "retire-legacy":
        approve(world.context(), 1, step)


def assert_rolled_back(world) -> None:
    observed = world.observe()
    production = observed.environments["production"]
    (stable,) = production.live.versions  # phase 1's bridge: the existing system's path
    assert stable.percentage == 100.0
    assert (production.versions[stable.version_id].tag or "").startswith("tgk-p1b-")
    assert production.live.mark is not None and production.live.mark.kind is MarkKind.ROLLBACK
    rules = observed.email_rules
    assert rules["legacy"].enabled and not rules["worker"].enabled


@pytest.mark.parametrize(("step", "call"), CASES)
def test_an_advance_call_landing_after_an_immediate_rollback_never_overwrites_it(world, step, call):
    at_step_before(world, step)
    method, path, skip = call
    hold = world.emulator.faults.hold_next(method, path, skip=skip, timeout_s=30)
    thread, outcome = in_thread(lambda: advance(runner(world, "ci"), 1))
    assert hold.arrived.wait(30), "the advance never made that call"

    done = rollback.immediate(runner(world, "laptop"))  # while the advance's call is in flight
    hold.released.set()
    thread.join(60)

    assert done.done
    (result,) = outcome
    assert isinstance(result, ConflictError), result
    assert "rollback" in result.message
    assert_rolled_back(world)
    assert "already rolled back" in rollback.immediate(world.context()).message


@pytest.mark.parametrize("step", list(ADVANCE_CALLS))
def test_a_rollback_landing_after_the_advance_stands_too(world, step):
    at_step_before(world, step)
    hold = world.emulator.faults.hold_next(
        "POST", DEPLOYMENTS, until=("POST", DEPLOYMENTS), timeout_s=30
    )
    thread, outcome = in_thread(lambda: rollback.immediate(runner(world, "laptop")))
    assert hold.arrived.wait(30)
    try:
        stepped = advance(runner(world, "ci"), 1)  # its claim releases the held pin
    except ConflictError as error:  # the rollback landed inside the step: it stopped
        stepped = error
    thread.join(60)

    assert isinstance(stepped, ConflictError) or stepped.status is AdvanceStatus.APPLIED
    assert outcome and getattr(outcome[0], "done", False), outcome
    assert_rolled_back(world)


# --------------------------------------------------------------------------- advance vs advance


def interleave(world, variant: int) -> None:
    """Four ways the two runners' calls meet; the test runs each five times."""
    faults = world.emulator.faults
    if variant == 0:  # the first claim lands after the second
        faults.hold_next("POST", DEPLOYMENTS, until=("POST", DEPLOYMENTS), timeout_s=30)
    elif variant == 1:  # the first claim lands, its answer waits for the second claim
        faults.hold_next("POST", DEPLOYMENTS, until=("POST", DEPLOYMENTS), after=True, timeout_s=30)
    elif variant == 2:  # the first upload waits for the other's claim
        faults.hold_next("POST", VERSIONS, until=("POST", DEPLOYMENTS), timeout_s=5)
    # variant 3: no hold; both have planned before either applies (the barrier)


@pytest.mark.parametrize("attempt", range(20))
def test_two_runners_on_one_step_one_mutates(world, attempt):
    advance(world.context(), 1)  # staging
    approve(world.context(), 1, "bridge")
    world.clock.advance(timedelta(days=1))
    exports_before = world.emulator.calls("POST", "/export")
    interleave(world, attempt % 4)
    barrier = threading.Barrier(2)

    def both_planned(plan) -> bool:
        barrier.wait(timeout=30)
        return True

    runs = [runner(world, name) for name in ("ci", "laptop")]
    threads = [in_thread(lambda ctx=ctx: advance(ctx, 1, confirm=both_planned)) for ctx in runs]
    for thread, _ in threads:
        thread.join(60)

    outcomes = [outcome[0] for _, outcome in threads]
    applied = [o for o in outcomes if getattr(o, "status", None) is AdvanceStatus.APPLIED]
    stopped = [o for o in outcomes if isinstance(o, ConflictError)]
    assert len(applied) == 1 and len(stopped) == 1, outcomes
    assert "claimed" in stopped[0].message
    winner = applied[0].run_id
    production = world.production()
    tags = [v.tag for v in production.versions.values() if v.tag and v.tag.startswith("tgk-p1")]
    assert len(tags) == 1  # one upload
    by_run = {
        d.mark.run_id
        for d in production.deployments
        if d.mark
        and d.mark.kind not in (MarkKind.CLAIM, MarkKind.APPROVAL)
        and d.mark.phase == 1
        and d.mark.step == "bridge"
    }
    assert by_run == {winner}  # the split and the stamp: the winner's alone
    assert world.emulator.calls("PUT", "/rules/" + world.seeded["worker_rule"]) == 1
    assert world.emulator.calls("POST", "/export") - exports_before == 3  # one export, polled


def test_the_window_in_which_a_late_advance_call_stands_is_a_few_round_trips(world, capsys):
    """How long an in-flight advance deployment landing after a rollback stays live.

    Measured from the emulator's log (50 ms a call): from the late split landing to
    the advance's own deployment that puts the rollback's state back. README states it.
    """
    from datetime import datetime

    at_step_before(world, "canary-50")
    world.emulator.faults.set_latency(50)
    hold = world.emulator.faults.hold_next("POST", DEPLOYMENTS, skip=1, timeout_s=30)
    thread, outcome = in_thread(lambda: advance(runner(world, "ci"), 1))
    assert hold.arrived.wait(30)
    rollback.immediate(runner(world, "laptop"))
    mark = len(world.emulator.requests)
    hold.released.set()
    thread.join(60)

    posts = [
        r for r in world.emulator.requests[mark:] if r.method == "POST" and "deployments" in r.path
    ]
    late, restored = posts[0], posts[1]
    window = (
        datetime.fromisoformat(restored.timestamp) - datetime.fromisoformat(late.timestamp)
    ).total_seconds()
    with capsys.disabled():
        print(f"\nrace window: a late advance split stood {window * 1000:.0f} ms at 50 ms a call")
    assert isinstance(outcome[0], ConflictError)
    assert_rolled_back(world)
    assert window < 20 * 0.05
