"""``tgk-deploy rollback``: immediate, gradual, one feature, or to a named version."""

from __future__ import annotations

from typing import Annotated

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
    app.command()(rollback)


@reports
def rollback(
    immediate: Annotated[
        bool,
        typer.Option(
            "--immediate", help="All traffic to stable, legacy routing on, features off. Now."
        ),
    ] = False,
    gradual: Annotated[
        bool, typer.Option("--gradual", help="75 -> 50 -> 25 -> 0 % with trigger checks between.")
    ] = False,
    feature: Annotated[
        str | None,
        typer.Option("--feature", help="Switch one feature off, without moving traffic."),
    ] = None,
    to_version: Annotated[
        str | None, typer.Option("--to-version", help="All traffic to this version id.")
    ] = None,
    environment: ScriptOption = "production",
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    project: ProjectOption = None,
    timeout: TimeoutOption = 60.0,
    output: OutputOption = OutputFormat.TEXT,
) -> None:
    """Roll back now: never waits on metrics or needs the journal; re-running finishes a partial one."""
    from tgk_deploy.cli.live import EventPrinter
    from tgk_deploy.engine.context import open_context
    from tgk_deploy.errors import ConfigError

    chosen = [
        name
        for name, on in (
            ("--immediate", immediate),
            ("--gradual", gradual),
            ("--feature", feature),
            ("--to-version", to_version),
        )
        if on
    ]
    if len(chosen) != 1:
        raise ConfigError(
            "choose exactly one of --immediate, --gradual, --feature NAME, --to-version ID"
        )
    out = Output(output)
    # an immediate rollback is the 3 a.m. command: it does not ask
    if not (yes or dry_run or immediate or out.json) and not typer.confirm(
        f"Roll back ({chosen[0]})?", err=True
    ):
        raise typer.Exit(4)
    with open_context(
        project,
        timeout=timeout,
        with_metrics="optional" if gradual else False,
        events=EventPrinter(out),
        observe_first=[environment] if immediate else None,
    ) as ctx:
        # imported while the immediate rollback's first reads are in flight
        from tgk_deploy.engine import rollback as engine

        if immediate:
            report = engine.immediate(ctx, dry_run=dry_run, environment=environment)
        elif gradual:
            report = engine.gradual(ctx, dry_run=dry_run, environment=environment)
        elif feature:
            report = engine.feature(ctx, feature, dry_run=dry_run, environment=environment)
        else:
            report = engine.to_version(
                ctx, to_version or "", dry_run=dry_run, environment=environment
            )

    def draw(console) -> None:
        for plan in report.plans:
            for index, wave in enumerate(plan.waves, 1):
                for action in wave:
                    console.print(f"  wave {index}: {action.describe()}", markup=False)
        for outcome in report.outcomes:
            console.print(f"  {outcome.status:<8} {outcome.description}", markup=False)
        console.print(("[cyan]dry run[/]: " if dry_run else "[green]done[/]: ") + report.message)

    out.emit(report, draw)
