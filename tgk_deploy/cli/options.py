"""Options shared by many commands, declared once so they read the same everywhere.

Every flag that takes a number or a duration is checked by one validator
(``Bounded``; times by ``Moment``): finite, within bounds that ``--help`` states, or exit 2 with
one line naming the flag (``app.OneLineErrors`` renders it), before anything
is read or called.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

_DURATION = re.compile(r"(?:\d+(?:ms|s|m|h|d|w))+|0")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _seconds_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


class Bounded:
    """A number (``kind`` int or float) or a duration, finite and within [low, high]."""

    def __init__(self, kind: str, low: float, high: float) -> None:
        self.kind = kind
        self.low, self.high = low, high
        self.__name__ = kind  # typer names the value's type after its parser

    @property
    def bounds(self) -> str:
        if self.kind == "duration":
            return f"{_seconds_text(self.low)}..{_seconds_text(self.high)}"
        if self.kind == "int":
            return f"{int(self.low)}..{int(self.high)}"
        return f"{self.low:g}..{self.high:g}"

    def __call__(self, value: Any) -> Any:
        if isinstance(value, timedelta | int | float) and not isinstance(value, bool):
            return value  # a default, already a value
        text = str(value).strip()
        try:
            number = self._parse(text)
        except ValueError as error:
            raise typer.BadParameter(f"{value!r} {error}; expected {self.bounds}") from None
        if not self.low <= number <= self.high:
            raise typer.BadParameter(f"{value!r} is out of bounds; expected {self.bounds}")
        if self.kind == "duration":
            return timedelta(seconds=number)
        return int(number) if self.kind == "int" else number

    def _parse(self, text: str) -> float:
        if self.kind == "duration":
            if not _DURATION.fullmatch(text):
                raise ValueError("is not a duration (a number with a unit: 30s, 10m, 1h30m, 2d)")
            return sum(float(n) * _UNITS[u] for n, u in re.findall(r"(\d+)(ms|s|m|h|d|w)", text))
        if self.kind == "int":
            if not re.fullmatch(r"[+-]?\d+", text):
                raise ValueError("is not a whole number")
            return float(int(text))
        try:
            number = float(text)
        except ValueError:
            raise ValueError("is not a number") from None
        if not math.isfinite(number):
            raise ValueError("is not a finite number")
        return number


def bounded(kind: str, low: float, high: float, *names: str, help: str, **extra: Any) -> Any:
    """A typer option checked by ``Bounded``; its bounds are appended to the help."""
    checker = Bounded(kind, low, high)
    return typer.Option(*names, parser=checker, help=f"{help} [{checker.bounds}]", **extra)


class Moment:
    """A point in time: ISO 8601 (naive means UTC) or unix seconds."""

    __name__ = "time"  # typer names the value's type after its parser

    def __call__(self, value: Any) -> datetime:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        try:
            moment = datetime.fromtimestamp(float(text), tz=UTC)
        except (ValueError, OverflowError, OSError):
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                raise typer.BadParameter(
                    f"{value!r} is not a time: give ISO 8601 (2026-01-05T09:00:00Z) or unix seconds"
                ) from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def moment(*names: str, help: str, **extra: Any) -> Any:
    """A typer option holding a time, checked by ``Moment``."""
    return typer.Option(*names, parser=Moment(), help=help, **extra)


class OutputFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


OutputOption = Annotated[
    OutputFormat,
    typer.Option("--output", "-o", help="text for people, json for machines (stable keys)."),
]
ProjectOption = Annotated[
    Path | None,
    typer.Option(
        "--project",
        envvar="TGK_DEPLOY_PROJECT",
        help="The project file; default: tgk-deploy.yaml here or in a parent folder.",
        show_default=False,
    ),
]
PhaseOption = Annotated[int, bounded("int", 1, 99, "--phase", "-p", help="The phase number.")]
TimeoutOption = Annotated[
    float,
    bounded(
        "float",
        1,
        3600,
        "--timeout",
        help="Seconds one Cloudflare operation may take, retries and Retry-After waits included.",
    ),
]
# Prometheus flags shared by gate and backtest (and the version placeholders by export alerts)
PrometheusTimeoutOption = Annotated[
    float,
    bounded("float", 0.1, 600, "--timeout", help="Give up on Prometheus after this many seconds."),
]
CandidateOption = Annotated[
    str | None, typer.Option("--candidate", help="Version id for {{candidate}} in queries.")
]
StableOption = Annotated[
    str | None, typer.Option("--stable", help="Version id for {{stable}} in queries.")
]
QueryEnvironmentOption = Annotated[
    str, typer.Option("--environment", help="Environment for {{environment}} in queries.")
]
ScriptOption = Annotated[str, typer.Option("--env", help="Which script.")]
"""The environment (Worker script) a rollback, adopt or restore acts on."""
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Print what would change and stop; no API mutation.")
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
