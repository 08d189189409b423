"""What a person sees while the engine works: a live view on a terminal, lines elsewhere.

``advance --wait`` and ``rollback --gradual`` feed engine events here: on a
terminal a panel like ``kubectl argo rollouts get rollout --watch`` (the live
split, the bake time left, every trigger's value against its threshold); in a
pipe or CI log one line per event. Always on stderr: stdout is for the result.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import typer

from tgk_deploy.cli.output import Output

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.live import Live

    from tgk_deploy.engine.context import Event
    from tgk_deploy.planner.plan import Plan


def _left(until: datetime | None) -> str:
    if until is None:
        return ""
    from tgk_deploy.spec.models import format_duration

    seconds = max(0, int((until - datetime.now(UTC)).total_seconds()))
    return (
        f"{format_duration(timedelta(seconds=seconds))} left (until {until:%Y-%m-%d %H:%M:%S} UTC)"
    )


class EventPrinter:
    """Engine events as a live view on a terminal, as lines otherwise."""

    def __init__(self, out: Output, title: str = "tgk-deploy") -> None:
        self.out = out
        self.title = title
        self.verdicts: dict[tuple[int, str], Any] = {}
        self.waiting = ""
        self.until: datetime | None = None
        self.split = ""
        self._live: Live | None = None

    @functools.cached_property
    def interactive(self) -> bool:
        """A terminal gets the live view (asked on the first event: rich loads then)."""
        return self.out.errors.is_terminal

    def __call__(self, event: Event) -> None:
        if event.kind == "verdict" and "verdict" in event.data:
            verdict = event.data["verdict"]
            self.verdicts[(verdict.phase, verdict.kind.value)] = verdict
        elif event.kind == "wait":
            self.waiting = event.message
            self.until = event.data.get("until")
            self.split = event.data.get("split", self.split)
        else:
            self._line(event)
        if self.interactive:
            self._show()
        elif event.kind in ("wait", "verdict"):
            self._line(event)

    def _line(self, event: Event) -> None:
        style = {"response": "red", "wait": "cyan", "verdict": "dim"}.get(event.kind, "")
        text = event.message
        if event.kind == "wait" and self.until is not None:
            text += f" ({_left(self.until)})"
        console = self._live.console if self._live else self.out.errors
        console.print(text, markup=False, style=style or None, highlight=False)

    def render(self) -> RenderableType:
        from rich.console import Group
        from rich.text import Text

        from tgk_deploy.cli.gate import render_verdict

        parts: list[RenderableType] = [Text(self.title, style="bold")]
        if self.split:
            parts.append(Text(f"split: {self.split}"))
        if self.waiting:
            parts.append(Text(f"waiting: {self.waiting}", style="cyan"))
            if self.until is not None:
                parts.append(Text(f"bake: {_left(self.until)}", style="cyan"))
        parts += [render_verdict(verdict) for _, verdict in sorted(self.verdicts.items())]
        return Group(*parts)

    def _show(self) -> None:
        if self._live is None:
            from rich.live import Live

            self._live = Live(
                self.render(), console=self.out.errors, refresh_per_second=4, transient=False
            )
            self._live.start()
        self._live.update(self.render())

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def mark_said(result: dict[str, object], done: str, already: str) -> str:
    """What a command that records a mark on Cloudflare (approve, halt, resume) did."""
    if result.get("dry_run"):
        return (
            f"dry run: would record {result['would_record']!r} on {result['on']}; nothing changed"
        )
    return already if result.get("already") else done


def confirm_plan(out: Output) -> Callable[[Plan], bool]:
    def ask(step_plan: Plan) -> bool:
        from tgk_deploy.cli.plan import draw_plan

        draw_plan(out.errors, step_plan)
        return typer.confirm("Apply these changes?", default=False, err=True)

    return ask
