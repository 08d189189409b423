"""``tgk-deploy validate``: check the project and phase files; no network, exit 2 on problems."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tgk_deploy.cli.options import OutputFormat, OutputOption
from tgk_deploy.cli.output import Output, reports


def register(app: typer.Typer) -> None:
    app.command()(validate)


@reports
def validate(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Phase files or folders, and/or the project file. Default: all."),
    ] = None,
    output: OutputOption = OutputFormat.TEXT,
) -> None:
    """Check phase and project files: every problem as file:line:column field: message."""
    from tgk_deploy.spec.load import validate_paths

    project, phases = validate_paths(paths or [])
    steps = sum(len(p.steps) for p in phases)
    summary = {
        "valid": True,
        "project": project is not None,
        "metric_names_checked": project is not None,
        "phases": [{"phase": p.phase, "name": p.name, "steps": len(p.steps)} for p in phases],
    }
    Output(output).emit(
        summary,
        f"ok: {'project file and ' if project else ''}{len(phases)} phase file(s) valid "
        f"({steps} steps)"
        + ("" if project else "; metric names not checked: no project file found"),
    )
