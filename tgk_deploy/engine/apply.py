"""Planned actions -> Cloudflare calls, each idempotent, verified by a re-read, journaled.

The applier keeps, per script, the id of the live deployment it expects. Before
it changes traffic it re-reads the live deployment; if someone else moved it
since the plan was made, it stops with "changed underneath you" instead of
overwriting their move (rollbacks skip that check: they must win).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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
    Stamp,
    UploadVersion,
)
from tgk_deploy.planner.observed import Deployment, ObservedState, RolloutMark
from tgk_deploy.planner.plan import candidate_of, find_stable
from tgk_deploy.secret_values import read_secret


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
    def __init__(self, ctx: Context, observed: ObservedState, *, guard: bool = True) -> None:
        self.ctx = ctx
        self.observed = observed
        self.guard = guard
        self._lock = threading.Lock()
        self.expected_live: dict[str, str | None] = {
            name: (env.live.id if env.live else None) for name, env in observed.environments.items()
        }
        self.outcomes: list[ActionOutcome] = []
        self.live_split: dict[str, dict[str, float]] = {}  # what our own deployments left
        self._prefetched: dict[tuple[str, str], Future[Any]] = {}

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

    def _check_unchanged(self, environment: str) -> Deployment | None:
        """Stop if the live deployment is not the one we expect; return the live one."""
        live = self.ctx.api.live_deployment(self._script(environment))
        if not self.guard:
            return live
        expected = self.expected_live.get(environment)
        if (live.id if live else None) != expected:
            who = (live.author_email or "someone") if live else "someone"
            raise ConflictError(
                f"changed underneath you: the live deployment of {self._script(environment)} is now "
                f"{live.id if live else 'none'} (by {who}), not {expected} as when this run planned; "
                "nothing more was changed",
                hint="look at `tgk-deploy status`, then run the command again",
            )
        return live

    def _deploy(
        self,
        environment: str,
        wanted: dict[str, float],
        message: str | None,
        *,
        force: bool,
        verify: bool = True,
    ) -> dict[str, object]:
        """Deploy a split, record it as ours and verify it by a re-read (set, then verify)."""
        deployment = self.ctx.api.deploy(
            self._script(environment), wanted, message=message, allow_force=force
        )
        with self._lock:
            self.expected_live[environment] = deployment.id
            self.live_split[environment] = dict(wanted)
        if not verify:
            return {"deployment": deployment.id, "split": dict(wanted), "verified": False}
        live = self.ctx.api.live_deployment(self._script(environment))
        got = {v.version_id: v.percentage for v in live.versions} if live else {}
        if (
            live is None
            or live.id != deployment.id
            or got != {k: v for k, v in wanted.items() if v > 0}
        ):
            raise CloudflareError(
                f"verify deployment {deployment.id}",
                state_left=f"the live deployment is {live.id if live else 'none'} with split {got}",
                hint="tgk-deploy status; then re-run the same command",
            )
        return {"deployment": deployment.id, "split": got}

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
            message = f"tgk upload {action.tag} r={run_id}"
            version = api.upload_version(
                action.script, bundle, vars=action.vars, tag=action.tag, message=message
            )
            return {"version": version.id, "number": version.number, "tag": action.tag}
        if isinstance(action, SetTraffic):
            live = self._check_unchanged(action.environment)
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
            if action.percentage < 100:
                if stable is None:
                    raise CloudflareError(
                        f"split traffic on {action.script}",
                        state_left=f"traffic unchanged ({live.id if live else 'no deployment'})",
                        hint="no stable version to keep the rest: tgk-deploy status",
                    )
                wanted[stable] = float(100 - action.percentage)
            wanted = {k: v for k, v in wanted.items() if v > 0}
            message = _with_run(action.message, run_id)
            return self._deploy(action.environment, wanted, message, force=self.ctx.allow_force)
        if isinstance(action, PinVersion):
            if self.guard:
                self._check_unchanged(action.environment)
            wanted = {action.version_id: 100.0}
            message = _with_run(action.message, run_id)
            return self._deploy(
                action.environment, wanted, message, force=True, verify=action.verify
            )
        if isinstance(action, PutSecret | DeleteSecret):
            live = self._check_unchanged(action.environment)
            split = live is not None and len(live.versions) > 1
            if isinstance(action, PutSecret):
                secret = read_secret(action.name, action.source, self.ctx.project_dir)
                if split:
                    return self._replace_live_versions(action.environment, add_secrets=[secret])
                api.put_secret(action.script, secret)
            else:
                if split:
                    return self._replace_live_versions(
                        action.environment, remove_secrets=[action.name]
                    )
                api.delete_secret(action.script, action.name)
            # a script-level secret change deploys a copy of the latest version at 100 %
            new_live = api.live_deployment(action.script)
            with self._lock:
                self.expected_live[action.environment] = new_live.id if new_live else None
            return {"secret": action.name, "deployment": new_live.id if new_live else None}
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
                    f"find email routing rule {action.rule_name!r}", state_left="unchanged"
                )
            updated = api.set_email_rule_enabled(
                self.ctx.spec.project.email_routing, rule, action.enabled
            )
            return {"rule": updated.id, "enabled": updated.enabled}
        if isinstance(action, ExportD1):
            database = self.ctx.spec.project.d1[action.database]
            target = self.ctx.backups_dir / f"{action.backup_key}.sql"
            path = api.export_d1(database, target)
            return {"file": str(Path(path)), "bytes": Path(path).stat().st_size}
        if isinstance(action, Stamp):
            live = self._check_unchanged(action.environment)
            if live is None:
                raise CloudflareError(f"stamp {action.script}", state_left="nothing is deployed")
            wanted = {v.version_id: v.percentage for v in live.versions}
            message = _with_run(action.mark, run_id)
            return self._deploy(action.environment, wanted, message, force=self.ctx.allow_force)
        raise TypeError(f"no way to apply {action!r}")

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
            new_tag = tag  # None: a fresh tag (a secret added mid-split is not content-addressed)
            listed = known is not None and bool(known.versions)
            version = api.derive_version(
                script,
                target,
                vars=vars_ or {},
                add_secrets=add_secrets or [],
                remove_secrets=remove_secrets or [],
                tag=new_tag,
                message=message or f"tgk derived from {target[:8]} r={self.ctx.run_id}",
                parts=self._parts(script, target),
                check_existing=not listed
                or (new_tag is not None and known.version_with_tag(new_tag) is not None),
            )
            replaced[target] = version.id
        if all(old == new for old, new in replaced.items()) and not message:
            return {"unchanged": True, "split": shares}
        wanted = {replaced.get(v, v): p for v, p in shares.items()}
        result = self._deploy(environment, wanted, message, force=True)
        return {**result, "replaced": replaced}
