"""The planner, as a specification: given the phase files and what Cloudflare says, what next."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.fixtures.spec import BUNDLE
from tgk_deploy.planner.actions import (
    ExportD1,
    PutSecret,
    SetEmailRule,
    SetTraffic,
    SetVars,
    SmokeCheck,
    Stamp,
    UploadVersion,
)
from tgk_deploy.planner.observed import (
    Deployment,
    MarkKind,
    ObservedState,
    RolloutMark,
    VersionShare,
)
from tgk_deploy.planner.plan import RefusalReason, find_position, find_stable, plan
from tgk_deploy.planner.simulate import apply_action, apply_plan, approve, walk_rollout
from tgk_deploy.spec.models import Spec


def kinds(step_plan) -> list[str]:
    return [action.kind for action in step_plan.actions]


def reasons(step_plan) -> set[RefusalReason]:
    return {refusal.reason for refusal in step_plan.refusals}


def later(state: ObservedState, delta: timedelta) -> ObservedState:
    return state.model_copy(update={"observed_at": state.observed_at + delta})


STEPS = 23  # every step of every phase file


def index_of(spec: Spec, phase: int, step: str) -> int:
    """The position of a step in the whole rollout (the order walk_rollout visits them)."""
    order = [(p.phase, s.id) for p in spec.phases for s in p.steps]
    return order.index((phase, step))


def walked(spec: Spec, fresh: ObservedState) -> list[tuple[ObservedState, object, ObservedState]]:
    """(state before, plan, state after) for every step of the whole rollout."""
    steps = []
    before = fresh
    for step_plan, after in walk_rollout(spec, fresh, BUNDLE):
        steps.append((before, step_plan, after))
        before = after
    return steps


# --------------------------------------------------------------------------- from fresh


def test_fresh_account_starts_with_phase_one_on_staging(spec, fresh):
    first = plan(spec, fresh, 1, BUNDLE)
    assert first.ready
    assert (first.step, first.environment) == ("staging", "staging")
    assert kinds(first) == ["upload_version", "set_traffic", "stamp"]
    assert first.actions[-1].mark == "tgk p=1 s=staging"


def test_whole_rollout_visits_every_step_of_every_phase_in_order(spec, fresh):
    visited = [(p.phase, p.step) for _, p, _ in walked(spec, fresh)]
    assert visited == [(phase.phase, step.id) for phase in spec.phases for step in phase.steps]
    assert len(visited) == STEPS


def test_every_planned_step_ends_with_its_stamp_and_says_what_undoes_each_action(spec, fresh):
    for _, step_plan, _ in walked(spec, fresh):
        assert isinstance(step_plan.actions[-1], Stamp)
        for action in step_plan.actions:
            assert action.describe() and action.undo()


def test_the_bridge_backs_up_d1_takes_all_mail_in_legacy_mode_then_routes_mail_to_the_worker(
    spec, fresh
):
    (_, bridge, _) = walked(spec, fresh)[index_of(spec, 1, "bridge")]
    export, upload, traffic, rule, _ = bridge.actions
    assert isinstance(export, ExportD1) and export.backup_key == "p1-bridge-main"
    assert isinstance(upload, UploadVersion) and upload.vars == {"LEGACY_BRIDGE": "true"}
    assert isinstance(traffic, SetTraffic) and traffic.percentage == 100
    assert isinstance(rule, SetEmailRule) and (rule.rule, rule.enabled) == ("worker", True)
    assert bridge.checklist and "RFC approved by Alchemists Council" in bridge.checklist


def test_canary_ten_splits_the_orchestrator_ten_against_the_bridge_ninety(spec, fresh):
    (_, bridge, _) = walked(spec, fresh)[index_of(spec, 1, "bridge")]
    (_, canary, after) = walked(spec, fresh)[index_of(spec, 1, "canary-10")]
    upload, staged, smoke, traffic, _ = canary.actions
    assert isinstance(upload, UploadVersion) and upload.vars == {"LEGACY_BRIDGE": "false"}
    assert isinstance(staged, SetTraffic) and staged.percentage == 0
    assert isinstance(smoke, SmokeCheck) and smoke.candidate_tag == upload.tag
    production = after.environments["production"]
    bridge_version = production.version_with_tag(bridge.actions[1].tag)
    assert isinstance(traffic, SetTraffic) and traffic.percentage == 10
    assert traffic.stable_version_id == bridge_version.id
    shares = {production.versions[v].vars["LEGACY_BRIDGE"]: p for v, p in production.live.split}
    assert shares == {"true": 90.0, "false": 10.0}


def test_phase_two_puts_the_key_before_the_version_that_uses_it(spec, fresh):
    canary = next(p for _, p, _ in walked(spec, fresh) if (p.phase, p.step) == (2, "canary-25"))
    assert kinds(canary) == [
        "put_secret",
        "upload_version",
        "set_traffic",
        "smoke",
        "set_traffic",
        "stamp",
    ]
    put = canary.actions[0]
    assert isinstance(put, PutSecret) and put.source == "env:OPENAI_API_KEY"
    assert canary.actions[1].vars == {"AI_ANALYSIS": "true"}


def test_flag_steps_flip_vars_on_the_live_version(spec, fresh):
    full = next(p for _, p, _ in walked(spec, fresh) if (p.phase, p.step) == (3, "full"))
    set_vars = full.actions[0]
    assert isinstance(set_vars, SetVars) and set_vars.vars == {"DYNAMIC_ROUTING_SCOPE": "all"}


def test_steps_that_need_success_criteria_say_so(spec, fresh):
    flagged = {(p.phase, p.step) for _, p, _ in walked(spec, fresh) if p.require_success}
    assert flagged == {
        (1, "retire-legacy"),
        (2, "accuracy-monitoring"),
        (4, "full"),
        (4, "threading-validation"),
        (5, "performance-check"),
        (5, "monitoring-check"),
        (5, "security-hardening"),
        (5, "go-live-review"),
    }


# --------------------------------------------------------------------------- mid-phase


def test_after_a_step_the_next_one_waits_for_the_bake_with_the_time_left(spec, fresh):
    _, _, after = walked(spec, fresh)[index_of(spec, 1, "canary-10")]  # bake 4d
    soon = later(after, timedelta(days=4) - timedelta(hours=1))
    waiting = plan(spec, soon, 1, BUNDLE)
    assert waiting.step == "canary-50"
    assert reasons(waiting) == {RefusalReason.BAKE}
    (bake,) = waiting.refusals
    assert "left of 4d" in bake.message and bake.wait_until is not None
    assert bake.wait_until - soon.observed_at < timedelta(hours=1, seconds=30)
    assert bake.command == "tgk-deploy advance --phase 1 --wait"


def test_once_baked_the_next_step_moves_the_existing_candidate(spec, fresh):
    _, canary10, after = walked(spec, fresh)[index_of(spec, 1, "canary-10")]
    ready = plan(spec, later(after, timedelta(days=4)), 1, BUNDLE)
    assert ready.ready and ready.step == "canary-50"
    traffic = ready.actions[0]
    assert isinstance(traffic, SetTraffic) and traffic.percentage == 50
    candidate = after.environments["production"].version_with_tag(canary10.actions[0].tag)
    assert traffic.candidate_version_id == candidate.id


@pytest.mark.parametrize("index", range(STEPS))
def test_each_step_applied_but_not_stamped_plans_only_the_stamp(spec, fresh, index):
    """A crash after the changes and before the stamp: the re-run changes nothing again."""
    before, step_plan, _ = walked(spec, fresh)[index]
    state = before
    for action in step_plan.changes:
        state = apply_action(state, action, state.observed_at)
    again = plan(spec, state, step_plan.phase, BUNDLE)
    assert (again.step, kinds(again)) == (step_plan.step, ["stamp"])


@pytest.mark.parametrize("index", range(STEPS))
def test_each_step_once_stamped_is_not_planned_again(spec, fresh, index):
    _, step_plan, after = walked(spec, fresh)[index]
    again = plan(spec, after, step_plan.phase, BUNDLE)
    assert again.step != step_plan.step or again.phase != step_plan.phase
    if again.step is None:
        assert reasons(again) == {RefusalReason.PHASE_COMPLETE}


# from the third step on: the first two are each script's first tgk-deploy deployment, so
# before them there is nothing of ours to drift from (covered by the next test)
@pytest.mark.parametrize("index", range(2, STEPS))
def test_each_step_refuses_when_someone_moved_traffic_by_hand(spec, fresh, index):
    before, step_plan, _ = walked(spec, fresh)[index]
    env = before.environments[step_plan.environment]
    some_version = next(iter(env.versions))
    other = env.live.versions[0].version_id
    shares = [VersionShare(version_id=other, percentage=70)]
    if some_version != other:
        shares.append(VersionShare(version_id=some_version, percentage=30))
    else:
        shares = [VersionShare(version_id=other, percentage=100)]
    if env.live.split == tuple(sorted((s.version_id, s.percentage) for s in shares)):
        shares = [
            VersionShare(version_id=other, percentage=60),
            VersionShare(version_id="x", percentage=40),
        ]
    hand = Deployment(
        id="by-hand",
        created_on=before.observed_at,
        versions=shares,
        message="hotfix",
        author_email="oncall@example.com",
    )
    env.deployments.insert(0, hand)
    drifted = plan(spec, later(before, timedelta(days=8)), step_plan.phase, BUNDLE)
    assert RefusalReason.DRIFT in reasons(drifted)
    (drift,) = [r for r in drifted.refusals if r.reason is RefusalReason.DRIFT]
    assert "oncall@example.com" in drift.message and "by-hand" in drift.message


def test_someone_elses_deployment_before_our_first_is_not_drift(spec, fresh):
    production = fresh.environments["production"]
    baseline = production.live.versions[0].version_id
    production.deployments.insert(
        0,
        Deployment(
            id="theirs",
            created_on=fresh.observed_at,
            versions=[VersionShare(version_id=baseline, percentage=100)],
            message="wrangler deploy",
        ),
    )
    assert RefusalReason.DRIFT not in reasons(plan(spec, fresh, 1, BUNDLE))


def test_a_secret_change_at_full_traffic_is_not_drift(spec, fresh):
    """Cloudflare deploys a secret change as a new version at 100 %: same traffic, no drift."""
    _, _, after = walked(spec, fresh)[index_of(spec, 1, "full")]  # one version at 100 %
    production = after.environments["production"]
    live = production.live
    copy = production.versions[live.versions[0].version_id].model_copy(
        update={"id": "copy", "number": 99}
    )
    production.versions["copy"] = copy
    production.deployments.insert(
        0,
        Deployment(
            id="secret-change",
            created_on=after.observed_at,
            versions=[VersionShare(version_id="copy", percentage=100)],
            source="secret",
        ),
    )
    assert RefusalReason.DRIFT not in reasons(
        plan(spec, later(after, timedelta(days=5)), 1, BUNDLE)
    )


# --------------------------------------------------------------------------- refusals


def test_a_later_phase_waits_for_the_earlier_one(spec, fresh):
    early = plan(spec, fresh, 3, BUNDLE)
    assert reasons(early) == {RefusalReason.EARLIER_PHASE_INCOMPLETE}
    assert early.refusals[0].command == "tgk-deploy advance --phase 1"
    assert early.actions == []


def test_a_finished_phase_says_so(spec, fresh):
    steps = walked(spec, fresh)
    after_phase_one = steps[index_of(spec, 1, "retire-legacy")][2]
    done = plan(spec, later(after_phase_one, timedelta(days=30)), 1, BUNDLE)
    assert reasons(done) == {RefusalReason.PHASE_COMPLETE}
    assert "phase 1 (foundation) is complete" in done.refusals[0].message


def test_approval_is_pending_until_recorded_on_cloudflare(spec, fresh):
    before, _, _ = walked(spec, fresh)[index_of(spec, 1, "retire-legacy")]  # needs an approval
    baked = later(before, timedelta(days=4))
    pending = plan(spec, baked, 1, BUNDLE)
    assert reasons(pending) == {RefusalReason.APPROVAL_PENDING}
    assert pending.refusals[0].command == "tgk-deploy approve --phase 1 --step retire-legacy"
    approved = approve(
        baked, "production", 1, "retire-legacy", "alice@example.com", baked.observed_at
    )
    go = plan(spec, later(approved, timedelta(seconds=1)), 1, BUNDLE)
    assert go.ready and go.approval == "approved by alice@example.com"


def test_an_approval_from_before_a_rollback_does_not_count(spec, fresh):
    before, _, _ = walked(spec, fresh)[index_of(spec, 1, "retire-legacy")]
    state = approve(before, "production", 1, "retire-legacy", "alice", before.observed_at)
    production = state.environments["production"]
    rollback = RolloutMark(phase=1, kind=MarkKind.ROLLBACK, detail="immediate")
    live = production.live
    production.deployments.insert(
        0,
        live.model_copy(
            update={
                "id": "rb",
                "message": rollback.render(),
                "created_on": before.observed_at + timedelta(minutes=1),
            }
        ),
    )
    replanned = plan(spec, later(state, timedelta(days=1)), 1, BUNDLE)
    assert replanned.step == "staging"


def test_after_a_rollback_the_phase_starts_again_from_its_first_step(spec, fresh):
    _, _, after = walked(spec, fresh)[index_of(spec, 2, "canary-25")]
    production = after.environments["production"]
    mark = RolloutMark(phase=2, kind=MarkKind.ROLLBACK, detail="immediate", run_id="r1")
    stable = find_stable(production, production.live.versions[0].version_id)
    production.deployments.insert(
        0,
        Deployment(
            id="rollback",
            created_on=after.observed_at,
            versions=[VersionShare(version_id=stable, percentage=100)],
            message=mark.render(),
        ),
    )
    position = find_position(spec, after)
    assert position.rolled_back and position.phase == 2
    again = plan(spec, later(after, timedelta(minutes=5)), 2, BUNDLE)
    assert (again.step, again.ready) == ("staging", True)
    assert kinds(again) == ["stamp"]  # staging still runs the phase 2 version


def test_traffic_without_a_live_candidate_is_refused(spec, fresh):
    _, _, after = walked(spec, fresh)[index_of(spec, 1, "canary-10")]
    production = after.environments["production"]
    before_rollout = "production-v1"  # neither the bridge nor the orchestrator: no candidate
    production.deployments.insert(
        0,
        production.live.model_copy(
            update={
                "id": "x",
                "versions": [VersionShare(version_id=before_rollout, percentage=100)],
                "message": "tgk p=1 note=manual",
            }
        ),
    )
    refused = plan(spec, later(after, timedelta(days=3)), 1, BUNDLE)
    assert RefusalReason.NO_CANDIDATE in reasons(refused)


def test_a_missing_email_rule_is_refused_not_created(spec, fresh):
    staged = apply_plan(fresh, plan(spec, fresh, 1, BUNDLE))
    staged.email_rules["worker"] = None
    refused = plan(spec, later(staged, timedelta(days=1)), 1, BUNDLE)
    (missing,) = [r for r in refused.refusals if r.reason is RefusalReason.MISSING_RESOURCE]
    assert "tgk-email-orchestrator" in missing.message


# --------------------------------------------------------------------------- stable version


def test_the_stable_version_is_the_last_at_full_traffic_before_the_candidate(spec, fresh):
    steps = walked(spec, fresh)
    _, canary25, after = steps[index_of(spec, 2, "canary-25")]
    production = after.environments["production"]
    candidate = production.version_with_tag(canary25.actions[1].tag)
    stable = find_stable(production, candidate.id)
    # the secret change made a new 100 % version just before the canary: that one is stable
    assert production.versions[stable].secret_names == ["OPENAI_API_KEY"]
    assert stable != candidate.id


def test_marks_round_trip_through_the_annotation():
    for mark in (
        RolloutMark(phase=2, kind=MarkKind.STEP, step="canary-25", run_id="r9"),
        RolloutMark(phase=1, kind=MarkKind.APPROVAL, step="retire-legacy", detail="bob"),
        RolloutMark(phase=3, kind=MarkKind.ROLLBACK, detail="gradual:25"),
    ):
        assert RolloutMark.parse(mark.render()) == mark
        assert len(mark.render()) <= 50
    longest = RolloutMark(
        phase=5, kind=MarkKind.APPROVAL, step="s" * 28, detail="x" * 80, run_id="r1234abcd"
    )
    assert len(longest.render()) <= 50 and RolloutMark.parse(longest.render()).step == "s" * 28
    assert RolloutMark.parse("Secret Change") is None
    assert RolloutMark.parse("tgk p=x s=y") is None


def test_every_production_step_that_gives_a_new_version_traffic_smoke_tests_it_at_zero_first(
    spec, fresh
):
    for _, step_plan, _ in walked(spec, fresh):
        uploads = [a for a in step_plan.actions if isinstance(a, UploadVersion)]
        if step_plan.environment != "production" or not uploads:
            continue
        if "p1b-" in uploads[0].tag:
            continue  # the bridge: the existing system's path, the stable version itself
        actions = step_plan.actions
        at = next(i for i, a in enumerate(actions) if isinstance(a, SmokeCheck))
        assert isinstance(actions[at - 1], SetTraffic) and actions[at - 1].percentage == 0
        assert isinstance(actions[at + 1], SetTraffic) and actions[at + 1].percentage > 0, (
            step_plan.step
        )
        assert all(not (isinstance(a, SetTraffic) and a.percentage > 0) for a in actions[:at]), (
            f"{step_plan.phase}/{step_plan.step} moves traffic before its smoke check"
        )


def test_a_candidate_already_staged_is_smoke_tested_without_staging_it_again(spec, fresh):
    before, canary, _ = walked(spec, fresh)[index_of(spec, 1, "canary-10")]
    staged = before
    for action in canary.actions[:2]:  # upload, then 0 %
        staged = apply_action(staged, action, staged.observed_at)
    again = plan(spec, staged, 1, BUNDLE)
    assert kinds(again) == ["smoke", "set_traffic", "stamp"]
    candidate = again.actions[0].candidate_version_id
    assert staged.environments["production"].live.shares[candidate] == 0.0
