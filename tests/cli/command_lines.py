"""Reading ``tgk-deploy ...`` command lines out of shell scripts and docs, and holding them to the CLI.

Typer ships its own copy of click, so commands and parameters are inspected by
their attributes (``commands``, ``opts``, ``is_flag``, ``process_value``).
Values that are shell variables (``$PHASE``) or placeholders in capitals
(``N``, ``VERSION_ID``) are only known later and are not checked.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from typing import Any

import pytest
import typer.main

from tgk_deploy.cli.app import app

SHELL_OPERATORS = {">", ">>", "<", "|", "||", "&&", ";", "&", "2>", "2>&1"}
PLACEHOLDER = re.compile(r"^(\$\w+|\$\{\w+\}|[A-Z][A-Z0-9_]*)$")


def tgk_deploy_calls(script: str) -> Iterator[list[str]]:
    """Each ``tgk-deploy ...`` command line, as argv up to the first shell operator."""
    joined = script.replace("\\\n", " ")
    for line in joined.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        tokens = list(lexer)
        for index, token in enumerate(tokens):
            if token == "tgk-deploy":
                argv = []
                for arg in tokens[index + 1 :]:
                    if arg in SHELL_OPERATORS or arg.startswith((">", "|", ";", "&")):
                        break
                    argv.append(arg)
                yield argv


def resolve(argv: list[str]) -> tuple[Any, list[str], str]:
    """Walk groups (``export dashboard``) down to the command; return it and its arguments."""
    command: Any = typer.main.get_command(app)
    path = []
    rest = list(argv)
    while hasattr(command, "commands") and rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        path.append(name)
        found = command.commands.get(name)
        if found is None:
            return None, rest, " ".join(path)
        command = found
    return command, rest, " ".join(path)


def check_options(command: Any, args: list[str], where: str) -> None:
    options = {
        name: param
        for param in command.params
        if param.param_type_name == "option"
        for name in (*param.opts, *param.secondary_opts)
    }
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if not arg.startswith("-"):
            continue
        name, equals, inline = arg.partition("=")
        assert name in options, f"{where}: {name} is not an option ({sorted(options)})"
        param = options[name]
        if param.is_flag or param.count:
            continue
        value = inline if equals else args[index]
        index += 0 if equals else 1
        if not PLACEHOLDER.match(value):  # $PHASE, N, VERSION_ID: known only later
            context = command.context_class(command, info_name=command.name)
            try:
                param.process_value(context, [value] if param.multiple else value)
            except Exception as error:
                pytest.fail(f"{where}: {name} {value!r}: {error}")
