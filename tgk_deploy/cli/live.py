"""What a person sees while the engine works: events as lines, and the confirmation prompt."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

from tgk_deploy.cli.output import Output

if TYPE_CHECKING:
    from tgk_deploy.engine.context import Event
    from tgk_deploy.planner.plan import Plan


class EventPrinter:
    """Engine events to stderr (stdout stays clean for --output json)."""

    def __init__(self, out: Output) -> None:
        self.out = out

    def __call__(self, event: Event) -> None:
        style = {"response": "red", "wait": "cyan", "verdict": "dim"}.get(event.kind, "")
        text = f"[{style}]{event.message}[/]" if style else event.message
        self.out.errors.print(text, markup=bool(style), highlight=False)

    def close(self) -> None:
        pass


def confirm_plan(out: Output) -> Callable[[Plan], bool]:
    def ask(step_plan: Plan) -> bool:
        from tgk_deploy.cli.plan import draw_plan

        draw_plan(out.errors, step_plan)
        return typer.confirm("Apply these changes?", default=False, err=True)

    return ask
