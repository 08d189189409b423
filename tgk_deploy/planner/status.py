"""spec + observed state -> what ``tgk-deploy status`` shows. Pure: no I/O, no clock.

Where the rollout stands comes from tgk-deploy's marks on Cloudflare's
deployments (``find_position``), so a fresh CI runner and a laptop agree.
Flags are the vars the spec itself switches (phase ``deploy.vars``,
``set_vars`` and the features' ``off_vars``): the rest of wrangler.toml's
vars are configuration, not rollout state.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from tgk_deploy.planner.foreign import ForeignMove, find_foreign_move
from tgk_deploy.planner.observed import EnvironmentState, ObservedState
from tgk_deploy.planner.plan import Position, find_position, next_step
from tgk_deploy.spec.models import DeployAction, Phase, SetVarsAction, Spec


class LiveVersion(BaseModel):
    version_id: str
    percentage: float
    number: int | None = None  # None: the version's details could not be read
    tag: str | None = None
    message: str | None = None
    created_on: datetime | None = None
    flags: dict[str, str] = Field(default_factory=dict)
    secret_names: list[str] = Field(default_factory=list)  # this version's, as traffic sees them


class EnvironmentStatus(BaseModel):
    name: str
    script: str
    exists: bool
    deployment_id: str | None = None
    deployed_at: datetime | None = None
    deployed_by: str | None = None
    message: str | None = None  # the live deployment's workers/message (tgk-deploy's mark)
    split: list[LiveVersion] = Field(default_factory=list)
    # every live version's secrets together; `wrangler secret list` (GET .../secrets) shows
    # the latest version's, which differ only while a newer version takes no traffic
    secret_names: list[str] = Field(default_factory=list)
    foreign: ForeignMove | None = None  # the live deployment, when someone else made it


class EmailRuleStatus(BaseModel):
    role: str  # worker | legacy
    name: str
    exists: bool
    enabled: bool | None = None


class NextStep(BaseModel):
    phase: int
    step: str
    environment: str
    not_before: datetime | None = None  # the end of the current step's bake
    rationale: str | None = None  # why this step departs from the RFC, when it does


class StatusReport(BaseModel):
    observed_at: datetime
    position: Position | None = None
    position_text: str = "no tgk-deploy step applied yet"
    foreign_text: list[str] = Field(default_factory=list)  # one sentence per foreign move
    next: NextStep | None = None
    environments: list[EnvironmentStatus]
    email_rules: list[EmailRuleStatus]
    flag_names: list[str]
    rationale: list[str] = Field(
        default_factory=list, description="where the current phase and step depart from the RFC"
    )


def flag_names(spec: Spec) -> list[str]:
    """Every var a phase sets or a feature switches off."""
    names: set[str] = set()
    for phase in spec.phases:
        for step in phase.steps:
            for action in step.actions:
                if isinstance(action, DeployAction):
                    names |= set(action.deploy.vars)
                elif isinstance(action, SetVarsAction):
                    names |= set(action.set_vars)
    for feature in spec.project.features.values():
        names |= set(feature.off_vars)
    return sorted(names)


def _environment(name: str, env: EnvironmentState, flags: list[str]) -> EnvironmentStatus:
    live = env.live
    status = EnvironmentStatus(
        name=name,
        script=env.script,
        exists=env.exists,
        secret_names=env.secret_names,
        foreign=find_foreign_move(name, env),
    )
    if live is None:
        return status
    status.deployment_id = live.id
    status.deployed_at = live.created_on
    status.deployed_by = live.author_email
    status.message = live.message
    for share in sorted(live.versions, key=lambda s: -s.percentage):
        version = env.versions.get(share.version_id)
        entry = LiveVersion(version_id=share.version_id, percentage=share.percentage)
        if version is not None:
            entry.number = version.number
            entry.tag = version.tag
            entry.message = version.message
            entry.created_on = version.created_on
            entry.flags = {k: version.vars[k] for k in flags if k in version.vars}
            entry.secret_names = list(version.secret_names)
        status.split.append(entry)
    return status


def status_report(spec: Spec, observed: ObservedState) -> StatusReport:
    flags = flag_names(spec)
    position = find_position(spec, observed)
    report = StatusReport(
        observed_at=observed.observed_at,
        position=position,
        environments=[
            _environment(name, env, flags) for name, env in observed.environments.items()
        ],
        email_rules=[
            EmailRuleStatus(
                role=role,
                name=name,
                exists=observed.email_rules.get(role) is not None,
                enabled=rule.enabled if (rule := observed.email_rules.get(role)) else None,
            )
            for role, name in (
                ("worker", spec.project.email_routing.worker_rule),
                ("legacy", spec.project.email_routing.legacy_rule),
            )
        ],
        flag_names=flags,
    )
    if position is not None:
        report.position_text = position.describe()
        current = spec.phase(position.phase)
        report.rationale = _departures(current, position.step)
    for env_status in report.environments:
        if env_status.foreign is not None:
            report.foreign_text.append(
                f"{env_status.foreign.describe()}. Next: {env_status.foreign.commands}"
            )
    upcoming = next_step(spec, position)
    if upcoming is not None:
        phase, step = upcoming
        not_before = None
        if position is not None and position.step is not None and not position.rolled_back:
            current = spec.phase(position.phase)
            not_before = (
                position.recorded_at + current.steps[current.step_index(position.step)].bake
            )
        report.next = NextStep(
            phase=phase.phase,
            step=step.id,
            environment=step.environment,
            not_before=not_before,
            rationale=step.rationale,
        )
    return report


def _departures(phase: Phase, step_id: str | None) -> list[str]:
    """The phase's and the step's stated departures from the RFC."""
    found = []
    if phase.rationale:
        found.append(f"phase {phase.phase}: {' '.join(phase.rationale.split())}")
    step = next((s for s in phase.steps if s.id == step_id), None)
    if step is not None and step.rationale:
        found.append(f"step {step.id}: {' '.join(step.rationale.split())}")
    return found
