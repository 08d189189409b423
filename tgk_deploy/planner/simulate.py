"""Apply a plan to an observed state on paper: what Cloudflare would say afterwards.

Pure. ``plan --whole-rollout`` uses it to show every step of every phase
from a fresh account without touching one, and the planner's tests use it to
walk the rollout step by step. It follows the API's rules as CLOUDFLARE-API.md
states them (a secret change copies the latest version and deploys it at 100 %).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from tgk_deploy.planner.actions import (
    DeleteSecret,
    ExportD1,
    PinVersion,
    PlannedAction,
    PutSecret,
    SetEmailRule,
    SetTraffic,
    SetVars,
    Stamp,
    UploadVersion,
)
from tgk_deploy.planner.observed import (
    Deployment,
    EmailRule,
    EnvironmentState,
    MarkKind,
    ObservedState,
    RolloutMark,
    Version,
    VersionShare,
)
from tgk_deploy.planner.plan import Plan, RefusalReason, candidate_of, find_stable, plan
from tgk_deploy.spec.models import Spec


def fresh_state(
    now: datetime,
    scripts: dict[str, str],
    baseline_vars: dict[str, str] | None = None,
    worker_rule: bool = False,
    legacy_rule: bool = True,
) -> ObservedState:
    """An account before tgk-deploy: each script runs one baseline version at 100 %."""
    environments = {}
    for index, (env_name, script) in enumerate(sorted(scripts.items())):
        version = Version(
            id=f"{env_name}-v1",
            number=1,
            created_on=now - timedelta(days=30),
            vars=dict(baseline_vars or {}),
        )
        deployment = Deployment(
            id=f"{env_name}-d{index}",
            created_on=now - timedelta(days=30),
            versions=[VersionShare(version_id=version.id, percentage=100)],
            message="initial deploy",
            source="wrangler",
        )
        environments[env_name] = EnvironmentState(
            script=script, deployments=[deployment], versions={version.id: version}
        )
    return ObservedState(
        observed_at=now,
        environments=environments,
        email_rules={
            "worker": EmailRule(id="rule-worker", name="worker", enabled=worker_rule),
            "legacy": EmailRule(id="rule-legacy", name="legacy", enabled=legacy_rule),
        },
    )


def apply_plan(observed: ObservedState, plan: Plan, at: datetime | None = None) -> ObservedState:
    state = observed.model_copy(deep=True)
    moment = at or observed.observed_at
    for offset, action in enumerate(plan.actions):
        state = apply_action(state, action, moment + timedelta(seconds=offset))
    state.observed_at = moment + timedelta(seconds=len(plan.actions))
    return state


def _new_version(env: EnvironmentState, at: datetime, **fields: object) -> Version:
    number = max((v.number for v in env.versions.values()), default=0) + 1
    version = Version(id=f"{env.script}-v{number}", number=number, created_on=at, **fields)
    env.versions[version.id] = version
    return version


def _deploy(
    env: EnvironmentState, shares: dict[str, float], at: datetime, message: str | None
) -> None:
    deployment = Deployment(
        id=f"{env.script}-d{len(env.deployments) + 1}",
        created_on=at,
        # a 0 % share stays: the smoke check's candidate, in the deployment without traffic
        versions=[VersionShare(version_id=v, percentage=p) for v, p in shares.items()],
        message=message,
        source="tgk-deploy" if message else "api",
    )
    env.deployments.insert(0, deployment)


def _latest(env: EnvironmentState) -> Version:
    return max(env.versions.values(), key=lambda v: v.number)


def apply_action(state: ObservedState, action: PlannedAction, at: datetime) -> ObservedState:
    env = state.environments.get(action.environment)
    if isinstance(action, SetEmailRule):
        rule = state.email_rules[action.rule]
        if rule is not None:
            state.email_rules[action.rule] = rule.model_copy(update={"enabled": action.enabled})
        return state
    if isinstance(action, ExportD1):
        state.backups.append(action.backup_key)
        return state
    assert env is not None, action.environment
    live = env.live
    if isinstance(action, UploadVersion):
        base = _latest(env)
        _new_version(
            env,
            at,
            tag=action.tag,
            vars={**base.vars, **action.vars},
            secret_names=list(env.secret_names),
        )
    elif isinstance(action, SetTraffic):
        candidate = env.version_with_tag(action.candidate_tag)
        assert candidate is not None, f"no version tagged {action.candidate_tag}"
        stable = find_stable(env, candidate.id)
        shares = {candidate.id: float(action.percentage)}
        if action.percentage < 100 and stable is not None and stable != candidate.id:
            shares[stable] = float(100 - action.percentage)
        _deploy(env, shares, at, action.message)
    elif isinstance(action, PinVersion):
        _deploy(env, {action.version_id: 100.0}, at, action.message)
    elif isinstance(action, PutSecret | DeleteSecret):
        # a version derived from each live one, deployed in the same split (apply.py)
        assert live is not None
        names = set(env.secret_names)
        names = names | {action.name} if isinstance(action, PutSecret) else names - {action.name}
        env.secret_names = sorted(names)
        shares: dict[str, float] = {}
        for share in live.versions:
            base = env.versions[share.version_id]
            changed = set(base.secret_names) | {action.name}
            if isinstance(action, DeleteSecret):
                changed -= {action.name}
            copy = _new_version(env, at, vars=base.vars, secret_names=sorted(changed))
            shares[copy.id] = share.percentage
        _deploy(env, shares, at, None)
    elif isinstance(action, SetVars):
        assert live is not None
        if action.base_version_id is not None:
            target = env.versions[action.base_version_id]
        else:
            phase = int(action.tag.split("-")[1][1:])
            sole = env.versions[live.versions[0].version_id] if len(live.versions) == 1 else None
            target = candidate_of(env, phase) or sole
        assert target is not None
        replacement = _new_version(
            env,
            at,
            tag=action.tag,
            vars={**target.vars, **action.vars},
            secret_names=[s for s in target.secret_names if s not in action.remove_secrets],
        )
        env.secret_names = sorted(set(env.secret_names) - set(action.remove_secrets))
        shares = {
            (replacement.id if v.version_id == target.id else v.version_id): v.percentage
            for v in live.versions
        }
        _deploy(env, shares, at, action.message)
    elif isinstance(action, Stamp):
        assert live is not None
        _deploy(env, {v.version_id: v.percentage for v in live.versions}, at, action.mark)
    return state


def approve(
    state: ObservedState, environment: str, phase: int, step: str, by: str, at: datetime
) -> ObservedState:
    """Record an approval the way ``tgk-deploy approve`` does: a mark on the live deployment."""
    state = state.model_copy(deep=True)
    env = state.environments[environment]
    live = env.live
    assert live is not None
    mark = RolloutMark(phase=phase, kind=MarkKind.APPROVAL, step=step, detail=by)
    _deploy(env, {v.version_id: v.percentage for v in live.versions}, at, mark.render())
    return state


def walk_rollout(
    spec: Spec, observed: ObservedState, bundle_hash: str, approver: str = "simulation"
) -> Iterator[tuple[Plan, ObservedState]]:
    """Every step of every phase in order, waiting out bakes and granting approvals on paper."""
    state = observed
    for phase in spec.phases:
        while True:
            step_plan = plan(spec, state, phase.phase, bundle_hash)
            reasons = {r.reason for r in step_plan.refusals}
            if RefusalReason.PHASE_COMPLETE in reasons:
                break
            if RefusalReason.BAKE in reasons:
                wait = max(r.wait_until for r in step_plan.refusals if r.wait_until)
                state = state.model_copy(update={"observed_at": wait})
                continue
            if RefusalReason.APPROVAL_PENDING in reasons:
                assert step_plan.step and step_plan.environment
                state = approve(
                    state,
                    step_plan.environment,
                    phase.phase,
                    step_plan.step,
                    approver,
                    state.observed_at,
                )
                state = state.model_copy(
                    update={"observed_at": state.observed_at + timedelta(seconds=1)}
                )
                continue
            if step_plan.refusals:
                raise AssertionError(f"the rollout cannot go on: {step_plan.refusals}")
            state = apply_plan(state, step_plan)
            yield step_plan, state
