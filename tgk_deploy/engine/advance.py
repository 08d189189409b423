"""``advance``: observe, plan, check the triggers, apply the next step, verify, stamp.

Triggers are checked before every step: those of the phase being advanced and
of every earlier phase whose changes are live. A failing trigger performs the
phase's declared response (halt, feature rollback, immediate or gradual
rollback); an inconclusive verdict halts with the reason, never passes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from enum import StrEnum

from pydantic import BaseModel, Field

from tgk_deploy.engine.apply import ActionOutcome, Applier, RollbackSeen
from tgk_deploy.engine.context import Context, require_phase
from tgk_deploy.engine.lock import run_lock
from tgk_deploy.errors import CloudflareError, ConflictError, ExitCode, TgkError
from tgk_deploy.planner.observed import MarkKind, ObservedState, RolloutMark
from tgk_deploy.planner.plan import (
    Plan,
    RefusalReason,
    candidate_of,
    find_position,
    find_stable,
    plan,
)
from tgk_deploy.spec.models import Response, ResponseKind
from tgk_deploy.triggers.evaluate import GateKind, GateVerdict, LiveVersions, Outcome


class AdvanceStatus(StrEnum):
    APPLIED = "applied"
    PLANNED = "planned"  # --dry-run
    REFUSED = "refused"
    TRIGGERED = "triggered"  # a trigger fired; the declared response ran
    INCONCLUSIVE = "inconclusive"
    DECLINED = "declined"  # the operator said no at the prompt


class AdvanceReport(BaseModel):
    run_id: str
    phase: int
    status: AdvanceStatus
    step: str | None = None
    plan: Plan | None = None
    verdicts: list[GateVerdict] = Field(default_factory=list)
    outcomes: list[ActionOutcome] = Field(default_factory=list)
    response: Response | None = None
    response_report: dict[str, object] | None = None
    message: str = ""

    @property
    def exit_code(self) -> int:
        return {
            AdvanceStatus.APPLIED: ExitCode.OK,
            AdvanceStatus.PLANNED: ExitCode.OK,
            AdvanceStatus.REFUSED: ExitCode.REFUSED,
            AdvanceStatus.TRIGGERED: ExitCode.FAILED,
            AdvanceStatus.INCONCLUSIVE: ExitCode.INCONCLUSIVE,
            AdvanceStatus.DECLINED: ExitCode.REFUSED,
        }[self.status]


def split_text(observed: ObservedState, environment: str = "production") -> str:
    """The live split as an operator reads it: version number, tag, share."""
    env = observed.environments.get(environment)
    live = env.live if env else None
    if env is None or live is None:
        return f"{environment}: nothing deployed"
    parts = []
    for share in live.versions:
        version = env.versions.get(share.version_id)
        name = (
            f"#{version.number} {version.tag or share.version_id[:8]}"
            if version
            else share.version_id[:8]
        )
        parts.append(f"{name} {share.percentage:g} %")
    return f"{env.script}: " + " / ".join(parts)


def live_versions(observed: ObservedState, phase: int) -> LiveVersions:
    production = observed.environments.get("production")
    if production is None:
        return LiveVersions()
    candidate = candidate_of(production, phase)
    stable = find_stable(production, candidate.id if candidate else None)
    if candidate is None and production.live and len(production.live.versions) == 1:
        return LiveVersions(candidate=production.live.versions[0].version_id, stable=stable)
    return LiveVersions(candidate=candidate.id if candidate else None, stable=stable)


def live_phases(ctx: Context, observed: ObservedState, phase: int) -> list[int]:
    """The phase being advanced and every earlier phase: their changes are what is live."""
    position = find_position(ctx.spec, observed)
    highest = max(phase, position.phase if position else 1)
    return [p.phase for p in ctx.spec.phases if p.phase <= highest]


def check_triggers(ctx: Context, observed: ObservedState, phase: int) -> list[GateVerdict]:
    """The rollback triggers of every live phase, in one concurrent batch (one round trip)."""
    from tgk_deploy.triggers.gate import run_gates

    if ctx.metrics is None:
        return []
    phases = live_phases(ctx, observed, phase)
    versions = live_versions(observed, phase)
    verdicts = run_gates(ctx.spec, phases, GateKind.TRIGGERS, ctx.metrics, versions, ctx.clock.now)
    for verdict in verdicts:
        _record_verdict(ctx, verdict, "triggers")
    return verdicts


def check_success(ctx: Context, observed: ObservedState, phase: int) -> GateVerdict | None:
    from tgk_deploy.triggers.gate import run_gate

    if ctx.metrics is None:
        return None
    verdict = run_gate(
        ctx.spec,
        phase,
        GateKind.SUCCESS,
        ctx.metrics,
        live_versions(observed, phase),
        ctx.clock.now,
    )
    _record_verdict(ctx, verdict, "success criteria")
    return verdict


def _record_verdict(ctx: Context, verdict: GateVerdict, what: str) -> None:
    """Every check's verdict into the journal, and one line for whoever watches."""
    if ctx.journal is not None:
        ctx.journal.verdicts(
            ctx.run_id,
            [
                (check.check, check.kind.value, check.outcome.value, check.model_dump(mode="json"))
                for check in verdict.checks
            ],
        )
    message = f"phase {verdict.phase} {what}: {verdict.outcome} ({verdict.why})"
    ctx.emit("verdict", message, verdict=verdict)


def fired_response(ctx: Context, verdicts: list[GateVerdict]) -> tuple[Response, str] | None:
    """The strongest declared response among the triggers that fired, and which fired."""
    strength = {
        ResponseKind.HALT: 0,
        ResponseKind.FEATURE_ROLLBACK: 1,
        ResponseKind.GRADUAL_ROLLBACK: 2,
        ResponseKind.IMMEDIATE_ROLLBACK: 3,
    }
    chosen: tuple[Response, str] | None = None
    for verdict in verdicts:
        phase = ctx.spec.phase(verdict.phase)
        for check in verdict.checks:
            if check.outcome is not Outcome.FAIL:
                continue
            trigger = next(t for t in phase.rollback_triggers if t.name == check.check)
            response = phase.response_for(trigger)
            if chosen is None or strength[response.action] > strength[chosen[0].action]:
                chosen = (response, f"phase {verdict.phase} {check.check}: {check.why}")
    return chosen


def perform_response(
    ctx: Context, response: Response, *, dry_run: bool = False, environment: str = "production"
) -> dict[str, object]:
    """Run a trigger's declared response; ``advance`` and ``tgk-deploy serve`` both come here."""
    from tgk_deploy.engine import rollback

    if response.action is ResponseKind.HALT:
        return {"halted": True}
    if response.action is ResponseKind.FEATURE_ROLLBACK:
        report = rollback.feature(
            ctx, response.feature or "", dry_run=dry_run, environment=environment
        )
    elif response.action is ResponseKind.GRADUAL_ROLLBACK:
        report = rollback.gradual(ctx, dry_run=dry_run, environment=environment)
    else:
        report = rollback.immediate(ctx, dry_run=dry_run, environment=environment)
    return report.model_dump(mode="json")


def advance(
    ctx: Context,
    phase: int,
    *,
    dry_run: bool = False,
    wait: bool = False,
    interval: timedelta = timedelta(minutes=5),
    confirm: Callable[[Plan], bool] | None = None,
    max_wait: timedelta | None = None,
) -> AdvanceReport:
    """Apply the next step of ``phase`` if everything allows it; report what happened and why."""
    spec = ctx.spec
    require_phase(spec, phase)
    started = ctx.clock.now()
    report = AdvanceReport(run_id=ctx.run_id, phase=phase, status=AdvanceStatus.REFUSED)
    if ctx.journal is not None and not dry_run:
        ctx.journal.start_run(ctx.run_id, "advance", phase=phase, operator=ctx.operator)
    try:
        while True:
            observed = ctx.observe()
            step_plan = ctx.plan(observed, phase)
            report.plan, report.step = step_plan, step_plan.step
            if step_plan.step is None:
                report.message = "; ".join(r.message for r in step_plan.refusals)
                return report
            verdicts = check_triggers(ctx, observed, phase)
            report.verdicts = verdicts
            fired = fired_response(ctx, verdicts)
            if fired is not None:
                response, why = fired
                report.status, report.response = AdvanceStatus.TRIGGERED, response
                report.message = f"trigger fired: {why}; response: {response.action}"
                ctx.emit("response", report.message)
                if not dry_run:
                    ctx.notify("trigger-fired", report.message, phase=phase, step=step_plan.step)
                if not dry_run:
                    report.response_report = perform_response(ctx, response)
                return report
            inconclusive = [v for v in verdicts if v.outcome is Outcome.INCONCLUSIVE]
            if inconclusive:
                report.status = AdvanceStatus.INCONCLUSIVE
                report.message = "triggers inconclusive: " + "; ".join(v.why for v in inconclusive)
                return report
            blocking = [r for r in step_plan.refusals]
            only_bake = blocking and all(r.reason is RefusalReason.BAKE for r in blocking)
            if blocking and wait and only_bake:
                until = max(r.wait_until for r in blocking if r.wait_until)
                if max_wait is not None and until - started > max_wait:
                    report.message = blocking[0].message
                    return report
                pause = min(interval, until - ctx.clock.now())
                ctx.emit("wait", blocking[0].message, until=until, split=split_text(observed))
                ctx.clock.sleep(max(pause.total_seconds(), 1.0))
                continue
            if blocking:
                report.message = "; ".join(r.message for r in blocking)
                approval = [r for r in blocking if r.reason is RefusalReason.APPROVAL_PENDING]
                if approval and not dry_run:
                    ctx.notify(
                        "approval-needed",
                        approval[0].message,
                        phase=phase,
                        step=step_plan.step,
                        severity="warning",
                    )
                return report
            if step_plan.require_success:
                verdict = check_success(ctx, observed, phase)
                if verdict is not None:
                    report.verdicts.append(verdict)
                    if verdict.outcome is not Outcome.PASS:
                        if wait and (max_wait is None or ctx.clock.now() - started < max_wait):
                            ctx.emit("wait", f"success criteria: {verdict.why}", verdicts=[verdict])
                            ctx.clock.sleep(interval.total_seconds())
                            continue
                        status = (
                            AdvanceStatus.INCONCLUSIVE
                            if verdict.outcome is Outcome.INCONCLUSIVE
                            else AdvanceStatus.REFUSED
                        )
                        report.status = status
                        report.message = (
                            f"success criteria of phase {phase} do not pass yet: {verdict.why}"
                        )
                        return report
            check_inputs(ctx, step_plan)  # a missing secret or id is bad input, said now
            if dry_run:
                report.status = AdvanceStatus.PLANNED
                return report
            if confirm is not None and not confirm(step_plan):
                report.status = AdvanceStatus.DECLINED
                report.message = "not confirmed: nothing was changed"
                return report
            ctx.emit(
                "step", f"phase {phase} step {step_plan.step}: {len(step_plan.actions)} action(s)"
            )
            step_mark = RolloutMark(phase=phase, kind=MarkKind.STEP, step=step_plan.step)
            applier = Applier(ctx, observed, step=step_mark, dead_runs=_known_runs(ctx))
            # the lock covers applying only: a watch (--wait) must never keep a rollback out
            with run_lock(ctx.lock_path, ctx.run_id, f"advance --phase {phase}"):
                try:
                    applier.claim(step_plan.environment or "production")
                    for action in step_plan.actions:
                        applier.apply(action)
                except RollbackSeen:
                    raise
                except TgkError as error:
                    raise _partial_step(phase, step_plan, applier, error) from error
                finally:
                    report.outcomes = applier.outcomes
            report.status = AdvanceStatus.APPLIED
            report.message = f"phase {phase} step {step_plan.step} applied"
            if step_plan.step == spec.phase(phase).steps[-1].id:
                ctx.notify(
                    "phase-complete", f"phase {phase} complete", phase=phase, severity="info"
                )
            return report
    finally:
        if ctx.journal is not None and not dry_run:
            ctx.journal.finish_run(
                ctx.run_id, report.status.value, step=report.step, message=report.message
            )


def check_inputs(ctx: Context, step_plan: Plan) -> None:
    """Every secret source and environment reference the step will read, read before any change.

    Found missing half-way (after a D1 export, say) they would leave a step
    part-done for a typo; found here they are bad input (exit 2), nothing changed.
    """
    from tgk_deploy.planner.actions import ExportD1, PutSecret, SmokeCheck
    from tgk_deploy.secret_values import read_secret

    for action in step_plan.actions:
        if isinstance(action, PutSecret):
            read_secret(action.name, action.source, ctx.project_dir)
        elif isinstance(action, ExportD1):
            ctx.api.resolve(ctx.spec.project.d1[action.database].database_id)
        elif isinstance(action, SmokeCheck):
            ctx.smoke_inputs(action.environment)


def _known_runs(ctx: Context) -> Callable[[str], bool]:
    """Runs this machine's journal has seen start: with the run lock ours, none is applying."""

    def known(run_id: str) -> bool:
        if ctx.journal is None or run_id == ctx.run_id:
            return False
        try:
            return ctx.journal.has_run(run_id)
        except Exception:  # the journal is history, never a precondition
            return False

    return known


def _partial_step(phase: int, step_plan: Plan, applier: Applier, error: TgkError) -> TgkError:
    """Say exactly what the step changed before it failed, and the commands that finish or undo it."""
    done = [o.description for o in applier.outcomes if o.status == "applied"]
    left = [a.describe() for a in step_plan.actions[len(done) + 1 :]]
    state = (
        f"step {step_plan.step} of phase {phase} stopped part-way. Done: "
        + ("; ".join(done) if done else "nothing")
        + f". Failed: {error.message}"
        + (". Not done: " + "; ".join(left) if left else "")
    )
    hint = (
        f"tgk-deploy advance --phase {phase} finishes the step (done actions are skipped); "
        "tgk-deploy rollback --immediate undoes it"
    )
    if isinstance(error, ConflictError):
        return ConflictError(state, hint=hint)
    if isinstance(error, CloudflareError):
        return CloudflareError(
            f"advance phase {phase} step {step_plan.step}",
            status=error.status,
            errors=error.errors,
            state_left=state,
            hint=hint,
        )
    return type(error)(state, hint=hint) if type(error).__init__ is TgkError.__init__ else error


def approve(ctx: Context, phase: int, step: str, *, dry_run: bool = False) -> dict[str, object]:
    """Record an approval on Cloudflare: a deployment of the same split, annotated."""
    from tgk_deploy.errors import ConfigError, RefusedError
    from tgk_deploy.planner.observed import MarkKind, RolloutMark

    require_phase(ctx.spec, phase)
    phase_spec = ctx.spec.phase(phase)
    if not any(s.id == step for s in phase_spec.steps):
        raise ConfigError(
            f"phase {phase} has no step {step!r}; steps: {', '.join(s.id for s in phase_spec.steps)}"
        )
    target = phase_spec.steps[phase_spec.step_index(step)]
    if target.approval is None:
        raise ConfigError(f"step {step} of phase {phase} does not wait for approval")
    checklist = [f"[x] {item}" for item in target.approval.checklist]  # confirmed by approving
    observed = ctx.observe()
    step_plan = plan(ctx.spec, observed, phase, "")
    if step_plan.step != step:
        raise RefusedError(
            f"step {step} is not the next step of phase {phase} (next: {step_plan.step or 'none'})",
            hint=f"tgk-deploy plan --phase {phase}",
        )
    if step_plan.approval:
        return {"approved": True, "already": True, "by": step_plan.approval}
    env = observed.environments[target.environment]
    live = env.live
    if live is None:
        raise RefusedError(f"{env.script} has no deployment to record the approval on")
    mark = RolloutMark(
        phase=phase, kind=MarkKind.APPROVAL, step=step, detail=ctx.operator, run_id=ctx.run_id
    )
    shares = {v.version_id: v.percentage for v in live.versions}
    if dry_run:
        return {"approved": False, "dry_run": True, "would_record": mark.render(), "on": env.script}
    deployment = ctx.api.deploy(
        env.script, shares, message=mark.render(), allow_force=ctx.allow_force
    )
    if ctx.journal is not None:
        ctx.journal.start_run(ctx.run_id, "approve", phase=phase, step=step)
        ctx.journal.action(
            ctx.run_id,
            "approval",
            f"approved by {ctx.operator}",
            "applied",
            target.environment,
            {"deployment": deployment.id, "checklist": checklist},
        )
        ctx.journal.finish_run(ctx.run_id, "succeeded")
    return {
        "approved": True,
        "by": ctx.operator,
        "deployment": deployment.id,
        "checklist": checklist,
    }


def _note(
    ctx: Context, note: str, command: str, reason: str = "", *, dry_run: bool = False
) -> dict[str, object]:
    """Record a halt or resume on the live production deployment (same split, annotated)."""
    import re

    from tgk_deploy.errors import RefusedError
    from tgk_deploy.planner.observed import MarkKind, RolloutMark

    observed = ctx.observe()
    env = observed.environments["production"]
    live = env.live
    if live is None:
        raise RefusedError(f"{env.script} has no deployment to record the {note} on")
    position = find_position(ctx.spec, observed)
    slug = re.sub(r"[^a-z0-9]+", "-", reason.lower()).strip("-")[:16].strip("-")
    mark = RolloutMark(
        phase=position.phase if position else 0,
        kind=MarkKind.ADVISORY,
        detail=f"{note}:{slug}" if slug else note,
        run_id=ctx.run_id,
    )
    shares = {v.version_id: v.percentage for v in live.versions}
    if dry_run:
        return {note: False, "dry_run": True, "would_record": mark.render(), "on": env.script}
    deployment = ctx.api.deploy(
        env.script, shares, message=mark.render(), allow_force=ctx.allow_force
    )
    if ctx.journal is not None:
        ctx.journal.start_run(ctx.run_id, command, phase=mark.phase)
        ctx.journal.action(
            ctx.run_id,
            "note",
            f"{note} by {ctx.operator}" + (f": {reason}" if reason else ""),
            "applied",
            "production",
            {"deployment": deployment.id, "reason": reason},
        )
        ctx.journal.finish_run(ctx.run_id, "succeeded", message=reason)
    return {note: True, "by": ctx.operator, "reason": reason, "deployment": deployment.id}


def halt(ctx: Context, reason: str, *, dry_run: bool = False) -> dict[str, object]:
    """Stop the rollout where it stands: every later ``advance`` refuses until ``resume``.

    For what no metric says, such as buttons that confuse users: nothing is rolled
    back; a person decides (``rollback --feature buttons``, or fix and resume).
    """
    from tgk_deploy.planner.plan import HALT_NOTE, halted

    existing = halted(ctx.observe())
    if existing is not None:
        return {"halt": True, "already": True, "deployment": existing[0].id}
    return _note(ctx, HALT_NOTE, "halt", reason, dry_run=dry_run)


def resume(ctx: Context, *, dry_run: bool = False) -> dict[str, object]:
    """Lift a halt: ``advance`` may go on (bakes, approvals and triggers still apply)."""
    from tgk_deploy.planner.plan import RESUME_NOTE, halted

    if halted(ctx.observe()) is None:
        return {"resume": True, "already": True}
    return _note(ctx, RESUME_NOTE, "resume", dry_run=dry_run)
