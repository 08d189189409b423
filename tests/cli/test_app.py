"""The app a run builds: only the command it runs, the whole app for anything else."""

from __future__ import annotations

from pathlib import Path

import typer

from tgk_deploy.cli.app import COMMAND_MODULES, build_app


def names(app: typer.Typer) -> set[str]:
    group = typer.main.get_command(app)
    return set(group.commands)  # type: ignore[attr-defined]


def test_a_run_builds_only_the_module_of_its_command():
    assert names(build_app("approve")) == {"advance", "approve"}
    assert names(build_app("rollback")) == {"rollback"}
    assert names(build_app("restore")) == {"adopt", "restore"}


def test_an_unknown_first_argument_gets_every_command_so_the_error_can_list_them():
    everything = names(build_app("rollbak"))
    assert everything == names(build_app())
    assert {"rollback", "approve", "export", "emulator"} <= everything
    assert len(everything) >= len(COMMAND_MODULES)


def test_every_module_that_registers_a_command_is_listed():
    cli = Path(__file__).resolve().parents[2] / "tgk_deploy" / "cli"
    registering = {p.stem for p in cli.glob("*.py") if "\ndef register(" in p.read_text()}
    assert registering == set(COMMAND_MODULES)
