"""``rehearse``: the whole five-phase rollout against the local emulator, weeks in seconds.

The same engine as in production (``advance``, trigger responses, rollbacks,
approvals) runs against the emulator over HTTP, with a simulated clock and a
scenario's made-up metrics. Nothing leaves the machine and no credential is
needed: the secrets it puts are generated for the run and never printed.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, Field

from tgk_deploy.engine.advance import AdvanceStatus, advance, approve
from tgk_deploy.engine.clock import SimulatedClock
from tgk_deploy.engine.context import Context, Event, new_run_id
from tgk_deploy.errors import TgkError
from tgk_deploy.planner.plan import RefusalReason
from tgk_deploy.spec.models import PutSecretAction, Spec, env_ref_name

REHEARSAL_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TRIGGER_INTERVAL = timedelta(hours=4)
MAX_ITERATIONS = 400


class TimelineEntry(BaseModel):
    at: datetime
    day: float
    phase: int
    kind: str  # phase, step, smoke, approval, trigger, rollback, recovered, complete
    message: str


class RehearsalReport(BaseModel):
    scenario: str
    simulated: bool = True
    started: datetime
    finished: datetime
    completed: bool
    timeline: list[TimelineEntry] = Field(default_factory=list)
    api_calls: int = 0
    journal: str | None = None


def _secret_env_names(spec: Spec) -> list[str]:
    """The variables secrets come from: every put_secret's, and the smoke check's token."""
    names = {env_ref_name(spec.project.smoke.token)}
    for phase in spec.phases:
        for step in phase.steps:
            for action in step.actions:
                if isinstance(action, PutSecretAction) and action.put_secret.from_env:
                    names.add(action.put_secret.from_env)
    return sorted(names)


@contextmanager
def rehearsal_secrets(spec: Spec) -> Iterator[dict[str, str]]:
    """Fresh values for every secret the phases put, in the environment for this run only."""
    values = {
        name: f"rehearsal-{name.lower()}-{secrets.token_hex(12)}"
        for name in _secret_env_names(spec)
    }
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield values
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def rehearse(
    spec: Spec,
    project_dir: Path,
    scenario_path: Path,
    *,
    journal_path: Path | None = None,
    events: Callable[[Event], None] | None = None,
    on_timeline: Callable[[TimelineEntry], None] | None = None,
) -> RehearsalReport:
    from tgk_deploy.cloudflare.api import CloudflareAPI
    from tgk_deploy.emulator import DEFAULT_ACCOUNT_ID, DEFAULT_ZONE_ID
    from tgk_deploy.emulator import start as start_emulator
    from tgk_deploy.journal.store import Journal
    from tgk_deploy.triggers.scenario import ScenarioProvider, load_scenario

    scenario = load_scenario(scenario_path)
    clock = SimulatedClock(REHEARSAL_START)
    report = RehearsalReport(
        scenario=scenario.name, started=clock.now(), finished=clock.now(), completed=False
    )

    def note(phase: int, kind: str, message: str) -> None:
        now = clock.now()
        entry = TimelineEntry(
            at=now,
            day=(now - REHEARSAL_START).total_seconds() / 86400,
            phase=phase,
            kind=kind,
            message=message,
        )
        report.timeline.append(entry)
        if on_timeline:
            on_timeline(entry)

    with (
        tempfile.TemporaryDirectory(prefix="tgk-rehearsal-") as scratch,
        start_emulator(clock=clock.now) as emulator,
        rehearsal_secrets(spec) as values,
        Journal(journal_path or project_dir / ".tgk-deploy" / "rehearsal.sqlite") as journal,
    ):
        # the scripts hold the smoke check's token from before the rollout, as in production
        seeded = emulator.state.seed_demo(
            smoke_token=values[env_ref_name(spec.project.smoke.token)]
        )
        api = CloudflareAPI(
            token="rehearsal",
            account_id=DEFAULT_ACCOUNT_ID,
            zone_id=DEFAULT_ZONE_ID,
            base_url=emulator.url,
            timeout=120,
            sleep=clock.sleep,
            refs={"TGK_D1_DATABASE_ID": seeded["d1_database_id"]},
        )
        metrics = ScenarioProvider(scenario, spec, rollout_start=clock.now())
        ctx = Context(
            spec=spec,
            project_dir=project_dir,
            api=api,
            clock=clock,
            metrics=metrics,
            journal=journal,
            events=events or (lambda event: None),
            operator="rehearsal",
            backups=Path(scratch) / "backups",
            worker_urls={
                name: emulator.worker_url(env.script)
                for name, env in spec.project.environments.items()
            },
        )
        report.journal = str(journal.path)
        try:
            report.completed = _run_all_phases(ctx, clock, note)
        finally:
            api.close()
            report.api_calls = len(emulator.requests)
    report.finished = clock.now()
    return report


def _run_all_phases(
    ctx: Context, clock: SimulatedClock, note: Callable[[int, str, str], None]
) -> bool:
    for phase in ctx.spec.phases:
        note(phase.phase, "phase", f"phase {phase.phase} ({phase.name}) starts")
        if not _run_phase(ctx, clock, phase.phase, note):
            return False
        note(phase.phase, "complete", f"phase {phase.phase} ({phase.name}) complete")
    return True


def _run_phase(
    ctx: Context, clock: SimulatedClock, phase: int, note: Callable[[int, str, str], None]
) -> bool:
    recovering = False
    for _ in range(MAX_ITERATIONS):
        ctx.run_id = new_run_id()
        try:
            result = advance(ctx, phase, wait=True, interval=TRIGGER_INTERVAL)
        except TgkError as error:
            note(phase, "error", error.message)
            return False
        if result.status is AdvanceStatus.APPLIED:
            if recovering:
                note(phase, "recovered", "triggers pass again: the phase starts over")
                recovering = False
            for outcome in result.outcomes:
                if outcome.kind == "smoke":  # the candidate's self-test at 0 %, before traffic
                    r = outcome.result
                    note(
                        phase,
                        "smoke",
                        f"smoke check of {r.get('version')} on {outcome.environment} at 0 %: "
                        f"{r.get('why')}, before it got traffic",
                    )
            note(phase, "step", f"step {result.step} applied ({len(result.outcomes)} change(s))")
            continue
        if result.status is AdvanceStatus.TRIGGERED:
            note(phase, "trigger", result.message)
            response = result.response.action.value if result.response else "halt"
            note(phase, "rollback", f"response: {response}")
            recovering = True
            clock.advance(TRIGGER_INTERVAL)
            continue
        if result.status is AdvanceStatus.INCONCLUSIVE:
            clock.advance(TRIGGER_INTERVAL)
            continue
        reasons = {r.reason for r in (result.plan.refusals if result.plan else [])}
        if RefusalReason.PHASE_COMPLETE in reasons:
            return True
        if RefusalReason.APPROVAL_PENDING in reasons and result.step:
            ctx.run_id = new_run_id()
            approve(ctx, phase, result.step)
            note(phase, "approval", f"step {result.step} approved (rehearsal)")
            continue
        if recovering and not reasons - {RefusalReason.BAKE}:
            clock.advance(TRIGGER_INTERVAL)
            continue
        if not reasons and result.message:  # success criteria not passing yet
            clock.advance(TRIGGER_INTERVAL)
            continue
        note(phase, "refused", result.message)
        return False
    note(phase, "error", f"phase {phase} did not finish in {MAX_ITERATIONS} attempts")
    return False
