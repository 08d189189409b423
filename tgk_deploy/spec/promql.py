"""Every PromQL expression in a phase file, parsed offline and checked against what exists.

``validate`` parses each query (criteria, triggers, minimum samples, relative
baselines) with a real PromQL parser (``promql-parser``, no server, no
network) after filling the ``{{...}}`` placeholders, and reports errors at the
file line and column inside the query. Metric names are checked against the
table the Worker itself declares (``<bundle>/src/metrics.js``) plus the
project's ``metrics.external``: a typo in a metric name is a rule that never
fires, and Prometheus would happily accept it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from tgk_deploy.errors import SpecProblem
from tgk_deploy.spec.models import PROMQL, Project
from tgk_deploy.spec.source import Located, PathKey

_METRIC_ENTRY = re.compile(
    r"""["']?\b([a-zA-Z_:][a-zA-Z0-9_:]*)["']?\s*:\s*[\[{]\s*(?:type\s*:\s*)?"""
    r"""["'](counter|gauge|histogram|summary)["']"""
)
_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("", "_sum", "_count")}
_PLACEHOLDER = re.compile(r"\{\{\s*[a-z_]+\s*\}\}")
_QUOTED = re.compile(r"'([^']+)'")


def worker_metrics(source: Path) -> set[str]:
    """Series names the Worker emits, from its metric table (histograms as _bucket/_sum/_count)."""
    names: set[str] = set()
    for name, kind in _METRIC_ENTRY.findall(source.read_text(encoding="utf-8")):
        names.update(name + suffix for suffix in _SUFFIXES.get(kind, ("",)))
    return names


def known_metrics(project_file: Path, project: Project, located: Located) -> set[str] | None:
    """The names queries may read; a problem on the project file when the table is unreadable."""
    source = project_file.parent / project.bundle / project.metrics.source
    try:
        names = worker_metrics(source)
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not UTF-8 text"
        located.problems.append(
            located.problem(
                ("metrics", "source"),
                f"cannot check metric names: {source}: {reason}",
            )
        )
        return None
    if not names:
        located.problems.append(
            located.problem(
                ("metrics", "source"),
                f"cannot check metric names: {source} declares no metric "
                '(expected entries like `name: ["counter", "help"]`)',
            )
        )
        return None
    return names | set(project.metrics.external)


# --------------------------------------------------------------------------- where the queries are


def _is_query(info: FieldInfo) -> bool:
    if PROMQL in info.metadata:
        return True
    members = get_args(info.annotation) if get_origin(info.annotation) in (Union, UnionType) else ()
    return any(get_origin(m) is Annotated and PROMQL in get_args(m)[1:] for m in members)


def queries(value: Any, path: PathKey = ()) -> Iterator[tuple[PathKey, str]]:
    """(path, query) for every PromQL-typed field anywhere in a validated model."""
    if isinstance(value, BaseModel):
        for name, info in type(value).model_fields.items():
            field_value = getattr(value, name)
            key = (*path, info.alias or name)
            if isinstance(field_value, str) and _is_query(info):
                yield key, field_value
            else:
                yield from queries(field_value, key)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from queries(item, (*path, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from queries(item, (*path, key))


# --------------------------------------------------------------------------- parsing


def _scan(query: str) -> dict[str, int]:
    """Offsets of the first unclosed/unmatched bracket of each kind and of an open quote."""
    found: dict[str, int] = {}
    stack: list[tuple[str, int]] = []
    index = 0
    while index < len(query):
        char = query[index]
        if char in "\"'`":
            end = index + 1
            while end < len(query) and query[end] != char:
                end += 2 if query[end] == "\\" and char != "`" else 1
            if end >= len(query):
                found.setdefault("quote", index)
                break
            index = end
        elif char == "#":
            newline = query.find("\n", index)
            index = len(query) if newline < 0 else newline
        elif char in "([{":
            stack.append((char, index))
        elif char in ")]}":
            if stack and stack[-1][0] == "([{"[")]}".index(char)]:
                stack.pop()
            else:
                found.setdefault(char, index)
        index += 1
    for char, offset in stack:
        found.setdefault(char, offset)
    return found


def _offset(query: str, message: str) -> int | None:
    """Where in the query a parser message points (the parser gives no position)."""
    scanned = _scan(query)
    if "quoted string" in message and "quote" in scanned:
        return scanned["quote"]
    for words, key in (
        ("right parenthesis", ")"),
        ("left parenthesis", "("),
        ("inside braces", "{"),
        ("end of input inside brackets", "["),
    ):
        if words in message and key in scanned:
            return scanned[key]
    quoted = _QUOTED.search(message)
    if quoted:
        token = quoted.group(1)
        if "inside brackets" in message:
            for bracket in re.finditer(r"\[([^\]]*)\]", query):
                inner = bracket.group(1).find(token)
                if inner >= 0 and not re.fullmatch(r"[\dsmhdwy:]+", bracket.group(1)):
                    return bracket.start(1) + inner
        word = re.search(rf"(?<![\w:]){re.escape(token)}(?![\w:])", query)
        if word:
            return word.start()
    return None


def _fill(query: str) -> str:
    """Placeholders become same-length text, so offsets in the query stay true."""
    return _PLACEHOLDER.sub(lambda match: "x" * len(match.group()), query)


def _metric_names(expression: Any) -> list[str]:
    import promql_parser

    names: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.append(node.name)
            for matcher in node.matchers.matchers:
                if matcher.name == "__name__" and matcher.op == promql_parser.MatchOp.Equal:
                    names.append(matcher.value)

    promql_parser.walk(expression, visit)
    return names


def check_query(query: str, known: set[str] | None) -> list[tuple[int | None, str]]:
    """(offset in the query or None, message) for each problem of one expression."""
    import promql_parser  # here: validate pays for the parser only when there are queries

    filled = _fill(query)
    try:
        expression = promql_parser.parse(filled)
    except ValueError as error:
        message = str(error)
        return [(_offset(filled, message), f"PromQL: {message}")]
    if known is None:
        return []
    problems: list[tuple[int | None, str]] = []
    for name in dict.fromkeys(_metric_names(expression)):
        if name in known:
            continue
        import difflib  # only a misspelt metric needs it

        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.8)
        hint = f"; did you mean {close[0]}?" if close else ""
        word = re.search(rf"(?<![\w:]){re.escape(name)}(?![\w:])", filled)
        problems.append(
            (
                word.start() if word else None,
                f"metric {name} is not emitted by the Worker{hint} "
                "(a series from elsewhere goes under metrics.external in the project file)",
            )
        )
    return problems


# --------------------------------------------------------------------------- positions


def _source_index(located: Located, node: yaml.ScalarNode, offset: int) -> int:
    """The file index of character ``offset`` of a scalar's value, walking its source."""
    text, value = located.text, node.value
    start, end = node.start_mark.index, node.end_mark.index
    if node.style in ("|", ">"):
        start = text.find("\n", start, end) + 1 or start
    elif node.style in ("'", '"'):
        start += 1
    source = start
    for position, char in enumerate(value[: offset + 1]):
        if char.isspace():
            continue
        while source < end and text[source].isspace():
            source += 1
        if source >= end:
            return node.start_mark.index
        if position == offset:
            return source
        if (node.style == '"' and text[source] == "\\") or (
            node.style == "'" and text[source : source + 2] == "''"
        ):
            source += 2
        else:
            source += 1
    return source if source < end else node.start_mark.index


def query_problems(located: Located, model: BaseModel, known: set[str] | None) -> list[SpecProblem]:
    """Every query of a validated phase, parsed; problems at file:line:column of the query."""
    problems: list[SpecProblem] = []
    for path, query in queries(model):
        for offset, message in check_query(query, known):
            problem = located.problem(path, message)
            node = located.scalars.get(path)
            if node is not None and offset is not None:
                line, column = located.position_of(_source_index(located, node, offset))
                problem = SpecProblem(problem.file, line, column, problem.field, message)
            elif node is not None:
                line, column = node.start_mark.line + 1, node.start_mark.column + 1
                problem = SpecProblem(problem.file, line, column, problem.field, message)
            problems.append(problem)
    return problems
