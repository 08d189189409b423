"""Rollback plans: pure, from Cloudflare's deployment history alone.

A rollback never waits on metrics and never needs the journal: the phase being
rolled back is the newest tgk-deploy mark, the candidate is the live version
that phase tagged, and the stable version is the last one live at 100 % before
the candidate first took traffic. Actions come in waves: the calls of one wave
are independent and go out concurrently.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from tgk_deploy.planner.actions import (
    PinVersion,
    PlannedAction,
    SetEmailRule,
    SetTraffic,
    SetVars,
    Stamp,
    switch_off_tag,
)
from tgk_deploy.planner.foreign import ForeignKind, adopt_mark, find_foreign_move
from tgk_deploy.planner.observed import (
    EnvironmentState,
    MarkKind,
    ObservedState,
    RolloutMark,
    Version,
)
from tgk_deploy.planner.plan import Refusal, RefusalReason, candidate_of, find_position, find_stable
from tgk_deploy.spec.models import FeatureSpec, Spec


class RollbackMode(StrEnum):
    IMMEDIATE = "immediate"
    GRADUAL = "gradual"
    FEATURE = "feature"
    TO_VERSION = "to-version"
    ADOPT = "adopt"  # take a move made outside tgk-deploy as tgk-deploy's own
    RESTORE = "restore"  # undo it: the split tgk-deploy last left, under the same mark


class RollbackPlan(BaseModel):
    mode: RollbackMode
    phase: int | None = None
    environment: str = "production"
    candidate_version_id: str | None = None
    stable_version_id: str | None = None
    candidate_share: float | None = None  # of the live split, before the rollback
    waves: list[list[PlannedAction]] = Field(default_factory=list)
    refusals: list[Refusal] = Field(default_factory=list)
    done: bool = False  # everything is already as the rollback wants it
    next_share: int | None = None  # gradual: the candidate share this step sets

    @property
    def actions(self) -> list[PlannedAction]:
        return [action for wave in self.waves for action in wave]


def _rollback_phase(spec: Spec, observed: ObservedState) -> int | None:
    position = find_position(spec, observed)
    return position.phase if position else None


def _feature_switches(
    spec: Spec, features: list[str], version: Version | None
) -> tuple[dict[str, str], list[str]]:
    """The vars to set and secrets to drop so ``version`` has these features off.

    When the version's bindings were not read (a fast rollback reads only the
    version list), or no version is given, the whole switch is planned; applying
    it is a no-op where the bindings already agree. A feature that depends on one switched off
    (buttons on dynamic routing) goes off with it.
    """
    whole = version is None or not version.detailed
    off_vars: dict[str, str] = {}
    drop: list[str] = []
    for name in spec.project.features_switched_off_with(features):
        feature: FeatureSpec = spec.project.features[name]
        off_vars.update(
            {
                k: v
                for k, v in feature.off_vars.items()
                if whole or version.vars.get(k) != v  # type: ignore[union-attr]
            }
        )
        drop += [s for s in feature.secrets if whole or s in version.secret_names]  # type: ignore[union-attr]
    return off_vars, drop


def _switch_off(
    environment: str,
    script: str,
    base_id: str,
    off_vars: dict[str, str],
    drop: list[str],
    mark: str | None,
) -> SetVars:
    """Replace ``base`` by a version with the features off, tagged so it is never a candidate."""
    return SetVars(
        environment=environment,
        script=script,
        vars=off_vars,
        remove_secrets=drop,
        base_version_id=base_id,
        tag=switch_off_tag(base_id, off_vars, drop),
        message=mark,
    )


def standby_switch_off(
    spec: Spec, phase: int, environment: str, script: str, stable_id: str
) -> SetVars | None:
    """The switch-off of ``stable`` an immediate rollback of ``phase`` pins, made ahead of need.

    Every switch of the phase's features is planned, whatever the stable
    version's bindings, so its tag is known from the phase and the stable id
    alone: the rollback finds it in the version list it reads anyway and pins
    it in the same round as the email fallback (read; act; verify), instead of
    reading the stable version's code and uploading it while the 3 a.m. clock runs.
    None when the phase switches no feature.
    """
    off_vars, drop = _feature_switches(spec, spec.phase(phase).features, None)
    if not (off_vars or drop):
        return None
    return _switch_off(environment, script, stable_id, off_vars, drop, None)


def _email_fallback(
    spec: Spec, observed: ObservedState, env: str, script: str
) -> list[PlannedAction]:
    """Legacy routing back on and the Worker's rule off, unless already so."""
    routing = spec.project.email_routing
    wanted = {"legacy": (routing.legacy_rule, True), "worker": (routing.worker_rule, False)}
    actions: list[PlannedAction] = []
    for key, (name, enabled) in wanted.items():
        rule = observed.email_rules.get(key)
        if rule is not None and rule.enabled != enabled:
            actions.append(
                SetEmailRule(
                    environment=env, script=script, rule=key, rule_name=name, enabled=enabled
                )  # type: ignore[arg-type]
            )
    return actions


def plan_immediate(
    spec: Spec,
    observed: ObservedState,
    environment: str = "production",
    run_id: str = "",
    detail: str = "immediate",
) -> RollbackPlan:
    """All traffic to stable, legacy routing on, the phase's features off.

    One wave when the switch-off was prepared ahead (``standby_switch_off``):
    its pin and the email fallback go out together. Otherwise traffic moves to
    the stable version first and the switch-off follows in a second wave.
    """
    env = observed.environments[environment]
    phase = _rollback_phase(spec, observed)
    result = RollbackPlan(mode=RollbackMode.IMMEDIATE, phase=phase, environment=environment)
    if phase is None:
        result.done = True  # nothing of ours is live here: nothing to undo, and that is success
        return result
    mark = RolloutMark(phase=phase, kind=MarkKind.ROLLBACK, detail=detail, run_id=run_id).render()
    live = env.live
    fallback_pending = _email_fallback(spec, observed, environment, env.script)
    last = live.mark if live is not None else None
    if last and last.kind is MarkKind.ROLLBACK and last.phase == phase and not fallback_pending:
        result.done = True  # rolled back, and nothing moved since
        return result
    candidate = candidate_of(env, phase)
    stable_id = find_stable(env, candidate.id if candidate else None)
    live = env.live
    result.candidate_version_id = candidate.id if candidate else None
    result.stable_version_id = stable_id
    result.candidate_share = live.share_of(candidate.id) if (live and candidate) else 0.0
    if stable_id is None or stable_id not in env.versions:
        result.refusals.append(
            Refusal(
                reason=RefusalReason.NO_STABLE_VERSION,
                message=(
                    f"{env.script}: no version was live at 100 % before the candidate; "
                    "roll back to a chosen version with --to-version ID"
                ),
                command="tgk-deploy rollback --to-version ID",
            )
        )
        return result
    stable = env.versions[stable_id]
    standby = standby_switch_off(spec, phase, environment, env.script, stable_id)
    ready = env.version_with_tag(standby.tag) if standby else None
    if ready is not None:
        # prepared when the phase first took traffic: the pin is the switch-off, one deployment
        target, off_vars, drop = ready, {}, []
    else:
        target = stable
        off_vars, drop = _feature_switches(spec, spec.phase(phase).features, stable)
    pinned = live is not None and live.split == ((target.id, 100.0),)
    first_wave: list[PlannedAction] = []
    switch_off = bool(off_vars or drop)
    if not pinned:
        first_wave.append(
            PinVersion(
                environment=environment,
                script=env.script,
                version_id=target.id,
                version_number=target.number,
                message=None if switch_off else mark,
                verify=not switch_off,  # the switch-off redeploys the split and verifies it
            )
        )
    first_wave += _email_fallback(spec, observed, environment, env.script)
    if first_wave:
        result.waves.append(first_wave)
    if switch_off:
        result.waves.append([_switch_off(environment, env.script, stable_id, off_vars, drop, mark)])
    already_marked = (
        live is not None
        and (live.mark or RolloutMark(phase=0, kind=MarkKind.ADVISORY)).kind is MarkKind.ROLLBACK
    )
    if not result.waves and not already_marked:
        result.waves.append([Stamp(environment=environment, script=env.script, mark=mark)])
    result.done = not result.waves
    return result


def next_gradual_share(current: float, steps: list[int]) -> int | None:
    """The next candidate share below ``current``; None when the candidate has no traffic."""
    lower = [step for step in steps if step < current]
    return max(lower) if lower else None


def plan_gradual_finish(
    spec: Spec, observed: ObservedState, environment: str = "production", run_id: str = ""
) -> RollbackPlan:
    """The gradual rollback's last step (0 % for the candidate): the immediate rollback."""
    final = plan_immediate(spec, observed, environment, run_id, detail="gradual")
    final.mode, final.next_share = RollbackMode.GRADUAL, 0
    return final


def plan_gradual_step(
    spec: Spec, observed: ObservedState, environment: str = "production", run_id: str = ""
) -> RollbackPlan:
    """One step of 75 -> 50 -> 25 -> 0 % for the candidate; at 0 % the full rollback.

    Resumable by construction: the step is chosen from the live share, so an
    interrupted gradual rollback picks up where the traffic is.
    """
    env = observed.environments[environment]
    phase = _rollback_phase(spec, observed)
    candidate = candidate_of(env, phase) if phase is not None else None
    live = env.live
    share = live.share_of(candidate.id) if (candidate and live) else 0.0
    steps = spec.project.rollback.gradual.steps
    target = next_gradual_share(share, steps) if candidate else 0
    if candidate is None or target == 0 or target is None:
        return plan_gradual_finish(spec, observed, environment, run_id)
    stable_id = find_stable(env, candidate.id)
    result = RollbackPlan(
        mode=RollbackMode.GRADUAL,
        phase=phase,
        environment=environment,
        candidate_version_id=candidate.id,
        stable_version_id=stable_id,
        candidate_share=share,
        next_share=target,
    )
    if stable_id is None:
        result.refusals.append(
            Refusal(
                reason=RefusalReason.NO_STABLE_VERSION,
                message=f"{env.script}: no stable version to shift traffic back to",
                command="tgk-deploy rollback --to-version ID",
            )
        )
        return result
    mark = RolloutMark(
        phase=phase or 0, kind=MarkKind.ADVISORY, detail=f"gradual:{target}", run_id=run_id
    ).render()
    result.waves.append(
        [
            SetTraffic(
                environment=environment,
                script=env.script,
                percentage=target,
                candidate_tag=candidate.tag or "",
                candidate_version_id=candidate.id,
                stable_version_id=stable_id,
                message=mark,
            )
        ]
    )
    return result


def plan_feature(
    spec: Spec,
    observed: ObservedState,
    feature: str,
    environment: str = "production",
    run_id: str = "",
) -> RollbackPlan:
    """Switch one feature off on every live version, without moving traffic."""
    env = observed.environments[environment]
    owner = next((p.phase for p in spec.phases if feature in p.features), None)
    result = RollbackPlan(mode=RollbackMode.FEATURE, phase=owner, environment=environment)
    live = env.live
    if live is None:
        result.done = True
        return result
    mark = RolloutMark(
        phase=owner or 0, kind=MarkKind.ROLLBACK, detail=f"feature:{feature}", run_id=run_id
    ).render()
    wave: list[PlannedAction] = []
    for share in live.versions:
        version = env.versions.get(share.version_id)
        if version is None:
            continue
        off_vars, drop = _feature_switches(spec, [feature], version)
        if off_vars or drop:
            wave.append(_switch_off(environment, env.script, version.id, off_vars, drop, mark))
    # each replacement redeploys the split: one after the other, never racing
    result.waves.extend([action] for action in wave)
    result.done = not wave
    return result


def plan_to_version(
    observed: ObservedState, version_id: str, environment: str = "production", run_id: str = ""
) -> RollbackPlan:
    """The extended code rollback: all traffic to a version the operator names."""
    env: EnvironmentState = observed.environments[environment]
    result = RollbackPlan(
        mode=RollbackMode.TO_VERSION, environment=environment, stable_version_id=version_id
    )
    target = env.versions.get(version_id)
    if target is None:
        result.refusals.append(
            Refusal(
                reason=RefusalReason.MISSING_RESOURCE,
                message=f"{env.script} has no version {version_id} (only the last 100 are deployable)",
                command=f"tgk-deploy status --env {environment}",
            )
        )
        return result
    live = env.live
    if live is not None and live.split == ((version_id, 100.0),):
        result.done = True
        return result
    mark = RolloutMark(
        phase=0, kind=MarkKind.ADVISORY, detail=f"to-version:{version_id[:8]}", run_id=run_id
    )
    result.waves.append(
        [
            PinVersion(
                environment=environment,
                script=env.script,
                version_id=version_id,
                version_number=target.number,
                message=mark.render(),
            )
        ]
    )
    return result


def plan_adopt(
    observed: ObservedState, environment: str = "production", run_id: str = ""
) -> RollbackPlan:
    """Record the live deployment someone else made as tgk-deploy's, moving no traffic.

    A rollback is recorded as the phase's rollback (the phase starts over at
    its first step); any other move is stamped where it stands, and the
    rollout goes on from that split.
    """
    env = observed.environments[environment]
    result = RollbackPlan(mode=RollbackMode.ADOPT, environment=environment)
    move = find_foreign_move(environment, env)
    if move is None:
        result.done = True
        return result
    ours = RolloutMark.parse(move.ours_mark)
    result.phase = ours.phase if ours else 0
    if move.kind is ForeignKind.ROLLBACK:
        target = move.split[0].version_id
        result.stable_version_id = target
        mark = adopt_mark(move, result.phase, run_id)
        action: PlannedAction = PinVersion(
            environment=environment,
            script=env.script,
            version_id=target,
            version_number=move.version_numbers.get(target),
            message=mark.render(),
        )
    else:  # the stamp adds the run id itself
        action = Stamp(
            environment=environment, script=env.script, mark=adopt_mark(move, result.phase).render()
        )
    result.waves.append([action])
    return result


def plan_restore(
    observed: ObservedState, environment: str = "production", run_id: str = ""
) -> RollbackPlan:
    """Put back the split tgk-deploy last left, with the mark it had (its bake starts over)."""
    env = observed.environments[environment]
    result = RollbackPlan(mode=RollbackMode.RESTORE, environment=environment)
    move = find_foreign_move(environment, env)
    if move is None:
        result.done = True
        return result
    ours = RolloutMark.parse(move.ours_mark)
    result.phase = ours.phase if ours else None
    common = {"environment": environment, "script": env.script, "message": move.ours_mark}
    if len(move.ours_split) == 1:
        (only,) = move.ours_split
        result.stable_version_id = only.version_id
        action: PlannedAction = PinVersion(
            **common,
            version_id=only.version_id,
            version_number=move.version_numbers.get(only.version_id),
        )
    else:  # the newer version is the candidate, the older one keeps the rest
        newer, older = sorted(
            move.ours_split, key=lambda s: move.version_numbers.get(s.version_id, 0), reverse=True
        )
        result.candidate_version_id, result.stable_version_id = newer.version_id, older.version_id
        result.candidate_share = newer.percentage
        action = SetTraffic(
            **common,
            percentage=round(newer.percentage),
            candidate_tag=(env.versions[newer.version_id].tag or "")
            if newer.version_id in env.versions
            else "",
            candidate_version_id=newer.version_id,
            stable_version_id=older.version_id,
        )
    result.waves.append([action])
    return result
