"""``tgk-deploy adopt`` and ``tgk-deploy restore``: the two ways on after someone moved
traffic outside tgk-deploy (``wrangler rollback``, ``wrangler versions deploy``, the
dashboard), which ``advance`` refuses to build on until one of them is run."""

from __future__ import annotations

from pathlib import Path

import typer

from tgk_deploy.cli.options import (
    DryRunOption,
    OutputFormat,
    OutputOption,
    ProjectOption,
    ScriptOption,
    TimeoutOption,
    YesOption,
)
from tgk_deploy.cli.output import Output, reports


def register(app: typer.Typer) -> None:
    app.command()(adopt)
    app.command()(restore)


@reports
def adopt(
    environment: ScriptOption = "production",
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    project: ProjectOption = None,
    timeout: TimeoutOption = 60.0,
    output: OutputOption = OutputFormat.TEXT,
) -> None:
    """Keep a move made outside tgk-deploy: a rollback counts as the phase's rollback, any
    other split becomes where the rollout goes on from. No traffic moves."""
    _run("adopt", environment, dry_run, yes, project, timeout, output)


@reports
def restore(
    environment: ScriptOption = "production",
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    project: ProjectOption = None,
    timeout: TimeoutOption = 60.0,
    output: OutputOption = OutputFormat.TEXT,
) -> None:
    """Undo a move made outside tgk-deploy: put back the split tgk-deploy last left."""
    _run("restore", environment, dry_run, yes, project, timeout, output)


def _run(
    command: str,
    environment: str,
    dry_run: bool,
    yes: bool,
    project: Path | None,
    timeout: float,
    output: OutputFormat,
) -> None:
    from tgk_deploy.cli.live import EventPrinter
    from tgk_deploy.engine import rollback as engine
    from tgk_deploy.engine.context import open_context

    out = Output(output)
    if not (yes or dry_run or out.json) and not typer.confirm(
        f"{command} on {environment}?", err=True
    ):
        raise typer.Exit(4)
    with open_context(project, timeout=timeout, events=EventPrinter(out)) as ctx:
        run = engine.adopt if command == "adopt" else engine.restore
        report = run(ctx, dry_run=dry_run, environment=environment)

    def draw(console) -> None:
        for plan in report.plans:
            for action in plan.actions:
                console.print(f"  {action.describe()}", markup=False)
        for outcome in report.outcomes:
            console.print(f"  {outcome.status:<8} {outcome.description}", markup=False)
        console.print(("[cyan]dry run[/]: " if dry_run else "[green]done[/]: ") + report.message)

    out.emit(report, draw)
