"""Live deployments tgk-deploy did not make: what they did, who, when, and how to go on. Pure.

tgk-deploy marks every deployment it makes (``RolloutMark`` in ``workers/message``).
A live deployment without a mark, newer than tgk-deploy's last, was made by
someone else: ``wrangler rollback``, ``wrangler versions deploy``, ``wrangler
deploy``, the dashboard. Cloudflare's own copies are not moves: a secret or
settings change (``workers/triggered_by`` ``secret``/``settings``) deploys a copy
of the latest version at 100 % and leaves traffic where it was.

Two ways on, both one command: ``adopt`` takes the live state as tgk-deploy's
(a rollback is recorded as the phase's rollback; any other move is stamped so
the rollout goes on from it), ``restore`` puts back the split tgk-deploy last
left, under the same mark.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from tgk_deploy.planner.observed import (
    Deployment,
    EnvironmentState,
    MarkKind,
    RolloutMark,
    VersionShare,
)

COPIES = frozenset({"secret", "settings"})  # Cloudflare's copies of the latest version


class ForeignKind(StrEnum):
    ROLLBACK = "rollback"  # all traffic back to a version that took traffic before
    UPLOAD = "upload"  # new code straight to 100 % (wrangler deploy, a script upload)
    TRAFFIC = "traffic"  # another split (wrangler versions deploy, the dashboard)


class ForeignMove(BaseModel):
    """The newest move on one environment that tgk-deploy did not make."""

    model_config = ConfigDict(frozen=True)

    environment: str
    script: str
    kind: ForeignKind
    deployment_id: str
    at: datetime
    author: str | None = None
    source: str | None = None  # wrangler, api, dash: what Cloudflare recorded
    message: str | None = None
    split: list[VersionShare]
    version_numbers: dict[str, int]  # of the versions in either split, where known
    deployments_since: int  # foreign deployments since tgk-deploy's last, copies included
    ours_id: str  # tgk-deploy's last deployment on this environment
    ours_at: datetime
    ours_mark: str
    ours_split: list[VersionShare]

    def split_text(self, shares: list[VersionShare]) -> str:
        def name(share: VersionShare) -> str:
            number = self.version_numbers.get(share.version_id)
            short = share.version_id[:8]
            return f"version {number} ({short})" if number is not None else short

        return " / ".join(f"{s.percentage:g} % {name(s)}" for s in shares)

    def describe(self) -> str:
        """One plain sentence: what happened, by whom, when, against what tgk-deploy left."""
        what = {
            ForeignKind.ROLLBACK: f"rolled back: all traffic to {self.split_text(self.split)}",
            ForeignKind.UPLOAD: f"deployed new code: {self.split_text(self.split)}",
            ForeignKind.TRAFFIC: f"moved traffic: {self.split_text(self.split)}",
        }[self.kind]
        who = self.author or "someone"
        via = f" via {self.source}" if self.source else ""
        note = f", message {self.message!r}" if self.message else ", no message"
        return (
            f"{self.environment}: {who}{via} {what} outside tgk-deploy at "
            f"{self.at:%Y-%m-%d %H:%M} UTC{note}; tgk-deploy last left "
            f"{self.split_text(self.ours_split)} ({self.ours_mark!r}, "
            f"{self.ours_at:%Y-%m-%d %H:%M} UTC)"
        )

    @property
    def commands(self) -> str:
        return (
            f"tgk-deploy adopt --env {self.environment} (keep it) or "
            f"tgk-deploy restore --env {self.environment} (put back what tgk-deploy left)"
        )


def _is_copy(deployment: Deployment, before: Deployment) -> bool:
    """Cloudflare's copy after a secret/settings change: traffic stays as it was."""
    if deployment.triggered_by is not None:
        return deployment.triggered_by in COPIES
    # no annotation to go by (older data): the same single-version shape is taken as a copy
    return len(deployment.versions) == 1 and len(before.versions) == 1


def find_foreign_move(env_name: str, env: EnvironmentState) -> ForeignMove | None:
    """The live deployment, when someone else made it after tgk-deploy's last; else None.

    None as well when tgk-deploy never deployed here (nothing of ours to drift
    from) and when the foreign deployments since ours are only Cloudflare's
    copies, or put back exactly the split we left.
    """
    live = env.live
    if live is None or live.mark is not None:
        return None
    index = next((i for i, d in enumerate(env.deployments) if d.mark is not None), None)
    if index is None:
        return None
    ours = env.deployments[index]
    foreign = env.deployments[:index]  # newest first
    move = next(
        (d for i, d in enumerate(foreign) if not _is_copy(d, (foreign[i + 1 :] or [ours])[0])),
        None,
    )
    if move is None or live.split == ours.split:
        return None
    before = env.deployments[env.deployments.index(move) + 1]
    numbers = {
        share.version_id: env.versions[share.version_id].number
        for share in [*move.versions, *ours.versions, *before.versions]
        if share.version_id in env.versions
    }
    return ForeignMove(
        environment=env_name,
        script=env.script,
        kind=_kind(move, before, env),
        deployment_id=move.id,
        at=move.created_on,
        author=move.author_email,
        source=move.source,
        message=move.message,
        split=list(move.versions),
        version_numbers=numbers,
        deployments_since=len(foreign),
        ours_id=ours.id,
        ours_at=ours.created_on,
        ours_mark=ours.message or "",
        ours_split=list(ours.versions),
    )


def _kind(move: Deployment, before: Deployment, env: EnvironmentState) -> ForeignKind:
    """A rollback: all traffic back to an older version that took traffic before."""
    if move.triggered_by == "rollback":
        return ForeignKind.ROLLBACK
    if len(move.versions) == 1:
        target = move.versions[0].version_id
        history = env.deployments[env.deployments.index(move) + 1 :]
        if before.share_of(target) < 100 and any(d.share_of(target) > 0 for d in history):
            number = _number(env, target)
            newest = max((_number(env, v.version_id) or 0 for v in before.versions), default=0)
            if number is None or number < newest:
                return ForeignKind.ROLLBACK
    return ForeignKind.UPLOAD if move.triggered_by == "upload" else ForeignKind.TRAFFIC


def _number(env: EnvironmentState, version_id: str) -> int | None:
    version = env.versions.get(version_id)
    return version.number if version else None


def adopt_mark(move: ForeignMove, phase: int, run_id: str = "") -> RolloutMark:
    """How tgk-deploy records a move it takes as its own: a rollback as the phase's."""
    if move.kind is ForeignKind.ROLLBACK:
        return RolloutMark(phase=phase, kind=MarkKind.ROLLBACK, detail="adopted", run_id=run_id)
    return RolloutMark(phase=phase, kind=MarkKind.ADVISORY, detail="adopted", run_id=run_id)
