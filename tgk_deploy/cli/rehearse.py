"""``tgk-deploy rehearse``: the whole rollout on the built-in emulator, with a simulated clock."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from tgk_deploy.cli.options import OutputFormat, OutputOption, ProjectOption
from tgk_deploy.cli.output import Output, reports

KIND_STYLE = {
    "trigger": "bold red",
    "rollback": "red",
    "recovered": "green",
    "complete": "bold green",
    "approval": "cyan",
    "smoke": "green",
}


def register(app: typer.Typer) -> None:
    app.command()(rehearse)


@reports
def rehearse(
    scenario: Annotated[
        str,
        typer.Option(
            "--scenario",
            "-s",
            help="A scenario in scenarios/ (clean, ai-latency-incident) or a file.",
        ),
    ] = "clean",
    journal: Annotated[
        Path | None, typer.Option("--journal", help="Where to keep the rehearsal's journal.")
    ] = None,
    project: ProjectOption = None,
    output: OutputOption = OutputFormat.TEXT,
) -> None:
    """Run all five phases against the local Cloudflare emulator: no credentials, no network."""
    from tgk_deploy.engine.context import load_project_spec
    from tgk_deploy.engine.rehearse import rehearse as run_rehearsal
    from tgk_deploy.errors import ConfigError

    spec, project_dir = load_project_spec(project)
    scenario_path = Path(scenario)
    if not scenario_path.is_file():
        scenario_path = project_dir / "scenarios" / f"{scenario}.yaml"
    if not scenario_path.is_file():
        known = sorted(p.stem for p in (project_dir / "scenarios").glob("*.yaml"))
        raise ConfigError(f"no scenario {scenario!r}; built in: {', '.join(known)}")
    out = Output(output)

    def show(entry) -> None:
        if out.json:
            return
        style = KIND_STYLE.get(entry.kind, "")
        text = f"day {entry.day:5.1f}  phase {entry.phase}  {entry.message}"
        out.console.print(
            f"[{style}]{text}[/]" if style else text, markup=bool(style), highlight=False
        )

    if not out.json:
        out.console.print(
            f"rehearsal of scenario [bold]{scenario_path.stem}[/] on the local emulator (simulated time)"
        )
    started = time.perf_counter()
    report = run_rehearsal(spec, project_dir, scenario_path, journal_path=journal, on_timeline=show)
    seconds = time.perf_counter() - started
    days = (report.finished - report.started).total_seconds() / 86400
    out.emit(
        report,
        lambda console: console.print(
            f"{'[green]complete[/]' if report.completed else '[red]stopped[/]'}: {days:.1f} simulated days, "
            f"{report.api_calls} API calls to the emulator in {seconds:.1f} s; journal {report.journal}"
        ),
    )
    if not report.completed:
        raise typer.Exit(1)
