"""``tgk-deploy plan``: placeholder registered until the planner command lands."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    del app
