"""Planned actions -> Cloudflare calls, each idempotent, verified by a re-read, journaled.

The applier keeps, per script, the id of the live deployment it expects. An
``advance`` (``guard=True``) re-reads the deployment history immediately
before and after every change. Before: if anyone else moved it since the
plan was made, it stops ("changed underneath you") instead of overwriting
their move. After: if a rollback landed while the change was in flight, the
change is undone by re-asserting the rollback's end state, and the run stops
for good (``RollbackSeen``): rollbacks win. Rollbacks (``guard=False``) skip
both checks and, when their verify re-read finds a later deployment on top
of theirs, deploy again.

Two runners on one step: before its first change each run posts a claim (a
deployment of the live split marked ``c=STEP``); the oldest live claim since
the step's base wins, the others stop having changed nothing else. A claim
by a run that is known dead (started on this machine, and the run lock is
ours now) or older than ``CLAIM_LEASE`` is ignored.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from tgk_deploy.engine.context import Context
from tgk_deploy.errors import CloudflareError, ConflictError, TgkError
from tgk_deploy.planner.actions import (
    DeleteSecret,
    ExportD1,
    PinVersion,
    PlannedAction,
    PutSecret,
    SetEmailRule,
    SetTraffic,
    SetVars,
    SmokeCheck,
    Stamp,
    UploadVersion,
    tag_phase,
)
from tgk_deploy.planner.observed import (
    Deployment,
    EnvironmentState,
    MarkKind,
    ObservedState,
    RolloutMark,
    Version,
)
from tgk_deploy.planner.plan import candidate_of, find_stable
from tgk_deploy.planner.rollback import standby_switch_off
from tgk_deploy.secret_values import read_secret
from tgk_deploy.triggers.evaluate import Outcome

CLAIM_LEASE = timedelta(minutes=10)  # a claim older than this, by Cloudflare's clock, has lapsed


class RollbackSeen(ConflictError):
    """A rollback landed while this advance applied: its end state was re-asserted; stop."""

    def __init__(self, message: str, deployment: Deployment) -> None:
        super().__init__(
            message,
            hint="the rollback stands; `tgk-deploy status`, then advance again when ready",
        )
        self.deployment = deployment


def is_rollback(deployment: Deployment) -> bool:
    """A deployment some rollback made: immediate, gradual (any step), feature or to-version."""
    mark = deployment.mark
    if mark is None:
        return False
    return mark.kind is MarkKind.ROLLBACK or (
        mark.kind is MarkKind.ADVISORY and (mark.detail or "").startswith(("gradual", "to-version"))
    )


class ActionOutcome(BaseModel):
    kind: str
    environment: str
    description: str
    status: str  # applied, failed
    result: dict[str, object] = Field(default_factory=dict)
    error: str | None = None


def _with_run(message: str | None, run_id: str) -> str | None:
    """Put this run's id into a mark, so history and Cloudflare agree on who did what."""
    if message is None:
        return None
    mark = RolloutMark.parse(message)
    if mark is None or mark.run_id:
        return message
    return mark.model_copy(update={"run_id": run_id}).render()


class Applier:
    def __init__(
        self,
        ctx: Context,
        observed: ObservedState,
        *,
        guard: bool = True,
        step: RolloutMark | None = None,
        dead_runs: Callable[[str], bool] = lambda run_id: False,
    ) -> None:
        self.ctx = ctx
        self.observed = observed
        self.guard = guard
        self.step = step  # the advance's step: every change it makes carries it
        self.dead_runs = dead_runs  # run ids known to have stopped (this machine's journal)
        self._lock = threading.Lock()
        self.expected_live: dict[str, str | None] = {
            name: (env.live.id if env.live else None) for name, env in observed.environments.items()
        }
        self.base_live = dict(self.expected_live)  # the deployments the plan was made on
        self.claimed: dict[str, str] = {}  # environment -> our claim's deployment id
        self.outcomes: list[ActionOutcome] = []
        self.live_split: dict[str, dict[str, float]] = {}  # what our own deployments left
        self._prefetched: dict[tuple[str, str], Future[Any]] = {}
        self.staged: dict[str, str] = {}  # environment -> candidate this run put in at 0 %

    def prefetch(self, actions: Sequence[PlannedAction]) -> None:
        """Start reading the versions later actions derive from, while earlier ones run."""
        bases = {
            (action.script, action.base_version_id)
            for action in actions
            if isinstance(action, SetVars) and action.base_version_id
        }
        if not bases:
            return
        pool = ThreadPoolExecutor(max_workers=len(bases), thread_name_prefix="prefetch")
        for key in bases - set(self._prefetched):
            self._prefetched[key] = pool.submit(self.ctx.api.version_parts, *key)
        pool.shutdown(wait=False)  # the threads end with their reads

    def _parts(self, script: str, version_id: str) -> Callable[[str, str], Any] | None:
        future = self._prefetched.pop((script, version_id), None)
        return (lambda _script, _version: future.result()) if future is not None else None

    # ------------------------------------------------------------------ helpers

    def _script(self, environment: str) -> str:
        return self.ctx.spec.project.environments[environment].script

    def _progress(self, message: str | None) -> str | None:
        """The mark a deployment made by this applier carries, in the request that makes it."""
        if message is not None:
            return _with_run(message, self.ctx.run_id)
        if self.step is None:
            return None
        return self.step.model_copy(
            update={"kind": MarkKind.PROGRESS, "run_id": self.ctx.run_id}
        ).render()

    def _made(self, fallback: str = "") -> str:
        """A version's message: the step it was made for, and by which run."""
        if self.step is None:
            return fallback or f"tgk r={self.ctx.run_id}"
        return self.step.model_copy(
            update={"kind": MarkKind.VERSION, "run_id": self.ctx.run_id}
        ).render()

    def _secret_tag(self, base: str, added: list, removed: list[str]) -> str | None:
        """A secret changed mid-split: one tag per step, base and names, so a re-run finds it.

        (Never the value: a tag is readable by anyone who can list versions.)
        """
        if self.step is None:
            return None  # a fresh tag
        key = [base, sorted(s.name for s in added), sorted(removed), self.step.phase]
        digest = hashlib.sha256(json.dumps([*key, self.step.step]).encode()).hexdigest()
        return f"tgk-s-{digest[:12]}"

    def _newer(
        self, environment: str, history: list[Deployment], since: str | None = None
    ) -> list[Deployment]:
        """Deployments that landed after ``since`` (default: the one this run expects)."""
        expected = since or self.expected_live.get(environment)
        ids = [d.id for d in history]
        if expected is None:
            return history
        if expected not in ids:
            return history  # fell off the history: treat everything as new
        return history[: ids.index(expected)]

    def _judge(
        self,
        environment: str,
        history: list[Deployment],
        ours: str | None = None,
        since: str | None = None,
    ) -> Deployment | None:
        """Stop unless everything newer than expected is ours or a claim; rollbacks win.

        ``ours``: a deployment this run just made, ``since`` what was expected
        before it (the check after a change looks at what landed around it).
        """
        live = history[0] if history else None
        for deployment in self._newer(environment, history, since):
            mark = deployment.mark
            if deployment.id == ours or (mark is not None and mark.run_id == self.ctx.run_id):
                continue
            if is_rollback(deployment):
                raise self._stand_aside(environment, deployment, ours)
            if mark is not None and mark.kind is MarkKind.CLAIM:
                continue
            who = deployment.author_email or (f"run {mark.run_id}" if mark else "someone")
            raise ConflictError(
                f"changed underneath you: deployment {deployment.id} of "
                f"{self._script(environment)} (by {who}) landed after "
                f"{self.expected_live.get(environment) or 'none'}, which this run planned on; "
                "nothing more was changed",
                hint="look at `tgk-deploy status`, then run the command again",
            )
        if self.claimed.get(environment):
            self._check_claim(environment, history)
        wanted = self.live_split.get(environment)
        if wanted is not None and live is not None and live.shares != wanted:
            raise ConflictError(
                f"changed underneath you: {self._script(environment)} now splits {live.shares}, "
                f"not {wanted} as this run left it; nothing more was changed",
                hint="look at `tgk-deploy status`, then run the command again",
            )
        return live

    def _check_unchanged(self, environment: str) -> Deployment | None:
        """Re-read the history right before a change; return the live deployment."""
        history = self.ctx.api.deployments(self._script(environment))
        if not self.guard:
            return history[0] if history else None
        return self._judge(environment, history)

    def _check_after(
        self, environment: str, ours: str | None = None, since: str | None = None
    ) -> None:
        """Re-read right after a change: a rollback that landed meanwhile wins."""
        if self.guard:
            history = self.ctx.api.deployments(self._script(environment))
            self._judge(environment, history, ours, since)

    def _stand_aside(
        self, environment: str, rollback: Deployment, ours: str | None
    ) -> RollbackSeen:
        """Undo what this run did after a rollback began: re-assert the rollback's end state."""
        from tgk_deploy.planner.rollback import plan_immediate

        mark = rollback.mark
        assert mark is not None
        script = self._script(environment)
        undo = Applier(self.ctx, self.observed, guard=False)
        if mark.kind is MarkKind.ROLLBACK and mark.detail in ("immediate", "gradual"):
            observed = self.ctx.observe([environment], details=False)
            plan = plan_immediate(
                self.ctx.spec, observed, environment, run_id=mark.run_id, detail=mark.detail
            )
            undo.observed = observed
            for wave in plan.waves:
                undo.apply_wave(wave)
        else:
            live = self.ctx.api.live_deployment(script)
            if live is None or live.id != rollback.id:
                self.ctx.api.deploy(
                    script, rollback.shares, message=rollback.message, allow_force=True
                )
        with self._lock:
            self.outcomes.extend(undo.outcomes)
        return RollbackSeen(
            f"a rollback ({rollback.message}, deployment {rollback.id}) began while this run "
            f"applied; {'its deployment ' + ours + ' was undone and ' if ours else ''}"
            "the rollback's end state stands. This run stopped",
            rollback,
        )

    # ------------------------------------------------------------------ the claim

    def claim(self, environment: str) -> None:
        """Post this run's claim on the step, then make sure it is the one that counts."""
        assert self.step is not None
        live = self._check_unchanged(environment)
        if live is None:
            return  # nothing deployed yet: nothing to copy; the upload's tag keeps it single
        mark = self.step.model_copy(
            update={"kind": MarkKind.CLAIM, "run_id": self.ctx.run_id}
        ).render()
        deployment = self.ctx.api.deploy(
            self._script(environment), live.shares, message=mark, allow_force=True
        )
        with self._lock:
            self.claimed[environment] = deployment.id
            since, self.expected_live[environment] = self.expected_live[environment], deployment.id
            self.live_split[environment] = live.shares
        self._check_after(environment, deployment.id, since)

    def _check_claim(self, environment: str, history: list[Deployment]) -> None:
        """The oldest claim on this step since its base that has not lapsed must be ours."""
        assert self.step is not None
        ours = self.claimed[environment]
        base = self.base_live.get(environment)
        ids = [d.id for d in history]
        since = history[: ids.index(base)] if base in ids else history
        mine = next((d for d in since if d.id == ours), None)
        if mine is None:
            return  # our claim fell off the history: nothing newer can have beaten it
        claims = [
            d
            for d in since
            if d.mark is not None
            and d.mark.kind is MarkKind.CLAIM
            and (d.mark.phase, d.mark.step) == (self.step.phase, self.step.step)
            and (d.id == ours or not self.dead_runs(d.mark.run_id))
            and mine.created_on - d.created_on < CLAIM_LEASE
        ]
        first = claims[-1]  # newest first: the last is the oldest
        if first.id == ours:
            return
        index = ids.index(ours)
        below = history[index + 1] if index + 1 < len(history) else None
        live = history[0]
        if live.id == ours and below is not None and below.shares != mine.shares:
            # our claim copied a split the winner has since changed: put theirs back
            self.ctx.api.deploy(
                self._script(environment), below.shares, message=below.message, allow_force=True
            )
        raise ConflictError(
            f"run {first.mark.run_id if first.mark else '?'} claimed phase {self.step.phase} step "
            f"{self.step.step} first (deployment {first.id}); this run changed nothing else",
            hint="let that run finish, then `tgk-deploy status`; a dead run's claim lapses "
            f"after {int(CLAIM_LEASE.total_seconds() // 60)} minutes",
        )

    def _deploy(
        self,
        environment: str,
        wanted: dict[str, float],
        message: str | None,
        *,
        force: bool,
        verify: bool = True,
    ) -> dict[str, object]:
        """Deploy a split, record it as ours and verify it by a re-read (set, then verify).

        A rollback whose re-read finds a later deployment on top of its own
        deploys again (twice at most): nothing planned before it may stand after it.
        """
        script = self._script(environment)
        for _attempt in range(3):
            deployment = self.ctx.api.deploy(script, wanted, message=message, allow_force=force)
            with self._lock:
                since = self.expected_live.get(environment)
                self.expected_live[environment] = deployment.id
                self.live_split[environment] = dict(wanted)
            if not verify:
                return {"deployment": deployment.id, "split": dict(wanted), "verified": False}
            history = self.ctx.api.deployments(script)
            if self.guard:
                self._judge(environment, history, deployment.id, since)
            live = history[0] if history else None
            got = live.shares if live else {}
            want = {k: v for k, v in wanted.items() if v > 0}
            landed = {k: v for k, v in got.items() if v > 0} == want and set(wanted) <= set(got)
            if live is not None and landed and (live.id == deployment.id or self.guard):
                return {"deployment": deployment.id, "split": got}
            if self.guard:
                break
            if live is not None and is_rollback(live) and live.mark.run_id != self.ctx.run_id:
                # another rollback came after ours: the later one stands, never fought over
                return {"deployment": deployment.id, "superseded_by": live.id, "split": got}
        raise CloudflareError(
            f"verify deployment {deployment.id}",
            state_left=f"the live deployment is {live.id if live else 'none'} with split {got}",
            hint="tgk-deploy status; then re-run the same command",
        )

    def _environment(self, environment: str):
        from tgk_deploy.cloudflare.observe import observe_environment

        return observe_environment(self.ctx.api, self._script(environment))

    # ------------------------------------------------------------------ one action

    def apply(self, action: PlannedAction) -> ActionOutcome:
        try:
            result = self._apply(action)
        except TgkError as error:
            outcome = ActionOutcome(
                kind=action.kind,
                environment=action.environment,
                description=action.describe(),
                status="failed",
                error=error.message,
            )
            self._record(outcome)
            raise
        outcome = ActionOutcome(
            kind=action.kind,
            environment=action.environment,
            description=action.describe(),
            status="applied",
            result=result,
        )
        self._record(outcome)
        return outcome

    def _record(self, outcome: ActionOutcome) -> None:
        with self._lock:
            self.outcomes.append(outcome)
        journal = self.ctx.journal
        if journal is not None:
            journal.action(
                self.ctx.run_id,
                outcome.kind,
                outcome.description,
                outcome.status,
                outcome.environment,
                outcome.result or None,
                outcome.error,
            )
        self.ctx.emit("action", f"{outcome.status}: {outcome.description}", outcome=outcome)

    def apply_wave(self, actions: Sequence[PlannedAction]) -> list[ActionOutcome]:
        """Independent actions, concurrently; the first failure is raised after all finished."""
        if len(actions) == 1:
            return [self.apply(actions[0])]
        with ThreadPoolExecutor(max_workers=len(actions)) as pool:
            futures = [pool.submit(self.apply, action) for action in actions]
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            raise errors[0]  # type: ignore[misc]
        return [f.result() for f in futures]

    def _apply(self, action: PlannedAction) -> dict[str, object]:
        api = self.ctx.api
        run_id = self.ctx.run_id
        if isinstance(action, UploadVersion):
            from tgk_deploy.bundle import read_bundle

            bundle = read_bundle(self.ctx.bundle_dir, action.environment)
            if bundle.content_hash != action.bundle_hash:
                raise ConflictError(
                    f"the bundle in {self.ctx.bundle_dir} changed since the plan was made "
                    f"({bundle.content_hash[:12]} now, {action.bundle_hash[:12]} planned)",
                    hint="run the command again to plan with the current bundle",
                )
            version = api.upload_version(
                action.script, bundle, vars=action.vars, tag=action.tag, message=self._made()
            )
            return {"version": version.id, "number": version.number, "tag": action.tag}
        if isinstance(action, SetTraffic):
            env = self._environment(action.environment)
            candidate = env.version_with_tag(action.candidate_tag) if action.candidate_tag else None
            candidate_id = candidate.id if candidate else action.candidate_version_id
            if candidate_id is None:
                raise CloudflareError(
                    f"find the version tagged {action.candidate_tag}",
                    state_left="traffic unchanged",
                    hint="re-run the same command: the upload will be redone",
                )
            stable = find_stable(env, candidate_id)
            wanted = {candidate_id: float(action.percentage)}
            if action.percentage == 0 and stable is None:
                raise CloudflareError(
                    f"put the candidate in the {action.script} deployment at 0 %",
                    state_left="traffic unchanged",
                    hint="no stable version to keep 100 %: tgk-deploy status",
                )
            if action.percentage < 100:
                if stable is None:
                    raise CloudflareError(
                        f"split traffic on {action.script}",
                        state_left="traffic unchanged",
                        hint="no stable version to keep the rest: tgk-deploy status",
                    )
                wanted[stable] = float(100 - action.percentage)
            if action.percentage > 0:
                wanted = {k: v for k, v in wanted.items() if v > 0}
            else:  # staged for the smoke check: in the deployment, without traffic
                self.staged[action.environment] = candidate_id
            if self.guard:
                self._check_unchanged(action.environment)  # the last read before the POST
            message = self._progress(action.message)
            deploy = lambda: self._deploy(  # noqa: E731
                action.environment, wanted, message, force=self.ctx.allow_force
            )
            first = env.live is None or env.live.share_of(candidate_id) == 0
            standby = self._standby(action, env, stable, candidate) if first else None
            if standby is None:
                return deploy()
            result, _ = api.concurrently(deploy, lambda: self._prepare_standby(standby))
            return result
        if isinstance(action, PinVersion):
            if self.guard:
                self._check_unchanged(action.environment)
            wanted = {action.version_id: 100.0}
            message = self._progress(action.message)
            return self._deploy(
                action.environment, wanted, message, force=True, verify=action.verify
            )
        if isinstance(action, PutSecret | DeleteSecret):
            # As `wrangler versions secret put` does: new versions derived from the live
            # ones, deployed in the same split. Never the script-level secret PUT/DELETE:
            # Cloudflare makes those from the *latest* version and refuses them (10215)
            # whenever that is not the deployed one, which is the case mid-split and
            # after every phase's first split (its rollback's standby switch-off).
            if isinstance(action, PutSecret):  # read before any change: a missing value stops here
                secret = read_secret(action.name, action.source, self.ctx.project_dir)
                self._check_unchanged(action.environment)
                return self._replace_live_versions(action.environment, add_secrets=[secret])
            self._check_unchanged(action.environment)
            return self._replace_live_versions(action.environment, remove_secrets=[action.name])
        if isinstance(action, SetVars):
            if self.guard:
                self._check_unchanged(action.environment)
            return self._replace_live_versions(
                action.environment,
                vars_=action.vars,
                remove_secrets=action.remove_secrets,
                base_version_id=action.base_version_id,
                tag=action.tag,
                message=_with_run(action.message, run_id),
            )
        if isinstance(action, SetEmailRule):
            rule = self.observed.email_rules.get(action.rule)
            if rule is None:
                raise CloudflareError(
                    f"find email routing rule {action.rule_name!r}",
                    status=404,
                    state_left="unchanged",
                    hint="create the rule in the Cloudflare dashboard, or fix "
                    "email_routing in tgk-deploy.yaml; then run the command again",
                )
            if self.guard:
                self._check_unchanged(action.environment)
            updated = api.set_email_rule_enabled(
                self.ctx.spec.project.email_routing, rule, action.enabled
            )
            try:
                self._check_after(action.environment)
            except RollbackSeen:
                if updated.enabled != rule.enabled:  # ours landed after the rollback's: undo it
                    api.set_email_rule_enabled(
                        self.ctx.spec.project.email_routing, updated, rule.enabled
                    )
                raise
            return {"rule": updated.id, "enabled": updated.enabled}
        if isinstance(action, ExportD1):
            database = self.ctx.spec.project.d1[action.database]
            target = self.ctx.backups_dir / f"{action.backup_key}.sql"
            path = api.export_d1(database, target)
            return {"file": str(Path(path)), "bytes": Path(path).stat().st_size}
        if isinstance(action, SmokeCheck):
            return self._smoke(action)
        if isinstance(action, Stamp):
            live = self._check_unchanged(action.environment)
            if live is None:
                raise CloudflareError(f"stamp {action.script}", state_left="nothing is deployed")
            message = _with_run(action.mark, run_id)
            return self._deploy(
                action.environment, live.shares, message, force=self.ctx.allow_force
            )
        raise TypeError(f"no way to apply {action!r}")

    def _smoke(self, action: SmokeCheck) -> dict[str, object]:
        """The candidate's self-test through a version override; anything but pass stops the step."""
        version_id = action.candidate_version_id or self.staged.get(action.environment)
        if version_id is None:
            found = self._environment(action.environment).version_with_tag(action.candidate_tag)
            version_id = found.id if found else None
        if version_id is None:
            raise CloudflareError(
                f"find the version tagged {action.candidate_tag}",
                state_left="traffic unchanged",
                hint="re-run the same command: the upload will be redone",
            )
        report = self.ctx.smoke(action.environment, version_id)
        summary: dict[str, object] = {
            "version": version_id,
            "outcome": report.outcome.value,
            "why": report.why,
            "checked": report.checked,
            "failed": report.failed,
            "attempts": report.attempts,
        }
        if self.ctx.journal is not None:
            self.ctx.journal.verdict(
                self.ctx.run_id, "smoke", "smoke", report.outcome.value, report
            )
        if report.outcome is not Outcome.PASS:
            raise report.error()
        return summary

    def _standby(
        self,
        action: SetTraffic,
        env: EnvironmentState,
        stable: str | None,
        candidate: Version | None,
    ) -> SetVars | None:
        """The switch-off a rollback of this phase will pin, when it is still to be made."""
        phase = tag_phase(candidate.tag if candidate else action.candidate_tag)
        if stable is None or phase is None or all(p.phase != phase for p in self.ctx.spec.phases):
            return None
        standby = standby_switch_off(
            self.ctx.spec, phase, action.environment, action.script, stable
        )
        return standby if standby and env.version_with_tag(standby.tag) is None else None

    def _prepare_standby(self, standby: SetVars) -> None:
        """Upload (never deploy) the switch-off beside the phase's first split.

        Best effort: without it a rollback reads the stable version and makes
        the switch-off itself, two rounds slower; so a failure is said, not raised.
        """
        outcome = ActionOutcome(
            kind="prepare_switch_off",
            environment=standby.environment,
            description=f"prepare the rollback's switch-off of {standby.base_version_id} "
            f"({standby.tag}, not deployed)",
            status="applied",
        )
        try:
            version = self.ctx.api.derive_version(
                standby.script,
                standby.base_version_id or "",
                vars=standby.vars,
                remove_secrets=standby.remove_secrets,
                tag=standby.tag,
                message=self._made(f"tgk rollback standby r={self.ctx.run_id}"),
                check_existing=False,  # the version list was read moments ago
            )
            outcome.result = {"version": version.id, "tag": standby.tag}
        except TgkError as error:
            outcome.status, outcome.error = "failed", error.message
            self.ctx.emit(
                "note",
                f"the rollback's switch-off was not prepared ({error.message}); "
                "a rollback will make it, two rounds slower",
            )
        self._record(outcome)

    def _replace_live_versions(
        self,
        environment: str,
        *,
        vars_: dict[str, str] | None = None,
        add_secrets: list | None = None,
        remove_secrets: list[str] | None = None,
        base_version_id: str | None = None,
        tag: str | None = None,
        message: str | None = None,
    ) -> dict[str, object]:
        """New versions inheriting every binding but these changes, deployed in the same split.

        With ``base_version_id`` only that version is replaced; otherwise the
        phase's candidate (or the sole live version) for vars, every live version
        for secrets.
        """
        api = self.ctx.api
        script = self._script(environment)
        known = self.observed.environments.get(environment)
        if environment in self.live_split and known is not None:
            shares = dict(self.live_split[environment])  # we deployed it moments ago
            env = known
        else:
            env = self._environment(environment)
            if env.live is None:
                raise CloudflareError(
                    f"change versions of {script}", state_left="nothing is deployed"
                )
            shares = {v.version_id: v.percentage for v in env.live.versions}
        if base_version_id is not None:
            targets = [base_version_id]
        elif vars_:
            mark = next((d.mark for d in env.deployments if d.mark), None)
            candidate = candidate_of(env, mark.phase) if mark else None
            targets = [candidate.id] if candidate else [next(iter(shares))]
        else:
            targets = list(shares)
        replaced: dict[str, str] = {}
        for target in targets:
            if target not in shares:
                raise ConflictError(
                    f"version {target} no longer takes traffic on {script}",
                    hint="tgk-deploy status; then run the command again",
                )
            new_tag = tag or self._secret_tag(target, add_secrets or [], remove_secrets or [])
            listed = known is not None and bool(known.versions)
            version = api.derive_version(
                script,
                target,
                vars=vars_ or {},
                add_secrets=add_secrets or [],
                remove_secrets=remove_secrets or [],
                tag=new_tag,
                message=message or self._made(f"tgk derived from {target[:8]} r={self.ctx.run_id}"),
                parts=self._parts(script, target),
                check_existing=not listed
                or (new_tag is not None and known.version_with_tag(new_tag) is not None),
            )
            replaced[target] = version.id
        if all(old == new for old, new in replaced.items()) and not message:
            return {"unchanged": True, "split": shares}
        wanted = {replaced.get(v, v): p for v, p in shares.items()}
        result = self._deploy(environment, wanted, message or self._progress(None), force=True)
        return {**result, "replaced": replaced}
