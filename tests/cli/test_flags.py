"""Every flag of every command, fed bad values: exit 2, one line naming the flag, no traceback.

The table is read from the app itself (every option that takes a value), so a
flag added later is covered without anyone listing it here. Free-form
strings (paths, ids, names) are checked by their commands, not at parsing.
"""

from __future__ import annotations

import enum
import json

import pytest
import typer
from typer.testing import CliRunner

from tgk_deploy.cli.app import build_app
from tgk_deploy.cli.options import Bounded

BAD = {
    "int": ["abc", "1.5", "inf", "-1e30", "99999999999"],
    "float": ["abc", "inf", "-inf", "nan", "-1e30", "1e30"],
    "duration": ["abc", "5x", "-5m", "1e20d", "5", "999d"],
}
REQUIRED = {"--phase": "1", "--step": "staging"}


def options():
    group = typer.main.get_command(build_app())

    def walk(command, path):
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                yield from walk(sub, [*path, name])
        else:
            yield path, command

    for path, command in walk(group, []):
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
            elif annotation in (int, float):
                values = ["abc"]
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


def test_the_bounds_are_in_the_help():
    result = CliRunner().invoke(build_app(), ["advance", "--help"])
    assert "[1..3600]" in result.stdout and "[1s..1d]" in result.stdout
