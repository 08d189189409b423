"""``tgk-deploy destroy``: the infrastructure rollback. Exports D1 first; asks for the name typed."""

from __future__ import annotations

from typing import Annotated

import typer

from tgk_deploy.cli.options import (
    DryRunOption,
    OutputFormat,
    OutputOption,
    ProjectOption,
    TimeoutOption,
)
from tgk_deploy.cli.output import Output, reports


def register(app: typer.Typer) -> None:
    app.command()(destroy)


@reports
def destroy(
    confirm: Annotated[
        str | None,
        typer.Option(
            "--confirm", help="The production script name, for pipelines that cannot type it."
        ),
    ] = None,
    dry_run: DryRunOption = False,
    project: ProjectOption = None,
    timeout: TimeoutOption = 120.0,
    output: OutputOption = OutputFormat.TEXT,
) -> None:
    """Delete the Worker scripts, D1 databases and R2 buckets, after exporting D1 to SQL files."""
    from tgk_deploy.cli.live import EventPrinter
    from tgk_deploy.engine import rollback as engine
    from tgk_deploy.engine.context import open_context

    out = Output(output)
    with open_context(
        project, timeout=timeout, with_metrics=False, events=EventPrinter(out)
    ) as ctx:
        plan = engine.destroy_plan(ctx)
        production = ctx.spec.project.environments["production"].script
        out.errors.print("tgk-deploy destroy will:", highlight=False)
        for line in plan.lines():
            out.errors.print(f"  - {line}", markup=False, highlight=False)
        if dry_run:
            out.emit(plan, lambda console: console.print("dry run: nothing was changed"))
            return
        typed = (
            confirm
            if confirm is not None
            else typer.prompt(f"Type {production} to confirm", err=True, default="")
        )
        report = engine.destroy(ctx, plan, confirm=typed)
    out.emit(report, lambda console: console.print(f"[red]destroyed[/]: {report.message}"))
