"""What Cloudflare says now, as the planner needs it. No I/O here.

The observer (``tgk_deploy.cloudflare.observe``) fills these models from the
API; tests build them by hand. Cloudflare is the source of truth: where the
rollout stands is read from the ``workers/message`` annotation that
tgk-deploy stamps on every deployment it makes (see ``RolloutMark``).
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MARK_PREFIX = "tgk"
MARK_MAX = 50  # Cloudflare's limit on a deployment's workers/message
_MARK_FIELD = re.compile(r"(\w+)=(\S+)")


class MarkKind(StrEnum):
    STEP = "step"  # a step of a phase was applied
    APPROVAL = "approval"  # an operator approved a step that waits for approval
    ROLLBACK = "rollback"  # the phase was rolled back (immediate, gradual or feature)
    ADVISORY = "advisory"  # a deployment we made mid-operation (e.g. gradual rollback steps)
    PROGRESS = "progress"  # a change made while applying a step, before its stamp
    CLAIM = "claim"  # a runner took a step: the oldest claim after the step's base wins
    VERSION = "version"  # a version uploaded or derived while applying a step


_KEYS = {
    MarkKind.STEP: "s",
    MarkKind.APPROVAL: "ok",
    MarkKind.ROLLBACK: "rb",
    MarkKind.ADVISORY: "note",
    MarkKind.PROGRESS: "g",
    MarkKind.CLAIM: "c",
    MarkKind.VERSION: "v",
}
_STEP_KINDS = (
    MarkKind.STEP,
    MarkKind.APPROVAL,
    MarkKind.PROGRESS,
    MarkKind.CLAIM,
    MarkKind.VERSION,
)


class RolloutMark(BaseModel):
    """tgk-deploy's stamp in a deployment's ``workers/message`` annotation.

    Rendered as ``tgk p=2 s=canary-25 r=r1a2b3c4``: Cloudflare keeps at most 50
    characters, so the keys are short (step ids are at most 28 characters).
    Every deployment and version tgk-deploy makes carries one in the same
    request: ``s=`` a step applied, ``g=`` a change made while applying it
    (before its stamp), ``c=`` a runner's claim on it, ``v=`` a version made
    for it. A re-run after a kill at any instant so recognises its own work.
    """

    model_config = ConfigDict(frozen=True)

    phase: int
    kind: MarkKind
    step: str | None = None  # for STEP and APPROVAL
    detail: str | None = None  # rollback mode (immediate, gradual, feature:ai), approver, note
    run_id: str = ""

    def render(self) -> str:
        value = self.step if self.kind in _STEP_KINDS else self.detail
        fields = [MARK_PREFIX, f"p={self.phase}", f"{_KEYS[self.kind]}={value}"]
        tail = [f"r={self.run_id}"] if self.run_id else []
        if self.kind is MarkKind.APPROVAL and self.detail:
            room = MARK_MAX - len(" ".join([*fields, *tail])) - len(" by=")
            if room > 0:
                fields.append(f"by={self.detail[:room]}")
        return " ".join([*fields, *tail])[:MARK_MAX]

    @classmethod
    def parse(cls, message: str | None) -> RolloutMark | None:
        if not message or not message.startswith(MARK_PREFIX + " "):
            return None
        fields = dict(_MARK_FIELD.findall(message))
        try:
            phase = int(fields["p"])
        except (KeyError, ValueError):
            return None
        run_id = fields.get("r", "")
        for kind, key in _KEYS.items():
            if key in fields:
                value = fields[key]
                if kind in _STEP_KINDS and kind is not MarkKind.APPROVAL:
                    return cls(phase=phase, kind=kind, step=value, run_id=run_id)
                if kind is MarkKind.APPROVAL:
                    return cls(
                        phase=phase, kind=kind, step=value, detail=fields.get("by"), run_id=run_id
                    )
                return cls(phase=phase, kind=kind, detail=value, run_id=run_id)
        return None


class VersionShare(BaseModel):
    model_config = ConfigDict(frozen=True)

    version_id: str
    percentage: float


class Deployment(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    created_on: datetime
    versions: list[VersionShare]
    message: str | None = None
    author_email: str | None = None
    source: str | None = None
    triggered_by: str | None = None  # workers/triggered_by: deployment, secret, upload, ...

    @property
    def mark(self) -> RolloutMark | None:
        return RolloutMark.parse(self.message)

    @property
    def shares(self) -> dict[str, float]:
        return {v.version_id: v.percentage for v in self.versions}

    def share_of(self, version_id: str) -> float:
        return sum(v.percentage for v in self.versions if v.version_id == version_id)

    @property
    def split(self) -> tuple[tuple[str, float], ...]:
        return tuple(sorted((v.version_id, v.percentage) for v in self.versions))


class Version(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    number: int
    created_on: datetime
    tag: str | None = None  # workers/tag annotation: tgk-deploy puts its content key here
    message: str | None = None
    vars: dict[str, str] = Field(default_factory=dict)  # plain_text bindings
    secret_names: list[str] = Field(default_factory=list)  # secret_text bindings (names only)
    detailed: bool = True  # False: read from a version list, whose items carry no bindings


class EnvironmentState(BaseModel):
    """One Worker script: its deployments (newest first), versions and secret names."""

    script: str
    exists: bool = True
    deployments: list[Deployment] = Field(default_factory=list)
    versions: dict[str, Version] = Field(default_factory=dict)
    secret_names: list[str] = Field(default_factory=list)

    @property
    def live(self) -> Deployment | None:
        return self.deployments[0] if self.deployments else None

    def version_with_tag(self, tag: str) -> Version | None:
        matches = [v for v in self.versions.values() if v.tag == tag]
        return max(matches, key=lambda v: v.number) if matches else None


class EmailRule(BaseModel):
    """An Email Routing rule, whole: a PUT must send its matchers and actions again."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    enabled: bool
    matchers: list[dict[str, Any]] = Field(default_factory=list)
    actions: list[dict[str, Any]] = Field(default_factory=list)
    priority: int | None = None


class ObservedState(BaseModel):
    """Everything the planner may look at, read at ``observed_at``."""

    observed_at: datetime
    environments: dict[str, EnvironmentState]
    email_rules: dict[str, EmailRule | None] = Field(
        default_factory=dict, description="keyed 'worker' and 'legacy'; None: rule missing"
    )
    backups: list[str] = Field(
        default_factory=list, description="keys of local D1 exports already taken (p2/canary-25/db)"
    )
