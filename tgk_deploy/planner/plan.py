"""spec + observed state -> the next step and its actions, or the reasons it may not go.

Pure: no I/O, no clock (``observed.observed_at`` is "now"). Where the rollout
stands is read from tgk-deploy's marks on Cloudflare deployments, newest
first, so a CI runner with an empty disk plans exactly what a laptop would.
Refusals are values, not exceptions: ``plan`` shows all of them at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from tgk_deploy.planner.actions import (
    DeleteSecret,
    ExportD1,
    PlannedAction,
    PutSecret,
    SetEmailRule,
    SetTraffic,
    SetVars,
    SmokeCheck,
    Stamp,
    UploadVersion,
    content_tag,
    phase_tag_prefix,
)
from tgk_deploy.planner.foreign import find_foreign_move
from tgk_deploy.planner.observed import (
    Deployment,
    EnvironmentState,
    MarkKind,
    ObservedState,
    RolloutMark,
    Version,
)
from tgk_deploy.spec.models import (
    DeleteSecretAction,
    DeployAction,
    EmailRuleAction,
    ExportD1Action,
    Phase,
    PutSecretAction,
    SetVarsAction,
    SmokeAction,
    Spec,
    Step,
    TrafficAction,
)


class RefusalReason(StrEnum):
    PHASE_COMPLETE = "phase-complete"
    EARLIER_PHASE_INCOMPLETE = "earlier-phase-incomplete"
    BAKE = "bake"
    APPROVAL_PENDING = "approval-pending"
    DRIFT = "drift"
    NO_STABLE_VERSION = "no-stable-version"
    NO_CANDIDATE = "no-candidate"
    MISSING_RESOURCE = "missing-resource"
    HALTED = "halted"


class Refusal(BaseModel):
    model_config = ConfigDict(frozen=True)

    reason: RefusalReason
    message: str
    wait_until: datetime | None = None
    command: str | None = None  # what the operator runs to get past it


class Position(BaseModel):
    """Where the rollout stands: the last thing tgk-deploy recorded, and when."""

    model_config = ConfigDict(frozen=True)

    phase: int
    step: str | None  # None after a rollback of ``phase``
    rolled_back: bool = False
    recorded_at: datetime
    environment: str
    deployment_id: str

    def describe(self) -> str:
        if self.rolled_back:
            return f"phase {self.phase} rolled back at {self.recorded_at:%Y-%m-%d %H:%M} UTC"
        return (
            f"phase {self.phase} step {self.step} applied at {self.recorded_at:%Y-%m-%d %H:%M} UTC"
        )


class Plan(BaseModel):
    phase: int
    step: str | None = None
    environment: str | None = None
    position: Position | None = None
    actions: list[PlannedAction] = Field(default_factory=list)
    refusals: list[Refusal] = Field(default_factory=list)
    require_success: bool = False
    approval: str | None = None  # the approval message, when the step needed one and has it
    checklist: list[str] = Field(default_factory=list)  # what the approver confirms by hand
    rationale: list[str] = Field(
        default_factory=list
    )  # where the phase and step depart from the RFC

    @property
    def ready(self) -> bool:
        return self.step is not None and not self.refusals

    @property
    def changes(self) -> list[PlannedAction]:
        """The actions that change Cloudflare, without the final stamp."""
        return [a for a in self.actions if not isinstance(a, Stamp)]


# --------------------------------------------------------------------------- position


def find_position(spec: Spec, observed: ObservedState) -> Position | None:
    """The newest step or rollback mark, over every environment the project has."""
    newest: tuple[datetime, str, Deployment, RolloutMark] | None = None
    for name, env in observed.environments.items():
        for deployment in env.deployments:
            mark = deployment.mark
            if mark is None or mark.kind not in (MarkKind.STEP, MarkKind.ROLLBACK):
                continue
            if not _known(spec, mark):
                continue
            if newest is None or deployment.created_on > newest[0]:
                newest = (deployment.created_on, name, deployment, mark)
            break  # deployments are newest first: the first mark is this environment's newest
    if newest is None:
        return None
    at, env_name, deployment, mark = newest
    return Position(
        phase=mark.phase,
        step=mark.step if mark.kind is MarkKind.STEP else None,
        rolled_back=mark.kind is MarkKind.ROLLBACK,
        recorded_at=at,
        environment=env_name,
        deployment_id=deployment.id,
    )


def _known(spec: Spec, mark: RolloutMark) -> bool:
    try:
        phase = spec.phase(mark.phase)
    except KeyError:
        return False
    return mark.kind is not MarkKind.STEP or any(s.id == mark.step for s in phase.steps)


def next_step(spec: Spec, position: Position | None) -> tuple[Phase, Step] | None:
    """The step after ``position`` in rollout order; None when the rollout is complete."""
    if position is None:
        first = spec.phases[0]
        return first, first.steps[0]
    phase = spec.phase(position.phase)
    if position.rolled_back:
        return phase, phase.steps[0]
    index = phase.step_index(position.step or "") + 1
    if index < len(phase.steps):
        return phase, phase.steps[index]
    later = [p for p in spec.phases if p.phase > phase.phase]
    return (later[0], later[0].steps[0]) if later else None


def _previous_bake(spec: Spec, position: Position | None) -> timedelta:
    if position is None or position.rolled_back or position.step is None:
        return timedelta(0)
    phase = spec.phase(position.phase)
    return phase.steps[phase.step_index(position.step)].bake


HALT_NOTE, RESUME_NOTE = "halt", "resume"


def halted(observed: ObservedState) -> tuple[Deployment, str] | None:
    """The halt a person recorded (``tgk-deploy halt``) and not yet resumed, if any.

    Read from Cloudflare like every mark, so CI honours a halt made on a laptop.
    """
    for env in observed.environments.values():
        for deployment in env.deployments:  # newest first
            mark = deployment.mark
            if mark is None or mark.kind is not MarkKind.ADVISORY or not mark.detail:
                continue
            note, _, why = mark.detail.partition(":")
            if note == RESUME_NOTE:
                break
            if note == HALT_NOTE:
                return deployment, why
    return None


def _approved(
    observed: ObservedState, phase: int, step: str, position: Position | None
) -> str | None:
    """Who approved ``step`` since the rollout reached its current position, if anyone."""
    for env in observed.environments.values():
        for deployment in env.deployments:  # newest first
            if position is not None and (
                deployment.id == position.deployment_id
                or deployment.created_on < position.recorded_at
            ):
                break
            mark = deployment.mark
            if mark and mark.kind is MarkKind.APPROVAL and (mark.phase, mark.step) == (phase, step):
                return mark.detail or "unknown"
    return None


# --------------------------------------------------------------------------- versions


def candidate_of(env: EnvironmentState, phase: int) -> Version | None:
    """The live version this phase uploaded (its tag carries the phase), if any."""
    live = env.live
    if live is None:
        return None
    prefix = phase_tag_prefix(phase)
    tagged = [
        env.versions[v.version_id]
        for v in live.versions
        if v.version_id in env.versions
        and (env.versions[v.version_id].tag or "").startswith(prefix)
    ]
    return max(tagged, key=lambda v: v.number) if tagged else None


def find_stable(env: EnvironmentState, candidate_id: str | None = None) -> str | None:
    """The last version that was live at 100 % before the candidate first took traffic.

    Read from Cloudflare's deployment history alone, so rollbacks never need
    the journal.
    """
    history = list(reversed(env.deployments))  # oldest first
    if candidate_id is not None:
        first_with_candidate = next(
            (i for i, d in enumerate(history) if d.share_of(candidate_id) > 0), len(history)
        )
        history = history[:first_with_candidate]
    for deployment in reversed(history):
        if len(deployment.versions) == 1 and deployment.versions[0].version_id != candidate_id:
            return deployment.versions[0].version_id
    return None


def _live_sole_or_candidate(env: EnvironmentState, phase: int) -> Version | None:
    candidate = candidate_of(env, phase)
    if candidate is not None:
        return candidate
    live = env.live
    if live and len(live.versions) == 1:
        return env.versions.get(live.versions[0].version_id)
    return None


# --------------------------------------------------------------------------- drift


def _drift(env_name: str, env: EnvironmentState) -> Refusal | None:
    """The live split was set by someone else's hand since tgk-deploy's last deployment."""
    move = find_foreign_move(env_name, env)
    if move is None:
        return None
    return Refusal(
        reason=RefusalReason.DRIFT,
        message=f"{move.describe()} (deployment {move.deployment_id})",
        command=move.commands,
    )


# --------------------------------------------------------------------------- plan


def plan(spec: Spec, observed: ObservedState, phase_number: int, bundle_hash: str) -> Plan:
    """What ``advance --phase N`` would do now, and every reason it may not."""
    phase = spec.phase(phase_number)
    position = find_position(spec, observed)
    upcoming = next_step(spec, position)
    result = Plan(phase=phase_number, position=position)
    if upcoming is None or upcoming[0].phase > phase_number:
        result.refusals.append(
            Refusal(
                reason=RefusalReason.PHASE_COMPLETE,
                message=f"phase {phase_number} ({phase.name}) is complete"
                + (f"; the rollout is at {position.describe()}" if position else ""),
            )
        )
        return result
    next_phase, step = upcoming
    if next_phase.phase < phase_number:
        incomplete = sorted(
            {next_phase.phase, *[r for r in phase.requires if r >= next_phase.phase]}
        )
        result.refusals.append(
            Refusal(
                reason=RefusalReason.EARLIER_PHASE_INCOMPLETE,
                message=(
                    f"phase {phase_number} needs phase(s) {', '.join(map(str, incomplete))} "
                    f"complete; next is phase {next_phase.phase} step {step.id}"
                ),
                command=f"tgk-deploy advance --phase {next_phase.phase}",
            )
        )
        return result

    result.step, result.environment = step.id, step.environment
    result.require_success = step.require_success
    halt = halted(observed)
    if halt is not None:
        deployment, why = halt
        result.refusals.append(
            Refusal(
                reason=RefusalReason.HALTED,
                message=(
                    f"the rollout was halted by {deployment.author_email or 'someone'} at "
                    f"{deployment.created_on:%Y-%m-%d %H:%M} UTC"
                    + (f" ({why.replace('-', ' ')})" if why else "")
                ),
                command="tgk-deploy resume (once the cause is understood)",
            )
        )
    result.rationale = [
        f"{what}: {' '.join(text.split())}"
        for what, text in (
            (f"phase {phase_number}", phase.rationale),
            (f"step {step.id}", step.rationale),
        )
        if text
    ]
    if step.approval is not None:
        result.checklist = list(step.approval.checklist)
    now = observed.observed_at
    bake = _previous_bake(spec, position)
    if position is not None and now < position.recorded_at + bake:
        until = position.recorded_at + bake
        result.refusals.append(
            Refusal(
                reason=RefusalReason.BAKE,
                message=(
                    f"bake: {_short(until - now)} left of {_short(bake)} after {position.describe()}"
                ),
                wait_until=until,
                command=f"tgk-deploy advance --phase {phase_number} --wait",
            )
        )
    if step.approval is not None:
        approver = _approved(observed, phase_number, step.id, position)
        if approver is None:
            result.refusals.append(
                Refusal(
                    reason=RefusalReason.APPROVAL_PENDING,
                    message=f"step {step.id} waits for approval: {step.approval.message}",
                    command=f"tgk-deploy approve --phase {phase_number} --step {step.id}",
                )
            )
        else:
            result.approval = f"approved by {approver}"

    env_name = step.environment
    env = observed.environments.get(env_name)
    if env is None:
        result.refusals.append(
            Refusal(
                reason=RefusalReason.MISSING_RESOURCE,
                message=f"environment {env_name!r} was not observed",
            )
        )
        return result
    drift = _drift(env_name, env)
    if drift:
        result.refusals.append(drift)
    actions, refusals = _step_actions(spec, observed, phase, step, env, bundle_hash)
    result.actions = actions
    result.refusals.extend(refusals)
    return result


def _short(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [
        f"{days}d" if days else "",
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
    ]
    return "".join(parts) or f"{seconds}s"


def declared_vars(spec: Spec, environment: str, phase: int, step_id: str) -> dict[str, str]:
    """The vars every step up to and including this one declared for ``environment``.

    A new upload carries them, so the flags earlier phases switched on stay on
    while wrangler.toml keeps its own defaults for everything else.
    """
    result: dict[str, str] = {}
    for spec_phase in spec.phases:
        for step in spec_phase.steps:
            if step.environment == environment:
                for action in step.actions:
                    if isinstance(action, DeployAction):
                        result.update(action.deploy.vars)
                    elif isinstance(action, SetVarsAction):
                        result.update(action.set_vars)
            if (spec_phase.phase, step.id) == (phase, step_id):
                return result
    return result


def _no_smoke_without_stable(script: str) -> Refusal:
    return Refusal(
        reason=RefusalReason.NO_STABLE_VERSION,
        message=(
            f"{script} has no live version to keep 100 % of traffic while the candidate is "
            "smoke-tested at 0 %; deploy it without a smoke check first"
        ),
    )


def _step_actions(
    spec: Spec,
    observed: ObservedState,
    phase: Phase,
    step: Step,
    env: EnvironmentState,
    bundle_hash: str,
) -> tuple[list[PlannedAction], list[Refusal]]:
    """The step's declared actions, less those already true on Cloudflare, then the stamp."""
    actions: list[PlannedAction] = []
    refusals: list[Refusal] = []
    common = {"environment": step.environment, "script": env.script}
    secrets = set(env.secret_names)
    smoke = False  # a smoke check waits for the next traffic move
    for declared in step.actions:
        if isinstance(declared, DeployAction):
            params = declared.deploy
            tag = content_tag(phase.phase, bundle_hash, params.vars, baseline=params.baseline)
            existing = env.version_with_tag(tag)
            if existing is None:
                actions.append(
                    UploadVersion(**common, tag=tag, bundle_hash=bundle_hash, vars=params.vars)
                )
            live = env.live
            stable = find_stable(env, existing.id if existing else None)
            if params.percentage < 100 and stable is None and live is None:
                refusals.append(
                    Refusal(
                        reason=RefusalReason.NO_STABLE_VERSION,
                        message=(
                            f"{env.script} has no live version to keep "
                            f"{100 - params.percentage} % of traffic; deploy it at 100 % first"
                        ),
                    )
                )
            at_share = (
                existing is not None
                and live is not None
                and (live.share_of(existing.id) == params.percentage)
            )
            if not at_share:
                if smoke:
                    staged = (
                        existing is not None and live is not None and existing.id in live.shares
                    )
                    if not staged:
                        actions.append(
                            SetTraffic(
                                **common,
                                percentage=0,
                                candidate_tag=tag,
                                candidate_version_id=existing.id if existing else None,
                                stable_version_id=stable,
                            )
                        )
                    actions.append(
                        SmokeCheck(
                            **common,
                            candidate_tag=tag,
                            candidate_version_id=existing.id if existing else None,
                        )
                    )
                    if stable is None and not staged:
                        refusals.append(_no_smoke_without_stable(env.script))
                actions.append(
                    SetTraffic(
                        **common,
                        percentage=params.percentage,
                        candidate_tag=tag,
                        candidate_version_id=existing.id if existing else None,
                        stable_version_id=stable,
                    )
                )
            smoke = False
        elif isinstance(declared, TrafficAction):
            candidate = candidate_of(env, phase.phase)
            if candidate is None:
                refusals.append(
                    Refusal(
                        reason=RefusalReason.NO_CANDIDATE,
                        message=(
                            f"{env.script}: no live version of phase {phase.phase} to move traffic "
                            "to; it was rolled back or replaced"
                        ),
                        command=f"tgk-deploy status --env {step.environment}",
                    )
                )
                continue
            live = env.live
            if live is None or live.share_of(candidate.id) != declared.traffic.percentage:
                if smoke:  # a live candidate is in the deployment: an override reaches it
                    actions.append(
                        SmokeCheck(
                            **common,
                            candidate_tag=candidate.tag or "",
                            candidate_version_id=candidate.id,
                        )
                    )
                actions.append(
                    SetTraffic(
                        **common,
                        percentage=declared.traffic.percentage,
                        candidate_tag=candidate.tag or "",
                        candidate_version_id=candidate.id,
                        stable_version_id=find_stable(env, candidate.id),
                    )
                )
            smoke = False
        elif isinstance(declared, SmokeAction):
            smoke = True  # for the deploy or traffic that follows (validated in the spec)
        elif isinstance(declared, PutSecretAction):
            params = declared.put_secret
            if params.name not in secrets:
                source = f"env:{params.from_env}" if params.from_env else f"file:{params.from_file}"
                actions.append(PutSecret(**common, name=params.name, source=source))
        elif isinstance(declared, DeleteSecretAction):
            if declared.delete_secret.name in secrets:
                actions.append(DeleteSecret(**common, name=declared.delete_secret.name))
        elif isinstance(declared, SetVarsAction):
            target = _live_sole_or_candidate(env, phase.phase)
            wanted = declared.set_vars
            if target is None or any(target.vars.get(k) != v for k, v in wanted.items()):
                tag = content_tag(
                    phase.phase, (target.tag if target else "") or bundle_hash, wanted
                )
                actions.append(SetVars(**common, vars=wanted, tag=tag))
        elif isinstance(declared, EmailRuleAction):
            params = declared.email_rule
            rule_name = (
                spec.project.email_routing.worker_rule
                if params.rule == "worker"
                else spec.project.email_routing.legacy_rule
            )
            observed_rule = observed.email_rules.get(params.rule)
            if observed_rule is None:
                refusals.append(
                    Refusal(
                        reason=RefusalReason.MISSING_RESOURCE,
                        message=f"email routing rule {rule_name!r} does not exist on the zone",
                        command="create it in the dashboard (tgk-deploy only toggles rules)",
                    )
                )
            elif observed_rule.enabled != params.enabled:
                actions.append(
                    SetEmailRule(
                        environment=step.environment,
                        script=env.script,
                        rule=params.rule,
                        rule_name=rule_name,
                        enabled=params.enabled,
                    )
                )
        elif isinstance(declared, ExportD1Action):
            key = declared.export_d1.database
            backup_key = f"p{phase.phase}-{step.id}-{key}"
            if backup_key not in observed.backups:
                actions.append(
                    ExportD1(
                        **common,
                        database=key,
                        database_name=spec.project.d1[key].name,
                        backup_key=backup_key,
                    )
                )
    mark = RolloutMark(phase=phase.phase, kind=MarkKind.STEP, step=step.id)
    actions.append(Stamp(**common, mark=mark.render()))
    return actions, refusals
