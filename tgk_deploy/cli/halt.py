"""``tgk-deploy halt`` and ``resume``: a person stops the rollout, and lets it go on.

For what no metric can see (the RFC's "interactive buttons cause user
confusion"): the halt is recorded on Cloudflare, so every later ``advance``,
on any machine or in CI, refuses until ``resume``. Nothing is rolled back.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tgk_deploy.cli.live import mark_said
from tgk_deploy.cli.options import (
    DryRunOption,
    OutputFormat,
    OutputOption,
    ProjectOption,
    TimeoutOption,
    YesOption,
)
from tgk_deploy.cli.output import Output, reports
from tgk_deploy.errors import ExitCode


def register(app: typer.Typer) -> None:
    app.command()(halt)
    app.command()(resume)


def _confirmed(question: str, *, yes: bool, dry_run: bool, out: Output) -> bool:
    """Asked only of a person at a terminal: a script or CI never waits on a prompt."""
    if yes or dry_run or out.json or not sys.stdin.isatty():
        return True
    return typer.confirm(question, default=False, err=True)


@reports
def halt(
    reason: Annotated[
        str, typer.Option("--reason", help="Why, e.g. 'users confused by the buttons'.")
    ],
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    project: ProjectOption = None,
    timeout: TimeoutOption = 60.0,
    output: OutputOption = OutputFormat.TEXT,
) -> None:
    """Halt the rollout: every later advance refuses until `tgk-deploy resume`."""
    from tgk_deploy.engine.advance import halt as run_halt
    from tgk_deploy.engine.context import open_context

    out = Output(output)
    if not _confirmed(
        "Halt the rollout (nothing is rolled back)?", yes=yes, dry_run=dry_run, out=out
    ):
        raise typer.Exit(ExitCode.REFUSED)
    with open_context(project, timeout=timeout, with_metrics=False) as ctx:
        result = run_halt(ctx, reason, dry_run=dry_run)
    out.emit(
        result,
        mark_said(
            result,
            "halted: every advance refuses until `tgk-deploy resume`; nothing was rolled back "
            "(tgk-deploy rollback --feature buttons switches the buttons off)",
            "already so: halted; nothing changed",
        ),
    )


@reports
def resume(
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    project: ProjectOption = None,
    timeout: TimeoutOption = 60.0,
    output: OutputOption = OutputFormat.TEXT,
) -> None:
    """Lift a halt: advance may go on (bakes, approvals and triggers still apply)."""
    from tgk_deploy.engine.advance import resume as run_resume
    from tgk_deploy.engine.context import open_context

    out = Output(output)
    if not _confirmed("Let the rollout go on?", yes=yes, dry_run=dry_run, out=out):
        raise typer.Exit(ExitCode.REFUSED)
    with open_context(project, timeout=timeout, with_metrics=False) as ctx:
        result = run_resume(ctx, dry_run=dry_run)
    out.emit(
        result,
        mark_said(result, "resumed: advance may go on", "already so: resumed; nothing changed"),
    )
