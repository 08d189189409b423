"""``tgk-deploy gate``: judge a phase's success criteria or rollback triggers on Prometheus.

Exit codes for CI: 0 pass, 1 fail (a criterion does not hold / a trigger
fired), 3 inconclusive (no data, too small a sample, Prometheus unreachable).
``--wait`` re-evaluates every ``--interval`` until pass or the deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
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
    from rich.console import Console, RenderableType

    from tgk_deploy.triggers.evaluate import GateVerdict


def _now() -> datetime:
    return datetime.now(UTC)


_sleep = time.sleep
"""The wall clock and sleep of ``--wait``; tests replace both."""


class Criteria(StrEnum):
    SUCCESS = "success"
    TRIGGERS = "triggers"


def register(app: typer.Typer) -> None:
    app.command()(gate)


_STYLE = {"pass": "green", "fail": "red", "inconclusive": "yellow"}


def render_verdict(verdict: GateVerdict, footer: str | None = None) -> RenderableType:
    """A table of every check's value against its threshold (also the --wait live view)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    label = "SIMULATED " if verdict.simulated else ""
    table = Table(
        title=(
            f"{label}phase {verdict.phase} {verdict.kind.value} at "
            f"{verdict.evaluated_at.isoformat()}"
        ),
        title_justify="left",
        expand=False,
    )
    for column in ("check", "value", "condition", "window", "sample", "verdict"):
        table.add_column(column, no_wrap=column == "check")
    for check in verdict.checks:
        value = "—" if check.value is None else f"{check.value:.6g}"
        threshold = (
            check.effective_threshold if check.effective_threshold is not None else check.threshold
        )
        condition = f"{check.op.value} {threshold:.6g}"
        if check.relative_query:
            condition += f" ({check.threshold:g}x baseline)"
        sample = "—" if check.sample_size is None else f"{check.sample_size:.6g}"
        if check.min_sample is not None:
            sample += f" (min {check.min_sample:g})"
        table.add_row(
            check.check,
            value,
            condition,
            f"for {check.window}" if check.window else "now",
            sample,
            Text(check.outcome.value, style=_STYLE[check.outcome.value]),
        )
    reasons = Text()
    for check in verdict.checks:
        reasons.append(f"{check.check}: ", style="bold")
        reasons.append(check.why + "\n")
        for warning in check.warnings:
            reasons.append(f"  Prometheus warning: {warning}\n", style="yellow")
    headline = Text(
        f"{label}{verdict.outcome.value.upper()}: {verdict.why}",
        style=_STYLE[verdict.outcome.value],
    )
    parts: list[RenderableType] = [table, reasons, headline]
    recorded = sum(check.recorded for check in verdict.checks)
    if recorded:
        from tgk_deploy.triggers.recorded import FRESHNESS

        parts.append(
            Text(
                f"{recorded} of {len(verdict.checks)} checks read from tgk-deploy's recording "
                f"rules: their numbers at the rules' last evaluation, at most "
                f"{FRESHNESS.total_seconds():g} s old",
                style="dim",
            )
        )
    if footer:
        parts.append(Text(footer, style="dim"))
    return Group(*parts)


@reports
def gate(
    phase: PhaseOption,
    criteria: Annotated[
        Criteria,
        typer.Option(
            "--criteria", help="success: the success criteria; triggers: rollback triggers."
        ),
    ] = Criteria.SUCCESS,
    wait: Annotated[
        timedelta,
        bounded(
            "duration",
            0,
            7 * 86400,
            "--wait",
            help="Keep re-evaluating until pass or this long (e.g. 30m).",
        ),
    ] = "0",  # type: ignore[assignment]
    interval: Annotated[
        timedelta,
        bounded("duration", 1, 86400, "--interval", help="Time between evaluations with --wait."),
    ] = "30s",  # type: ignore[assignment]
    at: Annotated[
        datetime | None, moment("--at", help="Judge at this past time (ISO 8601 or unix seconds).")
    ] = None,
    candidate: CandidateOption = None,
    stable: StableOption = None,
    environment: QueryEnvironmentOption = "production",
    timeout: PrometheusTimeoutOption = 20,
    project: ProjectOption = None,
    output: OutputOption = OutputFormat.TEXT,
) -> None:
    """Exit 0 when the phase's checks pass, 1 when they fail, 3 when inconclusive."""
    from tgk_deploy.errors import ConfigError
    from tgk_deploy.spec.load import load_spec
    from tgk_deploy.triggers.evaluate import GateKind, LiveVersions
    from tgk_deploy.triggers.gate import checks_for, evaluate_checks
    from tgk_deploy.triggers.prometheus import PrometheusClient, RetryPolicy

    wait_for, every = wait, interval
    fixed = at
    if fixed is not None and wait_for:
        raise ConfigError("--at judges one past instant; it does not go with --wait")

    spec = load_spec(project)
    try:
        phase_spec = spec.phase(phase)
    except KeyError:
        raise ConfigError(
            f"there is no phase {phase}; phases: {', '.join(str(p.phase) for p in spec.phases)}"
        ) from None
    kind = GateKind(criteria.value)
    versions = LiveVersions(candidate=candidate, stable=stable, environment=environment)
    out = Output(output)

    def clock() -> datetime:
        return fixed or _now()

    retry = RetryPolicy(deadline=timedelta(seconds=timeout))
    with PrometheusClient.from_spec(spec.project.prometheus, retry=retry) as provider:

        def evaluate(moment: datetime) -> GateVerdict:
            return evaluate_checks(
                phase, kind, checks_for(phase_spec, kind), provider, versions, moment
            )

        if not wait_for:
            verdict = evaluate(clock())
        else:
            verdict = _watch(out, evaluate, clock, wait_for, every, _sleep)

    out.emit(verdict, lambda console: console.print(render_verdict(verdict)))
    raise typer.Exit(verdict.outcome.exit_code)


def _watch(
    out: Output,
    evaluate: Callable[[datetime], GateVerdict],
    clock: Callable[[], datetime],
    wait_for: timedelta,
    every: timedelta,
    sleep: Callable[[float], None],
) -> GateVerdict:
    """Re-evaluate with a live table on stderr (stdout stays for the final result)."""
    from rich.live import Live

    from tgk_deploy.spec.models import format_duration
    from tgk_deploy.triggers.gate import watch_gate

    console: Console = out.errors
    with Live(console=console, refresh_per_second=4, transient=True) as live:

        def show(verdict: GateVerdict, deadline: datetime) -> None:
            left = max(deadline - clock(), timedelta(0))
            footer = (
                f"waiting for pass: {format_duration(timedelta(seconds=int(left.total_seconds())))}"
                f" left, re-checking every {format_duration(every)}"
            )
            live.update(render_verdict(verdict, footer))

        return watch_gate(
            evaluate, clock=clock, sleep=sleep, wait=wait_for, interval=every, on_verdict=show
        )
