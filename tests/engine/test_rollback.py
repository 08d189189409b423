"""Every rollback over HTTP against the emulator: no metrics, no journal, converging on re-run."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.engine.test_advance import run_to
from tests.fixtures.spec import T0
from tgk_deploy.engine import rollback
from tgk_deploy.errors import CloudflareError, ConfigError, RefusedError
from tgk_deploy.planner.observed import MarkKind


def bridge_id(world) -> str:
    """Phase 1's bridge version: the stable version every phase-1 rollback returns to."""
    production = world.production()
    return next(v.id for v in production.versions.values() if (v.tag or "").startswith("tgk-p1b-"))


def test_immediate_rollback_needs_neither_metrics_nor_journal(world):
    run_to(world, 1, "canary-50")
    ctx = world.context(metrics=None, journal=None)
    report = rollback.immediate(ctx)
    assert report.done and report.phase == 1
    production = world.production()
    assert production.live.split == ((bridge_id(world), 100.0),)
    assert production.live.mark.kind is MarkKind.ROLLBACK
    rules = world.observe().email_rules
    assert rules["legacy"].enabled and not rules["worker"].enabled


def test_immediate_rollback_sends_independent_calls_in_one_wave(world):
    run_to(world, 1, "canary-10")
    report = rollback.immediate(world.context())
    (plan,) = report.plans
    assert [sorted(a.kind for a in wave) for wave in plan.waves] == [["email_rule", "pin_version"]]


def test_rolling_back_twice_changes_nothing_the_second_time(world):
    run_to(world, 1, "canary-10")
    rollback.immediate(world.context())
    posts = world.emulator.calls("POST") + world.emulator.calls("PUT")
    again = rollback.immediate(world.context())
    assert "already rolled back" in again.message
    assert world.emulator.calls("POST") + world.emulator.calls("PUT") == posts


def test_immediate_rollback_of_phase_two_removes_the_key_from_the_stable_version(world):
    run_to(world, 2, "canary-25")
    rollback.immediate(world.context())
    production = world.production()
    (share,) = production.live.versions
    version = world.api.get_version(production.script, share.version_id)
    assert "OPENAI_API_KEY" not in version.secret_names
    assert version.vars["AI_ANALYSIS"] == "false"


def test_phase_two_rolls_back_in_one_read_one_act_and_one_verify(world):
    """The switch-off was uploaded beside the phase's first split: the rollback only pins it."""
    run_to(world, 2, "canary-25")
    before = len(world.emulator.requests)
    report = rollback.immediate(world.context())
    (plan,) = report.plans
    assert [sorted(a.kind for a in wave) for wave in plan.waves] == [
        ["email_rule", "email_rule", "pin_version"]
    ]
    calls = sorted(
        f"{r.method} {r.path.split('?')[0].rsplit('/', 1)[-1]}"
        for r in world.emulator.requests[before:]
    )
    rule_ids = {rule.id for rule in world.observe().email_rules.values()}
    calls = ["PUT rule" if c.split()[1] in rule_ids else c for c in calls]
    assert calls == [
        "GET deployments",  # read: live split, marks
        "GET deployments",  # verify: the pin is live
        "GET rules",  # read
        "GET versions",  # read: tags (the prepared switch-off among them)
        "POST deployments",  # act: the switch-off at 100 %
        "PUT rule",  # act: legacy routing on
        "PUT rule",  # act: the Worker's rule off
    ]
    live = world.production().live
    assert live.mark.kind is MarkKind.ROLLBACK
    assert world.production().versions[live.versions[0].version_id].tag.startswith("tgk-rb-")


def test_gradual_rollback_steps_down_with_the_interval_then_rolls_back_fully(world):
    run_to(world, 1, "full")
    start = world.clock.now()
    report = rollback.gradual(world.context())
    assert report.done
    steps = [p.next_share for p in report.plans]
    assert steps == [75, 50, 25, 0]
    assert world.clock.now() - start == timedelta(minutes=90)  # three 30 m intervals
    production = world.production()
    assert production.live.split == ((bridge_id(world), 100.0),)


def test_a_trigger_firing_during_a_gradual_rollback_finishes_it_at_once(world):
    run_to(world, 1, "full")
    soon = world.clock.now() - T0 + timedelta(minutes=45)
    world.set_metric("delivery-rate-low", {"value": 0.0001}, {"after": soon, "value": 0.02})
    report = rollback.gradual(world.context())
    # delivery-rate-low fires when it held for 2 m: checked after 75 % (+30 m) all is
    # healthy; after 50 % (+60 m) it has been bad for 15 m, so 25 % is skipped
    assert [p.next_share for p in report.plans] == [75, 50, 0]
    assert len(world.production().live.versions) == 1


def test_an_interrupted_gradual_rollback_resumes_from_the_live_share(world):
    run_to(world, 1, "full")
    ctx = world.context()
    world.emulator.faults.fail_nth_mutation(2, status=400)
    with pytest.raises(CloudflareError) as stopped:
        rollback.gradual(ctx)
    assert "run the same rollback command again" in (stopped.value.hint or "")
    resumed = rollback.gradual(world.context())
    assert resumed.plans[0].next_share == 50  # 75 was applied before the failure
    assert resumed.done


def test_feature_rollback_switches_off_without_moving_traffic(world):
    run_to(world, 3, "critical-only")
    before = world.production().live
    report = rollback.feature(world.context(), "dynamic-routing")
    assert report.done and report.phase == 3
    after = world.production().live
    assert [v.percentage for v in after.versions] == [v.percentage for v in before.versions]
    version = world.api.get_version(world.production().script, after.versions[0].version_id)
    assert version.vars["DYNAMIC_ROUTING"] == "false"


def test_an_unknown_feature_is_bad_input(world):
    with pytest.raises(ConfigError) as refused:
        rollback.feature(world.context(), "teleport")
    assert "ai, buttons, dynamic-routing, email-replies" in refused.value.message


def test_to_version_pins_the_named_version(world):
    run_to(world, 1, "full")
    baseline = world.seeded["tgk-email-orchestrator"]
    rollback.to_version(world.context(), baseline)
    assert world.production().live.split == ((baseline, 100.0),)
    with pytest.raises(RefusedError):
        rollback.to_version(world.context(), "0000")


def test_destroy_exports_d1_restores_legacy_routing_then_deletes_everything(world):
    run_to(world, 1, "canary-10")
    ctx = world.context()
    plan = rollback.destroy_plan(ctx)
    with pytest.raises(ConfigError):
        rollback.destroy(ctx, plan, confirm="yes")
    report = rollback.destroy(ctx, plan, confirm="tgk-email-orchestrator")
    assert report.done
    for backup in plan.backups:
        assert Path(backup).read_text().startswith("PRAGMA")
    rules = world.api.email_rules()
    assert {r.name: r.enabled for r in rules} == {
        "tgk-email-orchestrator": False,
        "legacy-email-router": True,
    }
    with pytest.raises(CloudflareError):
        world.api.deployments("tgk-email-orchestrator")


@pytest.fixture
def blackhole():
    """A port that takes connections and never answers: Prometheus behind a dead load balancer."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


def test_a_blackholed_prometheus_costs_a_gradual_rollback_one_short_budget(
    world, prometheus, blackhole
):
    """Between-step checks share CHECK_BUDGET_SECONDS; past it they are inconclusive, and it goes on.

    A run's length is its wall time plus the intervals it waits (simulated here).
    """
    import time

    from tgk_deploy.triggers.evaluate import Outcome
    from tgk_deploy.triggers.prometheus import PrometheusClient

    interval = timedelta(seconds=2)

    def gradual_with(url: str) -> tuple[rollback.RollbackReport, float]:
        run_to(world, 1, "full")
        with PrometheusClient(url) as metrics:
            start, simulated = time.perf_counter(), world.clock.now()
            report = rollback.gradual(world.context(metrics=metrics), interval=interval)
            waited = (world.clock.now() - simulated).total_seconds()
        return report, time.perf_counter() - start + waited

    healthy, healthy_seconds = gradual_with(prometheus.url)
    dead, dead_seconds = gradual_with(blackhole)
    print(
        f"\ngradual rollback, 2 s interval: healthy {healthy_seconds:.2f} s, blackholed {dead_seconds:.2f} s"
    )

    assert healthy.done and dead.done
    assert [p.next_share for p in dead.plans] == [75, 50, 25, 0]
    assert dead.verdicts and all(v.outcome is Outcome.INCONCLUSIVE for v in dead.verdicts)
    assert any("budget" in v.why for v in dead.verdicts)
    assert dead_seconds <= 2 * healthy_seconds, (healthy_seconds, dead_seconds)
    assert dead_seconds <= healthy_seconds + rollback.CHECK_BUDGET_SECONDS + 1.5


@pytest.mark.parametrize("step", ["bridge", "canary-10", "canary-50", "full", "retire-legacy"])
def test_a_rollback_from_any_phase_one_step_restores_the_mail_path_of_before(world, step):
    """Rules as before the rollout, and all traffic on a version that only forwards to legacy."""
    before = world.observe().email_rules
    run_to(world, 1, step)
    rollback.immediate(world.context(metrics=None, journal=None))
    observed = world.observe()
    rules = observed.email_rules
    assert {k: r.enabled for k, r in rules.items()} == {k: r.enabled for k, r in before.items()}
    production = observed.environments["production"]
    (stable,) = production.live.versions
    assert stable.percentage == 100.0
    version = world.api.get_version(production.script, stable.version_id)
    assert version.vars["LEGACY_BRIDGE"] == "true"  # every message forwarded to legacy, unchanged
