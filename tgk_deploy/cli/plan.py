"""``tgk-deploy plan``: the next step of a phase, its actions and why it may or may not go."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from tgk_deploy.cli.options import OutputFormat, OutputOption, ProjectOption, TimeoutOption, bounded
from tgk_deploy.cli.output import Output, reports

if TYPE_CHECKING:
    from rich.console import Console

    from tgk_deploy.planner.observed import ObservedState
    from tgk_deploy.planner.plan import Plan


def register(app: typer.Typer) -> None:
    app.command()(plan)


@reports
def plan(
    phase: Annotated[
        int | None, bounded("int", 1, 99, "--phase", "-p", help="The phase to plan.")
    ] = None,
    whole_rollout: Annotated[
        bool,
        typer.Option(
            "--whole-rollout", help="Every step of every phase from a fresh account, on paper."
        ),
    ] = False,
    project: ProjectOption = None,
    timeout: TimeoutOption = 60.0,
    output: OutputOption = OutputFormat.TEXT,
) -> None:
    """Show what `advance` would change next, and every reason it may not go yet."""
    from tgk_deploy.errors import ConfigError
    from tgk_deploy.spec.load import find_project_file, load_spec

    project_file = project or find_project_file()
    spec = load_spec(project_file)
    out = Output(output)
    if whole_rollout:
        from tgk_deploy.planner.simulate import fresh_state, walk_rollout

        scripts = {name: env.script for name, env in spec.project.environments.items()}
        start = datetime.now(UTC)
        bundle_hash = _bundle_hash(project_file, spec)
        walk = list(walk_rollout(spec, fresh_state(start, scripts), bundle_hash))
        end = _rollout_end(spec, walk, start)
        payload = {
            "simulated": True,
            "steps": [s.model_dump(mode="json") for s, _ in walk],
            "ends_on_day": end,
        }
        out.emit(payload, lambda c: _draw_rollout(c, walk, start, end))
        return
    if phase is None:
        raise ConfigError("give --phase N, or --whole-rollout")
    from tgk_deploy.engine.context import live_plan

    step_plan = live_plan(spec, project_file, phase, timeout=timeout)
    out.emit(step_plan, lambda c: draw_plan(c, step_plan))


def _bundle_hash(project_file, spec) -> str:
    from tgk_deploy.bundle import read_bundle

    return read_bundle(project_file.parent / spec.project.bundle, "production").content_hash


def draw_plan(console: Console, step_plan: Plan) -> None:
    if step_plan.position:
        console.print(f"rollout at: {step_plan.position.describe()}")
    if step_plan.step:
        console.print(
            f"next: phase {step_plan.phase} step [bold]{step_plan.step}[/] ({step_plan.environment})"
        )
    for index, action in enumerate(step_plan.actions, 1):
        console.print(f"  {index}. {action.describe()}", markup=False)
    if step_plan.require_success:
        console.print("  the phase's success criteria must pass first")
    if step_plan.checklist:
        console.print("  the approver confirms by hand:")
        for item in step_plan.checklist:
            console.print(f"    [ ] {item}", markup=False)
    for why in step_plan.rationale:
        console.print(f"  departs from the RFC: {why}", markup=False)
    for refusal in step_plan.refusals:
        console.print(f"[yellow]refused ({refusal.reason}):[/] {refusal.message}")
        if refusal.command:
            console.print(f"  next: {refusal.command}", markup=False)
    if step_plan.ready:
        console.print(f"[green]ready:[/] tgk-deploy advance --phase {step_plan.phase}")


def _rollout_end(spec, walk: list[tuple[Plan, ObservedState]], start: datetime) -> int:
    """The day the last step's bake ends: the rollout is done then, not when it lands."""
    last_plan, last_state = walk[-1]
    phase = spec.phase(last_plan.phase)
    bake = phase.steps[phase.step_index(last_plan.step)].bake
    return (last_state.observed_at + bake - start).days


def _draw_rollout(
    console: Console, walk: list[tuple[Plan, ObservedState]], start: datetime, end: int
) -> None:
    console.print("[bold]The whole rollout from a fresh account[/] (on paper: no API call)")
    current = None
    for step_plan, after in walk:
        if step_plan.phase != current:
            current = step_plan.phase
            console.print(f"\n[bold]phase {current}[/]")
        day = (after.observed_at - start).days
        console.print(f" day {day:>3}  [cyan]{step_plan.step}[/] ({step_plan.environment})")
        for action in step_plan.changes:
            console.print(f"          - {action.describe()}", markup=False)
        if step_plan.approval:
            console.print("          (after manual approval)")
        for item in step_plan.checklist:
            console.print(f"          [ ] {item}", markup=False)
        for why in step_plan.rationale:
            if why.startswith("step "):
                console.print(f"          departs from the RFC: {why}", markup=False)
    console.print(f"\n day {end:>3}  the last bake ends: the rollout is complete")
