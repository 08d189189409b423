"""``tgk-deploy history``: what tgk-deploy did here, from the local journal."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tgk_deploy.cli.options import OutputFormat, OutputOption, ProjectOption, bounded
from tgk_deploy.cli.output import Output, reports

if TYPE_CHECKING:
    from rich.console import Console

    from tgk_deploy.journal.store import RunRecord


def register(app: typer.Typer) -> None:
    app.command()(history)


def _journal_file(project_file: Path | None) -> Path:
    from tgk_deploy.journal.store import journal_path
    from tgk_deploy.spec.load import find_project_file, load_project
    from tgk_deploy.spec.models import Project

    project_file = project_file or find_project_file()
    if project_file is None:
        return journal_path(Path.cwd(), Project.model_fields["journal"].default)
    return journal_path(project_file.parent, load_project(project_file).journal)


@reports
def history(
    phase: Annotated[
        int | None, bounded("int", 1, 99, "--phase", "-p", help="Only this phase.")
    ] = None,
    limit: Annotated[int, bounded("int", 1, 10000, "--limit", "-n", help="How many runs.")] = 20,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Each action and verdict too.")
    ] = False,
    project: ProjectOption = None,
    output: OutputOption = OutputFormat.TEXT,
) -> None:
    """Runs, actions and trigger verdicts recorded on this machine, newest first."""
    from tgk_deploy.journal.store import Journal

    path = _journal_file(project)
    if not path.exists():
        runs: list[RunRecord] = []
    else:
        with Journal(path) as journal:
            runs = journal.runs(phase=phase, limit=limit)
    Output(output).emit(
        {"journal": str(path), "runs": [r.model_dump(mode="json") for r in runs]},
        lambda console: _draw(console, runs, verbose, path),
    )


def _draw(console: Console, runs: list[RunRecord], verbose: bool, path: Path) -> None:
    if not runs:
        console.print(f"no runs recorded in {path}")
        return
    for run in runs:
        where = (
            f"phase {run.phase}" + (f" step {run.step}" if run.step else "") if run.phase else ""
        )
        colour = {"succeeded": "green", "failed": "red", "refused": "yellow"}.get(
            run.status, "white"
        )
        console.print(
            f"{run.started_at}  {run.id}  {run.command:<10} {where:<28} [{colour}]{run.status}[/]"
            f"  {len(run.actions)} action(s), {len(run.verdicts)} verdict(s)"
        )
        if verbose:
            for action in run.actions:
                console.print(f"    {action['status']:<8} {action['description']}", markup=False)
            for verdict in run.verdicts:
                why = (
                    verdict["detail"].get("why", "") if isinstance(verdict["detail"], dict) else ""
                )
                console.print(f"    {verdict['verdict']:<8} {verdict['name']}: {why}", markup=False)
