"""``tgk-deploy advance`` and ``approve``: move a phase one step, or approve the step that waits."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from tgk_deploy.cli.options import (
    DryRunOption,
    OutputFormat,
    OutputOption,
    PhaseOption,
    ProjectOption,
    TimeoutOption,
    YesOption,
    bounded,
)
from tgk_deploy.cli.output import Output, reports

if TYPE_CHECKING:
    from tgk_deploy.engine.advance import AdvanceReport


def register(app: typer.Typer) -> None:
    app.command()(advance)
    app.command()(approve)


@reports
def advance(
    phase: PhaseOption,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait", help="Watch the bake (re-checking triggers) and advance when it ends."
        ),
    ] = False,
    interval: Annotated[
        timedelta,
        bounded(
            "duration", 1, 86400, "--interval", help="How often --wait re-checks the triggers."
        ),
    ] = "5m",  # type: ignore[assignment]
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    allow_force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Deploy even after Cloudflare's 10220 (secrets changed since a version).",
        ),
    ] = False,
    project: ProjectOption = None,
    timeout: TimeoutOption = 60.0,
    output: OutputOption = OutputFormat.TEXT,
) -> None:
    """Check the triggers, then apply the next step of the phase (refuses with the reason)."""
    from tgk_deploy.cli.live import EventPrinter, confirm_plan
    from tgk_deploy.engine.advance import advance as run_advance
    from tgk_deploy.engine.context import open_context
    from tgk_deploy.spec.models import parse_duration

    out = Output(output)
    printer = EventPrinter(
        out, title=f"tgk-deploy advance --phase {phase}" + (" --wait" if wait else "")
    )
    with open_context(project, timeout=timeout, events=printer, allow_force=allow_force) as ctx:
        confirm = None if (yes or dry_run or out.json) else confirm_plan(out)
        try:
            report = run_advance(
                ctx,
                phase,
                dry_run=dry_run,
                wait=wait,
                interval=parse_duration(interval),
                confirm=confirm,
            )
        finally:
            printer.close()
    out.emit(report, lambda console: draw_advance(console, report))
    raise typer.Exit(report.exit_code)


def draw_advance(console, report: AdvanceReport) -> None:
    from tgk_deploy.cli.plan import draw_plan

    if report.plan is not None and report.status.value in ("planned", "refused", "declined"):
        draw_plan(console, report.plan)
    for verdict in report.verdicts:
        console.print(
            f"{verdict.outcome:<12} phase {verdict.phase} {verdict.kind}: {verdict.why}",
            markup=False,
        )
    for outcome in report.outcomes:
        console.print(f"  {outcome.status:<8} {outcome.description}", markup=False)
    colour = {"applied": "green", "planned": "cyan", "triggered": "red"}.get(
        report.status.value, "yellow"
    )
    console.print(
        f"[{colour}]{report.status.value}[/]: {report.message}"
        if report.message
        else f"[{colour}]{report.status.value}[/]"
    )


def _checklist(spec, phase: int, step: str) -> list[str]:
    """The step's manual checklist, when the phase and step exist (approve says so otherwise)."""
    try:
        phase_spec = spec.phase(phase)
        target = phase_spec.steps[phase_spec.step_index(step)]
    except (KeyError, StopIteration):
        return []
    return list(target.approval.checklist) if target.approval else []


@reports
def approve(
    phase: PhaseOption,
    step: Annotated[str, typer.Option("--step", help="The step that waits for approval.")],
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    project: ProjectOption = None,
    timeout: TimeoutOption = 60.0,
    output: OutputOption = OutputFormat.TEXT,
) -> None:
    """Approve a step that waits for a person; recorded on Cloudflare, so CI sees it too."""
    from tgk_deploy.cli.live import mark_said
    from tgk_deploy.engine.advance import approve as run_approve
    from tgk_deploy.engine.context import open_context
    from tgk_deploy.spec.load import find_project_file, load_spec

    out = Output(output)
    checklist = _checklist(load_spec(project or find_project_file()), phase, step)
    if checklist and not out.json:
        typer.echo("By approving you confirm, checked by hand:", err=True)
        for item in checklist:
            typer.echo(f"  [ ] {item}", err=True)
    if not (yes or dry_run or out.json) and not typer.confirm(
        f"Approve phase {phase} step {step}?"
    ):
        raise typer.Exit(4)
    with open_context(project, timeout=timeout, with_metrics=False) as ctx:
        result = run_approve(ctx, phase, step, dry_run=dry_run)
    approved = f"approved phase {phase} step {step} by {result.get('by')}"
    out.emit(result, mark_said(result, approved, approved))
