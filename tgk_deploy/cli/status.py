"""``tgk-deploy status``: the live split, where the rollout stands, secrets, flags, email rules.

Four reads at most for one environment, in two concurrent rounds: the
deployments and the email rules at once, then the live versions at once.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from tgk_deploy.cli.options import OutputFormat, OutputOption, ProjectOption, TimeoutOption, bounded
from tgk_deploy.cli.output import Output, reports

if TYPE_CHECKING:
    from rich.console import Console

    from tgk_deploy.planner.observed import ObservedState
    from tgk_deploy.planner.status import StatusReport


class Environment(StrEnum):
    PRODUCTION = "production"
    STAGING = "staging"
    ALL = "all"


def register(app: typer.Typer) -> None:
    app.command()(status)


@reports
def status(
    environment: Annotated[
        Environment, typer.Option("--env", "-e", help="Which script, or all of them.")
    ] = Environment.PRODUCTION,
    watch: Annotated[
        float | None,
        bounded(
            "float", 1, 3600, "--watch", "-w", help="Redraw every this many seconds until Ctrl-C."
        ),
    ] = None,
    project: ProjectOption = None,
    timeout: TimeoutOption = 30.0,
    output: OutputOption = OutputFormat.TEXT,
) -> None:
    """What is live now on Cloudflare: split, phase and step, secret names, flags, email rules."""
    from concurrent.futures import ThreadPoolExecutor
    from datetime import UTC, datetime

    from tgk_deploy.cloudflare.api import CloudflareAPI
    from tgk_deploy.cloudflare.observe import observe
    from tgk_deploy.engine.context import load_project_spec
    from tgk_deploy.errors import ConfigError

    spec, _ = load_project_spec(project)
    names = list(spec.project.environments)
    if environment is not Environment.ALL:
        if environment.value not in names:
            raise ConfigError(f"no environment {environment.value!r} in the project: {names}")
        names = [environment.value]
    out = Output(output)
    with CloudflareAPI.from_env(spec.project, timeout=timeout) as api:

        def reads() -> ObservedState:
            return observe(
                api, spec.project, now=datetime.now(UTC), environments=names, with_versions=False
            )

        if watch is None or out.json:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="status") as pool:
                first = pool.submit(reads)
                # imported while the first reads are in flight, not before they go out
                from tgk_deploy.planner.status import status_report

                report = status_report(spec, first.result())
            out.emit(report, lambda console: draw_status(console, report))
            return
        from tgk_deploy.planner.status import status_report

        def read() -> StatusReport:
            return status_report(spec, reads())

        _watch(out, read, watch)


def _watch(out: Output, read: Callable[[], StatusReport], every: float) -> None:
    """Like `kubectl argo rollouts get rollout --watch`: the same view, redrawn in place."""
    import io
    import time

    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    with Live(console=out.console, auto_refresh=False) as live:
        try:
            while True:
                canvas = Console(file=io.StringIO(), force_terminal=True, width=out.console.width)
                draw_status(canvas, read())
                view = Text.from_ansi(canvas.file.getvalue())
                view.append(f"\nevery {every:g} s; Ctrl-C to stop", style="dim")
                live.update(view, refresh=True)
                time.sleep(every)
        except KeyboardInterrupt:
            return  # the way to leave a watch: not an error


def draw_status(console: Console, report: StatusReport) -> None:
    from rich.markup import escape

    console.print(f"[bold]rollout:[/] {report.position_text}", highlight=False)
    for sentence in report.foreign_text:  # said before "next": it stops the next step
        console.print(
            f"[bold yellow]changed outside tgk-deploy:[/] {escape(sentence)}", highlight=False
        )
    if report.next:
        when = (
            f", not before {report.next.not_before:%Y-%m-%d %H:%M} UTC"
            if report.next.not_before
            else ""
        )
        console.print(
            f"next: phase {report.next.phase} step {report.next.step} "
            f"({report.next.environment}){when}"
        )
    else:
        console.print("next: nothing, the rollout is complete")
    for why in report.rationale:
        console.print(f"departs from the RFC: {why}", markup=False, highlight=False)
    if report.next and report.next.rationale:
        console.print(
            f"next step departs from the RFC: {' '.join(report.next.rationale.split())}",
            markup=False,
            highlight=False,
        )
    for env in report.environments:
        console.print(f"\n[bold]{env.name}[/] ({env.script})")
        if not env.exists:
            console.print("  [yellow]the script does not exist[/]")
            continue
        if env.deployment_id is None:
            console.print("  no deployment")
            continue
        console.print(
            f"  live since {env.deployed_at:%Y-%m-%d %H:%M} UTC, deployment {env.deployment_id}"
            + (f" by {env.deployed_by}" if env.deployed_by else ""),
            markup=False,
        )
        if env.message:
            console.print(f"  message: {env.message}", markup=False)
        for version in env.split:
            number = f"#{version.number}" if version.number is not None else "#?"
            tag = f" tag {version.tag}" if version.tag else ""
            console.print(
                f"  {version.percentage:>5g} %  {number:<5} {version.version_id}{tag}", markup=False
            )
        flags = sorted({name for version in env.split for name in version.flags})
        for name in flags:
            values = "  ".join(
                f"{version.flags.get(name, '-')}"
                + (f" (#{version.number})" if len(env.split) > 1 else "")
                for version in env.split
            )
            console.print(f"  flag {name} = {values}", markup=False)
        secrets = ", ".join(env.secret_names) or "none"
        console.print(f"  secrets: {secrets}", markup=False)
    console.print("\n[bold]email routing[/]")
    for rule in report.email_rules:
        state = "missing" if not rule.exists else ("enabled" if rule.enabled else "disabled")
        console.print(f"  {rule.role:<7} {rule.name}: {state}", markup=False)
