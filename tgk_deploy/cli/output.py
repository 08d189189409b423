"""The only place that prints: rich for people, JSON for machines, errors to stderr.

Library code returns pydantic models; a command hands one to ``Output.emit``
with a function that draws it for people. ``NO_COLOR`` is honoured by rich.
"""

from __future__ import annotations

import functools
import json
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer
from typer.exceptions import TyperException

if TYPE_CHECKING:
    from rich.console import Console

from tgk_deploy.cli.options import OutputFormat
from tgk_deploy.errors import ExitCode, InternalError, SpecError, TgkError

P = ParamSpec("P")
R = TypeVar("R")


class Output:
    """Rich is imported on the first print, not before: a rollback's reads go out first."""

    def __init__(self, fmt: OutputFormat = OutputFormat.TEXT) -> None:
        self.format = fmt

    @functools.cached_property
    def console(self) -> Console:
        from rich.console import Console

        return Console(highlight=False, soft_wrap=True)

    @functools.cached_property
    def errors(self) -> Console:
        from rich.console import Console

        return Console(stderr=True, highlight=False, soft_wrap=True)

    @property
    def json(self) -> bool:
        return self.format is OutputFormat.JSON

    def emit(self, payload: Any, draw: Callable[[Console], None] | str) -> None:
        """JSON of the payload, or for people: ``draw`` on the console, or a plain line as it is
        (no rich import: a one-line answer such as validate's is not worth 45 ms of start-up)."""
        if self.json:
            if hasattr(payload, "model_dump"):
                data = payload.model_dump(mode="json", by_alias=True)
            else:
                data = payload
            sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
        elif isinstance(draw, str):
            sys.stdout.write(draw + "\n")
        else:
            draw(self.console)

    def note(self, text: str) -> None:
        """Progress and side remarks: stderr, so stdout stays clean for pipes."""
        self.errors.print(text)

    def error(self, error: TgkError) -> None:
        if self.json:
            sys.stdout.write(json.dumps(error.to_dict(), indent=2, default=str) + "\n")
        if isinstance(error, SpecError):
            for problem in error.problems:
                self.errors.print(str(problem), markup=False)
            self.errors.print(f"{len(error.problems)} problem(s) found.", style="red")
        else:
            self.errors.print(f"error: {error.message}", style="red", markup=False)
        if error.hint:
            self.errors.print(f"next: {error.hint}", markup=False)


def reports(command: Callable[P, R]) -> Callable[P, R]:
    """Turn the TgkError tree into messages and documented exit codes, in one place."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        fmt = kwargs.get("output")
        out = Output(fmt if isinstance(fmt, OutputFormat) else OutputFormat.TEXT)
        try:
            return command(*args, **kwargs)
        except TgkError as error:
            out.error(error)
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            out.errors.print("interrupted")
            raise typer.Exit(ExitCode.INTERRUPTED) from None
        except (typer.Exit, typer.Abort, TyperException):
            raise
        except Exception as bug:
            traceback.print_exc(file=sys.stderr)
            out.error(internal_error(bug, command.__name__))
            raise typer.Exit(ExitCode.INTERNAL) from None

    return wrapper


def internal_error(bug: Exception, function: str) -> InternalError:
    """Name the command and the exception, and point at the commands that show what was left."""
    try:  # typer vendors click and has no public door to its context; the name is a fallback
        from typer._click.globals import get_current_context

        context = get_current_context(silent=True)
    except ImportError:
        context = None
    where = context.command_path if context is not None else function
    return InternalError(
        f"internal error in `{where}`: {type(bug).__name__}: {bug}",
        hint="tgk-deploy status and tgk-deploy history show what Cloudflare and the journal "
        "are left in; please report this with the traceback above",
    )
