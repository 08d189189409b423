"""Every rollback: immediate, gradual, feature, to a named version, and the teardown.

None of them waits on Prometheus before acting (the gradual one checks the
triggers between its steps, to report and to decide whether to hurry) and
none reads the journal: the plan comes from Cloudflare's deployment history.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel, Field

from tgk_deploy.engine.apply import ActionOutcome, Applier
from tgk_deploy.engine.context import Context
from tgk_deploy.errors import CloudflareError, RefusedError, TgkError
from tgk_deploy.planner.foreign import find_foreign_move
from tgk_deploy.planner.observed import ObservedState
from tgk_deploy.planner.rollback import (
    RollbackMode,
    RollbackPlan,
    plan_adopt,
    plan_feature,
    plan_gradual_finish,
    plan_gradual_step,
    plan_immediate,
    plan_restore,
    plan_to_version,
)
from tgk_deploy.triggers.evaluate import GateVerdict, Outcome


class RollbackReport(BaseModel):
    run_id: str
    mode: RollbackMode
    phase: int | None = None
    plans: list[RollbackPlan] = Field(default_factory=list)
    outcomes: list[ActionOutcome] = Field(default_factory=list)
    verdicts: list[GateVerdict] = Field(default_factory=list)
    done: bool = False
    message: str = ""


def _refuse_if(plan: RollbackPlan) -> None:
    if plan.refusals:
        refusal = plan.refusals[0]
        raise RefusedError(refusal.message, hint=refusal.command)


def _run(
    ctx: Context,
    plan: RollbackPlan,
    observed: ObservedState,
    report: RollbackReport,
    *,
    dry_run: bool,
) -> None:
    """Apply the plan wave by wave; on failure say exactly what Cloudflare now has."""
    report.plans.append(plan)
    if dry_run or plan.done:
        return
    applier = Applier(ctx, observed, guard=False)
    applier.prefetch(plan.actions)  # the switch-off's base is read while traffic moves
    try:
        for wave in plan.waves:
            applier.apply_wave(wave)
    except TgkError as error:
        done = [o.description for o in applier.outcomes if o.status == "applied"]
        state = "; ".join(done) if done else "nothing changed yet"
        raise CloudflareError(
            f"rollback ({plan.mode})",
            state_left=f"{state}. Failed: {error.message}",
            hint="run the same rollback command again: it only does what is not done yet",
        ) from error
    finally:
        report.outcomes.extend(applier.outcomes)


def _journal(ctx: Context, command: str, phase: int | None, *, start: bool) -> None:
    """Journal the run's start and tell people (the send goes out beside the rollback)."""
    if start:
        ctx.notify("rollback-started", f"{command} started", phase=phase)
    if ctx.journal is not None and start:
        ctx.journal.start_run(ctx.run_id, command, phase=phase, operator=ctx.operator)


def _finish(ctx: Context, report: RollbackReport, status: str) -> None:
    ok = status == "succeeded"
    ctx.notify("rollback-finished", report.message or status, phase=report.phase, ok=ok)
    if ctx.journal is not None:
        ctx.journal.finish_run(ctx.run_id, status, message=report.message)


def _one_shot(
    ctx: Context,
    plan: RollbackPlan,
    observed: ObservedState,
    *,
    dry_run: bool,
    done_message: Callable[[RollbackPlan], str],
    command: str = "rollback",
) -> RollbackReport:
    """Run a single-plan rollback: journal, notify, apply wave by wave, report."""
    _refuse_if(plan)
    report = RollbackReport(run_id=ctx.run_id, mode=plan.mode, phase=plan.phase)
    if not dry_run and not plan.done:
        _journal(ctx, command, plan.phase, start=True)
    try:
        _run(ctx, plan, observed, report, dry_run=dry_run)
    except TgkError:
        report.message = f"{plan.mode} rollback failed part-way"
        _finish(ctx, report, "failed")
        raise
    report.done = not dry_run
    report.message = done_message(plan)
    if not dry_run and not plan.done:
        _finish(ctx, report, "succeeded")
    return report


def immediate(
    ctx: Context, *, dry_run: bool = False, environment: str = "production"
) -> RollbackReport:
    # one round of reads, all at once: deployments, versions (their tags) and email rules
    observed = ctx.observe([environment], details=False)
    plan = plan_immediate(ctx.spec, observed, environment, run_id=ctx.run_id)

    def message(plan: RollbackPlan) -> str:
        if plan.done and plan.phase is None:
            return f"nothing to roll back: tgk-deploy has changed nothing on {environment}"
        if plan.done:
            return "already rolled back: nothing to do"
        return f"phase {plan.phase} rolled back: all traffic on {plan.stable_version_id}"

    return _one_shot(ctx, plan, observed, dry_run=dry_run, done_message=message)


def gradual(
    ctx: Context,
    *,
    dry_run: bool = False,
    environment: str = "production",
    interval: timedelta | None = None,
) -> RollbackReport:
    """75 -> 50 -> 25 -> 0 %, the configured interval between steps, then the full rollback.

    Triggers are checked between steps; if one fires the remaining steps are
    skipped and the full rollback happens at once. Interrupted, it resumes from
    the live share: running it again continues.
    """
    pause = interval if interval is not None else ctx.spec.project.rollback.gradual.interval
    report = RollbackReport(run_id=ctx.run_id, mode=RollbackMode.GRADUAL)
    budget = [CHECK_BUDGET_SECONDS]  # seconds left for checks: what they take, all together
    if not dry_run:
        _journal(ctx, "rollback", None, start=True)
    try:
        while True:
            observed = ctx.observe()
            step = plan_gradual_step(ctx.spec, observed, environment, run_id=ctx.run_id)
            _refuse_if(step)
            report.phase = step.phase
            if dry_run:
                report.plans.append(step)
                return report
            if step.next_share == 0 or step.done:
                _run(ctx, step, observed, report, dry_run=False)
                break
            ctx.emit("step", f"gradual rollback: candidate to {step.next_share} %")
            _run(ctx, step, observed, report, dry_run=False)
            ctx.emit("wait", f"next gradual step in {pause}", until=ctx.clock.now() + pause)
            ctx.clock.sleep(pause.total_seconds())
            observed = ctx.observe()
            verdicts = _bounded_checks(ctx, observed, step.phase or 1, budget)
            report.verdicts.extend(verdicts)
            if any(v.outcome is Outcome.FAIL for v in verdicts):
                ctx.emit(
                    "response",
                    "a trigger fired during the gradual rollback: rolling back fully now",
                )
                final = plan_gradual_finish(ctx.spec, observed, environment, run_id=ctx.run_id)
                _run(ctx, final, observed, report, dry_run=False)
                break
    except TgkError:
        report.message = "gradual rollback stopped part-way; run it again to continue"
        _finish(ctx, report, "failed")
        raise
    report.done = True
    report.message = f"phase {report.phase} rolled back gradually"
    _finish(ctx, report, "succeeded")
    return report


CHECK_BUDGET_SECONDS = 3.0  # all of a gradual rollback's between-step checks together


def _bounded_checks(
    ctx: Context, observed: ObservedState, phase: int, budget: list[float]
) -> list[GateVerdict]:
    """The triggers, within what is left of the rollback's check budget; past it, inconclusive.

    ``budget[0]`` is what the checks may still take, all together; each
    check's time is taken from it. The rollback goes on either way: a check
    only decides whether to hurry.
    """
    from dataclasses import replace

    from tgk_deploy.engine.advance import check_triggers
    from tgk_deploy.triggers.evaluate import GateKind

    if ctx.metrics is None:
        return []
    left = budget[0]
    why = (
        f"no trigger check: the gradual rollback's {CHECK_BUDGET_SECONDS:g} s budget for "
        "checks is spent; the rollback goes on"
    )
    if left > 0.05:
        bounded = getattr(ctx.metrics, "bounded", None)
        metrics = bounded(left) if bounded is not None else ctx.metrics
        started = time.monotonic()
        try:
            verdicts = check_triggers(replace(ctx, metrics=metrics), observed, phase)
        finally:
            if metrics is not ctx.metrics:
                metrics.close()
            budget[0] -= time.monotonic() - started
        if budget[0] > 0 or not any(v.outcome is Outcome.INCONCLUSIVE for v in verdicts):
            return verdicts
        why = (
            f"trigger checks gave no answer within the gradual rollback's "
            f"{CHECK_BUDGET_SECONDS:g} s budget: inconclusive; the rollback goes on"
        )
    ctx.emit("note", why)
    return [
        GateVerdict(
            phase=phase,
            kind=GateKind.TRIGGERS,
            outcome=Outcome.INCONCLUSIVE,
            why=why,
            evaluated_at=ctx.clock.now(),
        )
    ]


def feature(
    ctx: Context, name: str, *, dry_run: bool = False, environment: str = "production"
) -> RollbackReport:
    from tgk_deploy.errors import ConfigError

    if name not in ctx.spec.project.features:
        known = ", ".join(sorted(ctx.spec.project.features))
        raise ConfigError(f"no feature {name!r}; the project has: {known}")
    observed = ctx.observe()
    plan = plan_feature(ctx.spec, observed, name, environment, run_id=ctx.run_id)
    return _one_shot(
        ctx,
        plan,
        observed,
        dry_run=dry_run,
        done_message=lambda p: f"feature {name} is off" + (" (it already was)" if p.done else ""),
    )


def to_version(
    ctx: Context, version_id: str, *, dry_run: bool = False, environment: str = "production"
) -> RollbackReport:
    observed = ctx.observe()
    plan = plan_to_version(observed, version_id, environment, run_id=ctx.run_id)
    return _one_shot(
        ctx,
        plan,
        observed,
        dry_run=dry_run,
        done_message=lambda p: (
            f"all traffic on {version_id}" + (" (it already was)" if p.done else "")
        ),
    )


def adopt(
    ctx: Context, *, dry_run: bool = False, environment: str = "production"
) -> RollbackReport:
    """Take the live deployment someone else made as tgk-deploy's own; no traffic moves."""
    observed = ctx.observe([environment])
    move = find_foreign_move(environment, observed.environments[environment])
    plan = plan_adopt(observed, environment, run_id=ctx.run_id)

    def message(plan: RollbackPlan) -> str:
        if move is None:
            return f"nothing to adopt: the live deployment on {environment} is tgk-deploy's"
        if plan.stable_version_id is not None:
            return f"adopted as phase {plan.phase}'s rollback: {move.describe()}"
        return f"adopted where it stands: {move.describe()}"

    return _one_shot(ctx, plan, observed, dry_run=dry_run, done_message=message, command="adopt")


def restore(
    ctx: Context, *, dry_run: bool = False, environment: str = "production"
) -> RollbackReport:
    """Put back the split tgk-deploy last left, undoing a move made outside it."""
    observed = ctx.observe([environment])
    move = find_foreign_move(environment, observed.environments[environment])
    plan = plan_restore(observed, environment, run_id=ctx.run_id)

    def message(plan: RollbackPlan) -> str:
        if move is None:
            return f"nothing to restore: the live deployment on {environment} is tgk-deploy's"
        return (
            f"restored {move.split_text(move.ours_split)} under {move.ours_mark!r} "
            "(its bake starts over)"
        )

    return _one_shot(ctx, plan, observed, dry_run=dry_run, done_message=message, command="restore")


class DestroyPlan(BaseModel):
    backups: list[str] = Field(default_factory=list)
    email_rules: list[str] = Field(default_factory=list)
    scripts: list[str] = Field(default_factory=list)
    d1: list[str] = Field(default_factory=list)
    r2: list[str] = Field(default_factory=list)

    def lines(self) -> list[str]:
        return (
            [
                f"export D1 database {name} to {path}"
                for name, path in zip(self.d1, self.backups, strict=True)
            ]
            + [f"email rule {rule}" for rule in self.email_rules]
            + [f"delete Worker script {script}" for script in self.scripts]
            + [f"delete D1 database {name}" for name in self.d1]
            + [f"delete R2 bucket {bucket} (must be empty)" for bucket in self.r2]
        )


def destroy_plan(ctx: Context) -> DestroyPlan:
    project = ctx.spec.project
    stamp = ctx.clock.now().strftime("%Y%m%dT%H%M%S")
    return DestroyPlan(
        backups=[str(ctx.backups_dir / f"destroy-{stamp}-{key}.sql") for key in project.d1],
        email_rules=[
            f"{project.email_routing.legacy_rule!r} on, {project.email_routing.worker_rule!r} off (mail keeps flowing)"
        ],
        scripts=[env.script for env in project.environments.values()],
        d1=[db.name for db in project.d1.values()],
        r2=[bucket.bucket for bucket in project.r2.values()],
    )


def destroy(ctx: Context, plan: DestroyPlan, *, confirm: str) -> RollbackReport:
    """The infrastructure rollback. D1 is exported first; nothing is deleted without the name typed."""
    from tgk_deploy.errors import ConfigError
    from tgk_deploy.planner.actions import ExportD1

    production = ctx.spec.project.environments["production"].script
    if confirm != production:
        raise ConfigError(f"type the production script name ({production}) to confirm the teardown")
    report = RollbackReport(run_id=ctx.run_id, mode=RollbackMode.TO_VERSION, message="")
    _journal(ctx, "destroy", None, start=True)
    observed = ctx.observe(require=False)  # a re-run after a partial teardown skips what is gone
    applier = Applier(ctx, observed, guard=False)
    try:
        for key, path in zip(ctx.spec.project.d1, plan.backups, strict=True):
            database = ctx.spec.project.d1[key]
            backup_key = Path(path).stem
            applier.apply(
                ExportD1(
                    environment="production",
                    script=production,
                    database=key,
                    database_name=database.name,
                    backup_key=backup_key,
                )
            )
        fallback = [a for a in plan_immediate(ctx.spec, observed).actions if a.kind == "email_rule"]
        if fallback:
            applier.apply_wave(fallback)
        api = ctx.api
        for env in ctx.spec.project.environments.values():
            api.delete_script(env.script, confirm=env.script)
            ctx.emit("action", f"deleted Worker script {env.script}")
        for database in ctx.spec.project.d1.values():
            api.delete_d1(database, confirm=database.name)
            ctx.emit("action", f"deleted D1 database {database.name}")
        for bucket in ctx.spec.project.r2.values():
            api.delete_r2_bucket(bucket.bucket, confirm=bucket.bucket)
            ctx.emit("action", f"deleted R2 bucket {bucket.bucket}")
    except TgkError as error:
        report.outcomes = applier.outcomes
        _finish(ctx, report, "failed")
        raise CloudflareError(
            "destroy",
            state_left=f"stopped at: {error.message}; backups in {ctx.backups_dir}",
            hint="fix the cause (an R2 bucket must be empty) and run destroy again: deleted parts are skipped",
        ) from error
    report.outcomes = applier.outcomes
    report.done = True
    report.message = (
        "torn down: "
        + ", ".join(plan.scripts + plan.d1 + plan.r2)
        + f"; D1 backups in {ctx.backups_dir}"
    )
    _finish(ctx, report, "succeeded")
    return report
