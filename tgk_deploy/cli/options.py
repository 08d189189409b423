"""Options shared by many commands, declared once so they read the same everywhere."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


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
PhaseOption = Annotated[int, typer.Option("--phase", "-p", min=1, help="The phase number.")]
TimeoutOption = Annotated[
    float,
    typer.Option(
        "--timeout",
        min=1,
        help="Seconds one Cloudflare operation may take, retries and Retry-After waits included.",
    ),
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Print what would change and stop; no API mutation.")
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
