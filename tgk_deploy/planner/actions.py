"""The changes a plan is made of. Each one describes itself and says what undoes it.

Actions are data: the planner makes them, ``plan`` prints them, the engine
applies them through the Cloudflare layer. None of them holds a secret value:
``PutSecret`` carries only where the value comes from.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

TAG_PREFIX = "tgk-p"


def phase_tag_prefix(phase: int) -> str:
    return f"{TAG_PREFIX}{phase}-"


def tag_phase(tag: str | None) -> int | None:
    """The phase a candidate's tag names (``tgk-p2-…`` -> 2); None for any other tag."""
    if not tag or not tag.startswith(TAG_PREFIX):
        return None
    number = tag[len(TAG_PREFIX) :].split("-", 1)[0]
    return int(number) if number.isdigit() else None


def content_tag(
    phase: int, bundle_hash: str, vars_: dict[str, str], *, baseline: bool = False
) -> str:
    """The ``workers/tag`` of a version tgk-deploy uploads: same content, same tag.

    The tag is how a retried or re-run upload finds the version it already made,
    and how ``traffic`` and rollbacks recognise the phase's candidate. A baseline
    (``deploy: {baseline: true}``) is tagged outside the phase's prefix, so it is
    the stable version the phase's rollbacks return to and never its candidate.
    """
    digest = hashlib.sha256(
        json.dumps({"bundle": bundle_hash, "vars": dict(sorted(vars_.items()))}).encode()
    ).hexdigest()
    prefix = f"{TAG_PREFIX}{phase}b-" if baseline else phase_tag_prefix(phase)
    return f"{prefix}{digest[:12]}"


def switch_off_tag(base: str, vars_: dict[str, str], dropped: list[str]) -> str:
    """The tag of a version a rollback derives: not a phase's, so never taken for a candidate."""
    digest = hashlib.sha256(
        json.dumps(
            {"base": base, "vars": dict(sorted(vars_.items())), "drop": sorted(dropped)}
        ).encode()
    ).hexdigest()
    return f"tgk-rb-{digest[:12]}"


def _vars_text(vars_: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(vars_.items()))


class _Action(BaseModel):
    model_config = ConfigDict(frozen=True)

    environment: str
    script: str

    def describe(self) -> str:
        raise NotImplementedError

    def undo(self) -> str:
        raise NotImplementedError


class UploadVersion(_Action):
    """A new version from the bundle; takes no traffic until a deployment says so."""

    kind: Literal["upload_version"] = "upload_version"
    tag: str
    bundle_hash: str
    vars: dict[str, str] = Field(default_factory=dict)

    def describe(self) -> str:
        extra = f" with {_vars_text(self.vars)}" if self.vars else ""
        return (
            f"upload the bundle ({self.bundle_hash[:12]}) to {self.script} as a new version "
            f"tagged {self.tag}{extra}"
        )

    def undo(self) -> str:
        return "nothing: a version that takes no traffic changes nothing"


class SetTraffic(_Action):
    """Split traffic: ``percentage`` to the phase's candidate, the rest to the stable version.

    At 0 % the candidate is put in the deployment beside the stable version's
    100 %: it takes no traffic, but a version override (the smoke check) reaches it.
    """

    kind: Literal["set_traffic"] = "set_traffic"
    percentage: int
    candidate_tag: str
    candidate_version_id: str | None = None  # None: the version is uploaded earlier in this plan
    stable_version_id: str | None = None
    message: str | None = None  # a mark for the deployment (gradual rollback steps)

    def describe(self) -> str:
        candidate = self.candidate_version_id or f"the new version {self.candidate_tag}"
        if self.percentage == 0:
            stable = self.stable_version_id or "the stable version"
            return (
                f"put {candidate} in the {self.script} deployment at 0 % (no traffic; "
                f"reachable by a version override), 100 % staying on {stable}"
            )
        if self.percentage == 100:
            return f"send 100 % of {self.script} traffic to {candidate}"
        stable = self.stable_version_id or "the stable version"
        return (
            f"send {self.percentage} % of {self.script} traffic to {candidate} "
            f"and {100 - self.percentage} % to {stable}"
        )

    def undo(self) -> str:
        return "tgk-deploy rollback --immediate (all traffic back to the stable version)"


class PutSecret(_Action):
    kind: Literal["put_secret"] = "put_secret"
    name: str
    source: str  # "env:NAME" or "file:PATH"; never the value

    def describe(self) -> str:
        origin = (
            self.source.replace("env:", "$", 1) if self.source.startswith("env:") else self.source
        )
        return f"put secret {self.name} on {self.script} (value from {origin})"

    def undo(self) -> str:
        return f"delete the secret: the feature rollback that owns {self.name}"


class DeleteSecret(_Action):
    kind: Literal["delete_secret"] = "delete_secret"
    name: str

    def describe(self) -> str:
        return f"delete secret {self.name} from {self.script}"

    def undo(self) -> str:
        return f"put the secret again (its value is not kept anywhere by tgk-deploy): {self.name}"


class SetVars(_Action):
    """Replace a live version by one that inherits every binding but these changes.

    The only way to change a var or drop a secret mid-split (CLOUDFLARE-API.md,
    trap 2); the deployment keeps its percentages with the new version id.
    ``base_version_id`` None means: the phase's candidate, else the sole live version.
    """

    kind: Literal["set_vars"] = "set_vars"
    vars: dict[str, str] = Field(default_factory=dict)
    remove_secrets: list[str] = Field(default_factory=list)
    base_version_id: str | None = None
    tag: str
    message: str | None = None  # the mark its deployment carries, for rollbacks

    def describe(self) -> str:
        changes = [_vars_text(self.vars)] if self.vars else []
        changes += [f"without secret {name}" for name in self.remove_secrets]
        base = self.base_version_id or f"the live {self.script} version"
        return f"replace {base} by a version inheriting its bindings, {'; '.join(changes)}"

    def undo(self) -> str:
        return "tgk-deploy rollback --immediate, or a feature rollback"


class PinVersion(_Action):
    """All traffic to one known version: what every rollback does first."""

    kind: Literal["pin_version"] = "pin_version"
    version_id: str
    version_number: int | None = None
    message: str | None = None
    verify: bool = True  # False when a later action of the plan redeploys and verifies anyway

    def describe(self) -> str:
        number = f" (#{self.version_number})" if self.version_number is not None else ""
        return f"send 100 % of {self.script} traffic to version {self.version_id}{number}"

    def undo(self) -> str:
        return "tgk-deploy advance (re-applies the phase from its first step)"


class SetEmailRule(_Action):
    kind: Literal["email_rule"] = "email_rule"
    rule: Literal["worker", "legacy"]
    rule_name: str
    enabled: bool

    def describe(self) -> str:
        return f"{'enable' if self.enabled else 'disable'} email routing rule {self.rule_name!r}"

    def undo(self) -> str:
        return f"{'disable' if self.enabled else 'enable'} rule {self.rule_name!r} (rollback does)"


class ExportD1(_Action):
    kind: Literal["export_d1"] = "export_d1"
    database: str  # key in the project file
    database_name: str
    backup_key: str  # p1/canary-10/main: the file name the export is saved under

    def describe(self) -> str:
        return f"export D1 database {self.database_name} to backups/{self.backup_key}.sql"

    def undo(self) -> str:
        return "nothing: a backup changes nothing"


class SmokeCheck(_Action):
    """The Worker's self-test on the candidate, through a version override; traffic waits on it."""

    kind: Literal["smoke"] = "smoke"
    candidate_tag: str
    candidate_version_id: str | None = None  # None: uploaded and staged earlier in this plan

    def describe(self) -> str:
        candidate = self.candidate_version_id or f"the new version {self.candidate_tag}"
        return (
            f"smoke-test {candidate} on {self.script}: its self-test must pass for every route "
            "before it gets traffic"
        )

    def undo(self) -> str:
        return "nothing: the self-test delivers no mail and changes nothing"


class Stamp(_Action):
    """Record the step as applied: a deployment of the same split, annotated with the mark."""

    kind: Literal["stamp"] = "stamp"
    mark: str

    def describe(self) -> str:
        return f"record on {self.script}: {self.mark}"

    def undo(self) -> str:
        return "nothing: the annotation only records where the rollout stands"


PlannedAction = Annotated[
    UploadVersion
    | SetTraffic
    | PinVersion
    | PutSecret
    | DeleteSecret
    | SetVars
    | SetEmailRule
    | ExportD1
    | SmokeCheck
    | Stamp,
    Field(discriminator="kind"),
]
