"""``tgk-deploy smoke``: the Worker's self-test on a version of the live deployment.

Exit 0 every route right, 1 a route is wrong, 3 inconclusive (unreachable,
token refused, another version answered), 4 the version is not in the deployment.
"""

from __future__ import annotations

from typing import Annotated

import typer

from tgk_deploy.cli.options import OutputFormat, OutputOption, ProjectOption, TimeoutOption
from tgk_deploy.cli.output import Output, reports

EnvironmentOption = Annotated[str, typer.Option("--env", help="Which script's Worker.")]
VersionOption = Annotated[
    str | None,
    typer.Option(
        "--version",
        help="A version in the current deployment (a candidate at 0 % is); "
        "default: the newest one there.",
    ),
]


def register(app: typer.Typer) -> None:
    app.command()(smoke)


@reports
def smoke(
    environment: EnvironmentOption = "production",
    version: VersionOption = None,
    project: ProjectOption = None,
    timeout: TimeoutOption = 60.0,
    output: OutputOption = OutputFormat.TEXT,
) -> None:
    """Run the Worker's self-test on one version (Cloudflare-Workers-Version-Overrides):
    every route's decision, nothing delivered. Exit 0 pass, 1 a route wrong, 3 inconclusive,
    4 the version is not in the current deployment."""
    from tgk_deploy.engine.context import open_context
    from tgk_deploy.engine.smoke import smoke as run_smoke

    out = Output(output)
    with open_context(project, timeout=timeout, with_metrics=False, with_journal=False) as ctx:
        report = run_smoke(ctx, environment, version)

    def draw(console) -> None:
        colour = {"pass": "green", "fail": "red"}.get(report.outcome.value, "yellow")
        console.print(
            f"[{colour}]{report.outcome.value}[/]: {report.script} version {report.version_id}",
            highlight=False,
        )
        console.print(f"  {report.why}", markup=False)
        for route in report.routes:
            mark = "ok  " if route.ok else "FAIL"
            where = f"{route.scope}@{route.domain}" if route.scope else "routing table"
            detail = route.decision or ""
            if route.reason:
                detail += f" ({route.reason})"
            console.print(f"  {mark} {where}: {detail}", markup=False)

    out.emit(report, draw)
    if report.exit_code:
        raise typer.Exit(report.exit_code)
