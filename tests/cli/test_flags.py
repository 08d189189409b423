"""Every flag of every command, fed bad values: exit 2, one line naming the flag, no traceback.

The table is read from the app itself (every option that takes a value), so a
flag added later is covered without anyone listing it here. Free-form
strings (paths, ids, names) are checked by their commands, not at parsing.
"""

from __future__ import annotations

import enum
import json
from datetime import timedelta

import pytest
import typer
from typer.testing import CliRunner

from tgk_deploy.cli.app import build_app
from tgk_deploy.cli.options import Bounded, Moment

BAD = {
    "int": ["abc", "1.5", "inf", "-1e30", "99999999999"],
    "float": ["abc", "inf", "-inf", "nan", "-1e30", "1e30"],
    "duration": ["abc", "5x", "-5m", "1e20d", "5", "999d"],
}
TIMES = ["abc", "1e400", "2026-13-01"]  # ISO 8601 or unix seconds
REQUIRED = {"--phase": "1", "--step": "staging", "--from": "0", "--to": "3600"}


def commands():
    """Every leaf command of the app with its path, e.g. (["export", "alerts"], command)."""

    def walk(command, path):
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                yield from walk(sub, [*path, name])
        else:
            yield path, command

    yield from walk(typer.main.get_command(build_app()), [])


def options():
    for path, command in commands():
        flags = [p for p in command.params if p.opts[0].startswith("-")]
        json_output = any(p.opts[0] == "--output" for p in flags)
        for param in flags:
            if getattr(param, "is_flag", False):
                continue
            info = param.type_descriptor.parameter_info
            annotation = param.type_descriptor.annotation
            if isinstance(info.parser, Bounded):
                values = BAD[info.parser.kind]
            elif isinstance(annotation, type) and issubclass(annotation, enum.Enum):
                values = ["bogus"]
            elif annotation in (int, float, timedelta):
                values = ["abc"]  # and the test below fails: numbers go through Bounded
            elif isinstance(info.parser, Moment):
                values = TIMES
            else:
                continue  # free-form text: its command checks it
            others = [
                arg
                for p in flags
                if p.required and p is not param
                for arg in (p.opts[0], REQUIRED.get(p.opts[0], "x"))
            ]
            for index, value in enumerate(values):
                yield pytest.param(
                    [*path, *others, param.opts[0], value],
                    param.opts[0],
                    json_output and param.opts[0] != "--output" and index == 0,
                    id=f"{' '.join(path)} {param.opts[0]} {value}",
                )


@pytest.mark.parametrize(("argv", "flag", "json_output"), list(options()))
def test_a_bad_value_is_refused_in_one_line_before_anything_runs(argv, flag, json_output):
    result = CliRunner().invoke(build_app(), argv, env={"CLOUDFLARE_API_TOKEN": None})

    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and flag in lines[0], lines
    assert "Traceback" not in result.output
    assert result.stdout == ""
    if json_output:
        as_json = CliRunner().invoke(build_app(), [*argv, "-o", "json"])
        assert as_json.exit_code == 2
        assert json.loads(as_json.stdout)["error"] == "UsageError"


def test_every_number_and_duration_flag_goes_through_the_one_validator():
    unbounded = [
        f"{' '.join(path)} {param.opts[0]}"
        for path, command in commands()
        for param in command.params
        if param.type_descriptor.annotation in (int, float, timedelta)
        and not getattr(param, "is_flag", False)
        and not isinstance(param.type_descriptor.parameter_info.parser, Bounded)
    ]
    assert unbounded == []


def test_the_bounds_are_in_the_help():
    result = CliRunner().invoke(build_app(), ["advance", "--help"])
    assert "[1..3600]" in result.stdout and "[1s..1d]" in result.stdout
