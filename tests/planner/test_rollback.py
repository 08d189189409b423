"""Rollback plans: found from Cloudflare's history alone, waves of independent calls."""

from __future__ import annotations

from datetime import timedelta

from tests.fixtures.spec import BUNDLE
from tgk_deploy.planner.actions import PinVersion, SetEmailRule, SetTraffic, SetVars, Stamp
from tgk_deploy.planner.observed import MarkKind
from tgk_deploy.planner.plan import RefusalReason, find_position, plan
from tgk_deploy.planner.rollback import (
    next_gradual_share,
    plan_feature,
    plan_gradual_step,
    plan_immediate,
    plan_to_version,
)
from tgk_deploy.planner.simulate import apply_action, walk_rollout


def state_after(spec, fresh, phase: int, step: str):
    for step_plan, state in walk_rollout(spec, fresh, BUNDLE):
        if (step_plan.phase, step_plan.step) == (phase, step):
            return state
    raise AssertionError((phase, step))


def bridge_of(state) -> str:
    """Phase 1's bridge: the version forwarding every message to the legacy router."""
    production = state.environments["production"]
    (bridge,) = [
        v.id for v in production.versions.values() if v.vars.get("LEGACY_BRIDGE") == "true"
    ]
    return bridge


def apply_waves(state, rollback):
    for wave in rollback.waves:
        for action in wave:
            state = apply_action(state, action, state.observed_at)
        state = state.model_copy(update={"observed_at": state.observed_at + timedelta(seconds=1)})
    return state


def test_immediate_rollback_in_a_canary_pins_stable_and_restores_legacy_routing_at_once(
    spec, fresh
):
    state = state_after(spec, fresh, 1, "canary-10")
    rollback = plan_immediate(spec, state, run_id="r1")
    assert rollback.phase == 1 and rollback.candidate_share == 10
    (wave,) = rollback.waves
    pin, *rules = wave
    assert isinstance(pin, PinVersion) and pin.version_id == bridge_of(state)
    assert pin.message == "tgk p=1 rb=immediate r=r1"
    assert {(r.rule, r.enabled) for r in rules if isinstance(r, SetEmailRule)} == {
        ("worker", False)
    }


def test_after_an_immediate_rollback_everything_is_already_true(spec, fresh):
    state = state_after(spec, fresh, 1, "canary-50")
    after = apply_waves(state, plan_immediate(spec, state))
    again = plan_immediate(spec, after)
    assert again.done and again.waves == []
    production = after.environments["production"]
    assert production.live.split == ((bridge_of(state), 100.0),)
    assert after.email_rules["legacy"].enabled and not after.email_rules["worker"].enabled


def test_rolling_back_phase_two_switches_the_ai_feature_off_on_the_stable_version(spec, fresh):
    state = state_after(spec, fresh, 2, "canary-25")
    rollback = plan_immediate(spec, state)
    assert len(rollback.waves) == 2
    (switch,) = rollback.waves[1]
    assert isinstance(switch, SetVars)
    assert switch.base_version_id == rollback.stable_version_id
    assert switch.remove_secrets == ["OPENAI_API_KEY"] and switch.vars == {"AI_ANALYSIS": "false"}
    assert switch.message.startswith("tgk p=2 rb=immediate")
    after = apply_waves(state, rollback)
    production = after.environments["production"]
    live_version = production.versions[production.live.versions[0].version_id]
    assert "OPENAI_API_KEY" not in live_version.secret_names
    assert live_version.vars.get("AI_ANALYSIS") != "true"
    assert find_position(spec, after).rolled_back


def test_a_rollback_sends_the_next_advance_back_to_the_phase_start(spec, fresh):
    state = state_after(spec, fresh, 2, "canary-25")
    after = apply_waves(state, plan_immediate(spec, state))
    replay = plan(spec, after, 2, BUNDLE)
    assert replay.step == "staging"


def test_nothing_to_roll_back_on_a_fresh_account(spec, fresh):
    rollback = plan_immediate(spec, fresh)
    assert rollback.done and not rollback.refusals and rollback.waves == []


def test_gradual_rollback_walks_the_configured_steps_then_rolls_back_fully(spec, fresh):
    state = state_after(spec, fresh, 1, "full")  # candidate at 100 %
    shares = []
    for _ in range(10):
        step = plan_gradual_step(spec, state, run_id="g1")
        if step.done:
            break
        shares.append(step.next_share)
        state = apply_waves(state, step)
    assert shares == [75, 50, 25, 0]
    assert find_position(spec, state).rolled_back
    production = state.environments["production"]
    assert production.live.split == ((bridge_of(state), 100.0),)


def test_gradual_steps_carry_an_advisory_mark_so_they_are_not_drift(spec, fresh):
    state = state_after(spec, fresh, 1, "full")
    step = plan_gradual_step(spec, state)
    (traffic,) = step.waves[0]
    assert isinstance(traffic, SetTraffic) and traffic.percentage == 75
    assert "note=gradual:75" in traffic.message


def test_an_interrupted_gradual_rollback_resumes_from_the_live_share(spec, fresh):
    state = state_after(spec, fresh, 1, "canary-50")  # candidate at 50 %
    assert plan_gradual_step(spec, state).next_share == 25


def test_gradual_share_sequence():
    assert next_gradual_share(100, [75, 50, 25, 0]) == 75
    assert next_gradual_share(60, [75, 50, 25, 0]) == 50
    assert next_gradual_share(10, [75, 50, 25, 0]) == 0
    assert next_gradual_share(0, [75, 50, 25, 0]) is None


def test_feature_rollback_switches_off_on_every_live_version_without_moving_traffic(spec, fresh):
    state = state_after(spec, fresh, 2, "canary-25")
    before = state.environments["production"].live
    rollback = plan_feature(spec, state, "ai")
    # the candidate has AI on and the key; the stable has the key only: both are replaced,
    # one after the other (each redeploys the split)
    assert all(len(wave) == 1 for wave in rollback.waves)
    assert {a.base_version_id for a in rollback.actions} == {v.version_id for v in before.versions}
    after = apply_waves(state, rollback)
    live = after.environments["production"].live
    assert sorted(v.percentage for v in live.versions) == sorted(
        v.percentage for v in before.versions
    )
    for share in live.versions:
        version = after.environments["production"].versions[share.version_id]
        assert (
            version.vars.get("AI_ANALYSIS") != "true"
            and "OPENAI_API_KEY" not in version.secret_names
        )
    assert live.mark.kind is MarkKind.ROLLBACK and live.mark.detail == "feature:ai"
    assert plan_feature(spec, after, "ai").done


def test_feature_rollback_of_an_earlier_phase_makes_that_phase_incomplete(spec, fresh):
    state = state_after(spec, fresh, 3, "critical-only")
    after = apply_waves(state, plan_feature(spec, state, "ai"))
    refused = plan(
        spec,
        after.model_copy(update={"observed_at": after.observed_at + timedelta(days=9)}),
        3,
        BUNDLE,
    )
    assert {r.reason for r in refused.refusals} == {RefusalReason.EARLIER_PHASE_INCOMPLETE}


def test_to_version_pins_a_named_version_and_refuses_an_unknown_one(spec, fresh):
    state = state_after(spec, fresh, 1, "full")
    (wave,) = plan_to_version(state, "production-v1").waves
    assert isinstance(wave[0], PinVersion) and wave[0].version_id == "production-v1"
    assert plan_to_version(state, "nope").refusals[0].reason is RefusalReason.MISSING_RESOURCE


def test_a_rollback_already_marked_needs_no_stamp(spec, fresh):
    state = state_after(spec, fresh, 1, "canary-10")
    after = apply_waves(state, plan_immediate(spec, state))
    assert not any(isinstance(a, Stamp) for a in plan_immediate(spec, after).actions)


def test_the_buttons_have_a_feature_rollback_of_their_own(spec, fresh):
    state = state_after(spec, fresh, 3, "interactive-buttons")
    rollback = plan_feature(spec, state, "buttons")
    assert rollback.phase == 3 and rollback.actions
    assert all(a.vars == {"INTERACTIVE_BUTTONS": "false"} for a in rollback.actions)
    after = apply_waves(state, rollback)
    production = after.environments["production"]
    for share in production.live.versions:
        flags = production.versions[share.version_id].vars
        assert flags["INTERACTIVE_BUTTONS"] == "false" and flags["DYNAMIC_ROUTING"] == "true"


def test_rolling_dynamic_routing_back_takes_the_buttons_off_too(spec, fresh):
    state = state_after(spec, fresh, 3, "interactive-buttons")
    for rollback in (plan_feature(spec, state, "dynamic-routing"), plan_immediate(spec, state)):
        after = apply_waves(state, rollback)
        production = after.environments["production"]
        for share in production.live.versions:
            flags = production.versions[share.version_id].vars
            assert flags.get("DYNAMIC_ROUTING") == "false", rollback.mode
            assert flags.get("INTERACTIVE_BUTTONS") != "true", rollback.mode


def test_rolling_the_buttons_back_leaves_dynamic_routing_on(spec):
    assert spec.project.features_switched_off_with(["buttons"]) == ["buttons"]
    assert spec.project.features_switched_off_with(["dynamic-routing"]) == [
        "dynamic-routing",
        "buttons",
    ]
