"""``tgk-deploy halt`` and ``resume``: a person stops the rollout, and lets it go on.

For what no metric can see (the RFC's "interactive buttons cause user
confusion"): the halt is recorded on Cloudflare, so every later ``advance``,
on any machine or in CI, refuses until ``resume``. Nothing is rolled back.
"""

from __future__ import annotations

from typing import Annotated

import typer

from tgk_deploy.cli.options import OutputFormat, OutputOption, ProjectOption, TimeoutOption
from tgk_deploy.cli.output import Output, reports


def register(app: typer.Typer) -> None:
    app.command()(halt)
    app.command()(resume)


@reports
def halt(
    reason: Annotated[
        str, typer.Option("--reason", help="Why, e.g. 'users confused by the buttons'.")
    ],
    project: ProjectOption = None,
    timeout: TimeoutOption = 60.0,
    output: OutputOption = OutputFormat.TEXT,
) -> None:
    """Halt the rollout: every later advance refuses until `tgk-deploy resume`."""
    from tgk_deploy.engine.advance import halt as run_halt
    from tgk_deploy.engine.context import open_context

    out = Output(output)
    with open_context(project, timeout=timeout, with_metrics=False) as ctx:
        result = run_halt(ctx, reason)
    out.emit(
        result,
        "halted: every advance refuses until `tgk-deploy resume`; nothing was rolled back "
        "(tgk-deploy rollback --feature buttons switches the buttons off)",
    )


@reports
def resume(
    project: ProjectOption = None,
    timeout: TimeoutOption = 60.0,
    output: OutputOption = OutputFormat.TEXT,
) -> None:
    """Lift a halt: advance may go on (bakes, approvals and triggers still apply)."""
    from tgk_deploy.engine.advance import resume as run_resume
    from tgk_deploy.engine.context import open_context

    out = Output(output)
    with open_context(project, timeout=timeout, with_metrics=False) as ctx:
        result = run_resume(ctx)
    out.emit(result, "resumed: advance may go on")
