"""Context: the first reads can go out before the command has imported what it needs next."""

from __future__ import annotations

from tests.engine.test_advance import run_to


def test_reads_sent_early_are_the_answer_of_the_matching_observe(world):
    run_to(world, 1, "canary-10")
    ctx = world.context()
    before = len(world.emulator.requests)
    ctx.observe_soon(["production"], details=False)
    early = ctx.observe(["production"], details=False)
    after_early = len(world.emulator.requests)
    assert after_early - before == 3  # deployments, versions, email rules: one round
    assert early == world.context().observe(["production"], details=False)
    # taken once: the next observe reads Cloudflare again, and other arguments never match
    ctx.observe_soon(["production"], details=False)
    ctx.observe(["production"])
    assert ctx.early  # the early reads are still waiting for their own question
    ctx.observe(["production"], details=False)
    assert not ctx.early
