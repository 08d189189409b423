"""``tgk-deploy backtest``: a phase's triggers and success criteria replayed over a past window.

Range queries on Prometheus; prints when each check would have fired or
passed, how long after the first bad tick (the fire delay) and how long it
kept firing after the last. Exit 0 when every check could be judged, 3 when
one could not (a query failed or returned several series).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from tgk_deploy.cli.options import (
    CandidateOption,
    OutputFormat,
    OutputOption,
    PhaseOption,
    ProjectOption,
    PrometheusTimeoutOption,
    QueryEnvironmentOption,
    StableOption,
    bounded,
    moment,
)
from tgk_deploy.cli.output import Output, reports

if TYPE_CHECKING:
    from rich.console import Console

    from tgk_deploy.triggers.backtest import Backtest


def register(app: typer.Typer) -> None:
    app.command()(backtest)


def render_backtest(result: Backtest, console: Console) -> None:
    from tgk_deploy.spec.models import format_duration

    console.print(
        f"Backtest of phase {result.phase} ({result.environment}) from "
        f"{result.start.isoformat()} to {result.end.isoformat()} every "
        f"{format_duration(result.step)}"
        + (
            f"; incident {result.incident_start.isoformat()}..{result.incident_end.isoformat()}"
            if result.incident_start and result.incident_end
            else ""
        ),
        highlight=False,
    )
    for title, checks in (
        ("Rollback triggers", result.triggers),
        ("Success criteria", result.success_criteria),
    ):
        console.print(f"{title}:", highlight=False)
        for check in checks:
            console.print(f"  {check.summary()}", highlight=False, soft_wrap=True)
        if not checks:
            console.print("  none declared", highlight=False)


@reports
def backtest(
    phase: PhaseOption,
    start: Annotated[datetime, moment("--from", help="Window start (ISO 8601 or unix seconds).")],
    end: Annotated[datetime, moment("--to", help="Window end (ISO 8601 or unix seconds).")],
    step: Annotated[
        timedelta, bounded("duration", 1, 86400, "--step", help="Evaluate every (e.g. 30s, 1m).")
    ] = "1m",  # type: ignore[assignment]
    environment: QueryEnvironmentOption = "production",
    incident_from: Annotated[
        datetime | None,
        moment(
            "--incident-from",
            help="When the incident really began: fire delays count from here, not from "
            "the first bad tick.",
        ),
    ] = None,
    incident_to: Annotated[
        datetime | None,
        moment("--incident-to", help="When the incident really ended (with --incident-from)."),
    ] = None,
    candidate: CandidateOption = None,
    stable: StableOption = None,
    timeout: PrometheusTimeoutOption = 20,
    project: ProjectOption = None,
    output: OutputOption = OutputFormat.TEXT,
) -> None:
    """Replay a phase's checks over a past window: when would each have fired or passed?"""
    from tgk_deploy.errors import ConfigError, ExitCode
    from tgk_deploy.spec.load import load_spec
    from tgk_deploy.triggers.backtest import backtest as run_backtest
    from tgk_deploy.triggers.evaluate import LiveVersions
    from tgk_deploy.triggers.prometheus import PrometheusClient, RetryPolicy

    if (incident_from is None) != (incident_to is None):
        raise ConfigError("--incident-from and --incident-to go together")
    incident = (incident_from, incident_to) if incident_from and incident_to else None
    spec = load_spec(project)
    try:
        phase_spec = spec.phase(phase)
    except KeyError:
        raise ConfigError(
            f"there is no phase {phase}; phases: {', '.join(str(p.phase) for p in spec.phases)}"
        ) from None
    versions = LiveVersions(candidate=candidate, stable=stable, environment=environment)
    out = Output(output)
    retry = RetryPolicy(deadline=timedelta(seconds=timeout))
    # a backtest proves the queries themselves: never their recordings
    with PrometheusClient.from_spec(
        spec.project.prometheus, retry=retry, recording_rules=False
    ) as provider:
        result = run_backtest(
            phase_spec,
            provider,
            start=start,
            end=end,
            step=step,
            versions=versions,
            incident=incident,
        )
    out.emit(result, lambda console: render_backtest(result, console))
    if any(c.problem for c in (*result.triggers, *result.success_criteria)):
        raise typer.Exit(ExitCode.INCONCLUSIVE)
