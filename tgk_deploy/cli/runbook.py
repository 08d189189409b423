"""``tgk-deploy runbook``: write runbooks/ from the phase files, or ``--check`` that it is current.

Exit codes: 0 written / up to date, 1 ``--check`` found pages that differ
(named on stderr), 2 bad input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tgk_deploy.cli.options import OutputFormat, OutputOption, ProjectOption
from tgk_deploy.cli.output import Output, reports


def register(app: typer.Typer) -> None:
    app.command()(runbook)


@reports
def runbook(
    check: Annotated[
        bool,
        typer.Option("--check", help="Change nothing; exit 1 naming pages that differ."),
    ] = False,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir",
            help="Where the pages go (default: runbooks/ next to the project file).",
            show_default=False,
        ),
    ] = None,
    project: ProjectOption = None,
    output: OutputOption = OutputFormat.TEXT,
) -> None:
    """Generate the on-call runbooks from tgk-deploy.yaml and phases/*.yaml."""
    from tgk_deploy.errors import ExitCode
    from tgk_deploy.render.runbooks import compare_runbooks, render_runbooks, write_runbooks
    from tgk_deploy.spec.load import find_project_file, load_spec

    project_file = project or find_project_file()
    spec = load_spec(project_file)
    directory = output_dir or project_file.parent / "runbooks"
    pages = render_runbooks(spec)
    out = Output(output)
    if check:
        drift = compare_runbooks(pages, directory)

        def draw(console) -> None:
            if not drift.differs:
                console.print(f"ok: {len(pages)} runbook page(s) in {directory} are up to date")
                return
            for name in drift.missing:
                out.note(f"missing: {directory / name}")
            for name in drift.changed:
                out.note(f"differs: {directory / name}")
            for name in drift.stale:
                out.note(f"stale: {directory / name} (no phase makes it any more)")
            out.note("run `tgk-deploy runbook` and commit runbooks/")

        out.emit(drift.model_dump() | {"up_to_date": not drift.differs}, draw)
        if drift.differs:
            raise typer.Exit(ExitCode.FAILED)
        return
    drift = write_runbooks(pages, directory)
    out.emit(
        drift.model_dump() | {"up_to_date": True},
        lambda console: console.print(
            f"wrote {len(drift.written)}, removed {len(drift.removed)}, "
            f"{len(pages) - len(drift.written)} unchanged runbook page(s) in {directory}"
        ),
    )
