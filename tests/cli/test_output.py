"""How a command ends: deliberate errors, bugs and Typer's own exits each keep their own code."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from tests.fixtures.spec import REPO
from tgk_deploy.cli.app import app
from tgk_deploy.cli.options import OutputFormat
from tgk_deploy.cli.output import reports
from tgk_deploy.errors import ExitCode, RefusedError

runner = CliRunner()
toy = typer.Typer()


@toy.command()
@reports
def fail(how: str, output: OutputFormat = OutputFormat.TEXT) -> None:
    if how == "bug":
        raise KeyError("phase")
    if how == "refused":
        raise RefusedError("bake time not elapsed", hint="tgk-deploy status")
    if how == "exit":
        raise typer.Exit(ExitCode.INCONCLUSIVE)
    raise typer.BadParameter("no such thing", param_hint="HOW")


def test_a_bug_exits_70_not_1_so_a_pipeline_cannot_read_it_as_a_fired_trigger():
    result = runner.invoke(toy, ["bug"])
    assert result.exit_code == ExitCode.INTERNAL == 70
    assert "Traceback" in result.stderr and "KeyError" in result.stderr
    assert "error: internal error in `fail`: KeyError: 'phase'" in result.stderr
    assert "next: tgk-deploy status" in result.stderr
    assert result.stdout == ""


def test_a_bug_with_json_output_still_leaves_one_json_document_on_stdout():
    result = runner.invoke(toy, ["bug", "--output", "json"])
    assert result.exit_code == 70
    document = json.loads(result.stdout)
    assert document["error"] == "InternalError"
    assert document["message"] == "internal error in `fail`: KeyError: 'phase'"
    assert "tgk-deploy history" in document["hint"]


@pytest.mark.parametrize(
    ("how", "code"),
    [("refused", ExitCode.REFUSED), ("exit", ExitCode.INCONCLUSIVE), ("param", 2)],
)
def test_deliberate_errors_and_typers_own_exits_keep_their_codes_and_print_no_traceback(how, code):
    result = runner.invoke(toy, [how])
    assert result.exit_code == code
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr


def test_a_bug_inside_a_real_command_names_the_command(monkeypatch):
    import tgk_deploy.spec.load as load

    def broken(*_args: object, **_kwargs: object) -> None:
        raise AttributeError("'NoneType' object has no attribute 'steps'")

    monkeypatch.setattr(load, "validate_paths", broken)
    monkeypatch.chdir(REPO)
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 70
    assert "internal error in `tgk-deploy validate`: AttributeError" in result.stderr
