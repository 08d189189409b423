"""Should this alert make the receiver act? Pure: the alert, the spec, Cloudflare's state in.

Two looks, so that most ignored alerts cost no API call:

``match``  the alert alone: firing, one of our exported rules (``tgk_deploy_phase``,
           ``tgk_deploy_trigger``, ``tgk_deploy_environment`` labels naming a trigger
           of the spec), an environment this receiver owns, not older than the
           configured age.
``judge``  against what Cloudflare says now: the phase's changes are live, the
           alert is about the version that is still the candidate, and the
           declared response is not already done (rolled back, feature off).

An alert that passes both is acted on exactly as ``advance`` would act on the
trigger: the phase's declared response for it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from tgk_deploy.planner.observed import ObservedState
from tgk_deploy.planner.plan import find_position
from tgk_deploy.planner.rollback import plan_feature, plan_gradual_step, plan_immediate
from tgk_deploy.receiver.payload import Alert, AlertStatus
from tgk_deploy.spec.models import Response, ResponseKind, Spec

PHASE_LABEL = "tgk_deploy_phase"
TRIGGER_LABEL = "tgk_deploy_trigger"
ENVIRONMENT_LABEL = "tgk_deploy_environment"
CANDIDATE_LABEL = "tgk_deploy_candidate"


class Reason(StrEnum):
    """Why an alert was acknowledged and not acted on (a label of the ignored counter)."""

    RESOLVED = "resolved"
    NOT_OURS = "not-ours"
    ENVIRONMENT_NOT_OWNED = "environment-not-owned"
    STALE = "stale"
    PHASE_NOT_LIVE = "phase-not-live"
    NOT_CANDIDATE = "not-candidate"
    ALREADY_DONE = "already-done"


class Target(BaseModel):
    """The trigger an alert stands for, and the response its phase declares."""

    model_config = ConfigDict(frozen=True)

    phase: int
    trigger: str
    environment: str
    response: Response
    candidate: str | None = None

    def describe(self) -> str:
        response = self.response.action.value + (
            f" {self.response.feature}" if self.response.feature else ""
        )
        return f"phase {self.phase} {self.trigger} ({self.environment}) -> {response}"


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True)

    target: Target | None = None
    reason: Reason | None = None  # None: act
    why: str = ""

    @property
    def act(self) -> bool:
        return self.reason is None


def _ignore(reason: Reason, why: str, target: Target | None = None) -> Decision:
    return Decision(target=target, reason=reason, why=why)


def match(
    alert: Alert, spec: Spec, *, environments: frozenset[str], max_age: timedelta, now: datetime
) -> Decision:
    """The alert alone: is it a firing alert of one of our rules, for us, and recent?"""
    if alert.status is AlertStatus.RESOLVED:
        return _ignore(Reason.RESOLVED, "a resolved alert changes nothing by itself")
    phase_label, trigger_label = alert.label(PHASE_LABEL), alert.label(TRIGGER_LABEL)
    environment = alert.label(ENVIRONMENT_LABEL)
    if phase_label is None or trigger_label is None or environment is None:
        return _ignore(
            Reason.NOT_OURS,
            f"{alert.name} lacks the {PHASE_LABEL}/{TRIGGER_LABEL}/{ENVIRONMENT_LABEL} labels "
            "of `tgk-deploy export alerts`",
        )
    phase = next((p for p in spec.phases if str(p.phase) == phase_label), None)
    trigger = (
        next((t for t in phase.rollback_triggers if t.name == trigger_label), None)
        if phase
        else None
    )
    if phase is None or trigger is None:
        return _ignore(
            Reason.NOT_OURS,
            f"{alert.name}: the spec has no trigger {trigger_label!r} in phase {phase_label}",
        )
    target = Target(
        phase=phase.phase,
        trigger=trigger.name,
        environment=environment,
        response=phase.response_for(trigger),
        candidate=alert.label(CANDIDATE_LABEL),
    )
    if environment not in environments:
        owned = ", ".join(sorted(environments))
        return _ignore(
            Reason.ENVIRONMENT_NOT_OWNED,
            f"environment {environment!r} is not this receiver's ({owned})",
            target,
        )
    age = now - alert.starts_at
    if age > max_age:
        return _ignore(
            Reason.STALE,
            f"the alert started {_duration(age)} ago, more than the {_duration(max_age)} allowed",
            target,
        )
    return Decision(target=target, why=target.describe())


def judge(target: Target, spec: Spec, observed: ObservedState) -> Decision:
    """Against Cloudflare now: live phase, same candidate, response not already done."""
    from tgk_deploy.engine.advance import live_versions

    position = find_position(spec, observed)
    if position is None:
        return _ignore(Reason.PHASE_NOT_LIVE, "tgk-deploy has nothing live", target)
    if target.phase > position.phase:
        return _ignore(
            Reason.PHASE_NOT_LIVE,
            f"phase {target.phase} has not started ({position.describe()})",
            target,
        )
    if target.phase == position.phase and position.rolled_back:
        return _ignore(Reason.ALREADY_DONE, position.describe(), target)
    candidate = live_versions(observed, target.phase).candidate
    if target.candidate and target.candidate != candidate:
        return _ignore(
            Reason.NOT_CANDIDATE,
            f"the alert is about version {target.candidate}; the candidate now is "
            f"{candidate or 'none'}",
            target,
        )
    if _response_done(target, spec, observed):
        return _ignore(
            Reason.ALREADY_DONE, f"{target.response.action.value} is already done", target
        )
    return Decision(target=target, why=target.describe())


def _response_done(target: Target, spec: Spec, observed: ObservedState) -> bool:
    """Cloudflare already looks as the response would leave it (a halt is never 'done' there)."""
    response, environment = target.response, target.environment
    if environment not in observed.environments:
        return False
    if response.action is ResponseKind.FEATURE_ROLLBACK:
        return plan_feature(spec, observed, response.feature or "", environment).done
    if response.action is ResponseKind.GRADUAL_ROLLBACK:
        return plan_gradual_step(spec, observed, environment).done
    if response.action is ResponseKind.IMMEDIATE_ROLLBACK:
        return plan_immediate(spec, observed, environment).done
    return False


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    if seconds >= 60:
        return f"{seconds // 60} m"
    return f"{seconds} s"
