"""Bytes of one YAML file -> plain data plus the file position of every path in it.

Everything an editor or a hostile file can produce ends here as a located
problem, never as an exception: bytes that are not text, control characters,
tabs, unclosed quotes, unknown tags, alias bombs, huge or deeply nested files.
The limits are checked on the event stream *before* any node is built, so a
bomb or a 100 MB file costs no more than reading the first megabyte.

Scalars are read the way YAML 1.2 (and every editor's schema) reads them:
``true``/``false`` only, decimal integers, floats with an exponent. YAML 1.1
forms that a reader would misread (``050`` is octal 40, ``1:30`` is 90,
``yes`` is true) stay text, and a note tells the model's error what happened.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tgk_deploy.errors import SpecProblem

PathKey = tuple[str | int, ...]

MAX_BYTES = 1024 * 1024
"""A phase file is a few kilobytes; a megabyte is a mistake or an attack."""
MAX_NODES = 5_000
"""Nodes after alias expansion: the largest phase file has 201; 300 steps fit, a billion laughs do not."""
MAX_DEPTH = 64

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 10x faster, same marks
_YAML = "tag:yaml.org,2002:"
_STR, _MAP, _SEQ, _MERGE = (f"{_YAML}{kind}" for kind in ("str", "map", "seq", "merge"))
_RESOLVER = yaml.resolver.Resolver()

# YAML 1.2 core schema: what a plain scalar means.
_NULL = re.compile(r"~|null|Null|NULL|")
_TRUE, _FALSE = re.compile(r"true|True|TRUE"), re.compile(r"false|False|FALSE")
_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_SPECIAL_FLOAT = {".inf": "inf", "+.inf": "inf", "-.inf": "-inf", ".nan": "nan"}
# Forms YAML 1.1 reads as something else than what most people mean.
_YAML11 = [
    (
        re.compile(r"[-+]?0[0-9]+"),
        "written with a leading zero: YAML 1.1 reads it as an octal number",
    ),
    (re.compile(r"[-+]?0[xob][0-9a-fA-F_]+"), "a hexadecimal, octal or binary number"),
    (re.compile(r"[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?"), "a YAML 1.1 base-60 number"),
    (re.compile(r"[-+]?[0-9][0-9_]*_[0-9_]*(\.[0-9_]*)?"), "digits grouped with '_'"),
    (re.compile(r"yes|no|on|off|y|n", re.I), "a YAML 1.1 boolean; write true or false"),
]
_BREAK = re.compile(r"\r\n|[\r\n\x85\u2028\u2029]")
_NOT_PRINTABLE = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_BOMS = [
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
]
_MAGIC = {
    b"\x1f\x8b": "a gzip-compressed file",
    b"PK\x03\x04": "a zip archive",
    b"\x7fELF": "a program",
}


@dataclass
class Located:
    """Plain data from one YAML file plus the (line, column) of every path in it."""

    file: str
    data: Any
    positions: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    problems: list[SpecProblem] = field(default_factory=list)
    text: str = ""
    scalars: dict[PathKey, yaml.ScalarNode] = field(default_factory=dict)
    notes: dict[PathKey, str] = field(default_factory=dict)
    """Why a value that looks like a number was kept as text (``050``, ``1:30``, ``yes``)."""

    def where(self, path: Sequence[str | int]) -> tuple[int, int]:
        """Position of the deepest part of ``path`` present in the file."""
        return self.positions.get(self.resolve(path), (1, 1))

    def resolve(self, path: Sequence[str | int]) -> PathKey:
        """Drop the union tags pydantic adds to error paths, keep what is in the file."""
        kept: PathKey = ()
        for element in path:
            if (*kept, element) in self.positions:
                kept = (*kept, element)
        return kept

    def problem(self, path: Sequence[str | int], message: str) -> SpecProblem:
        line, column = self.where(path)
        return SpecProblem(self.file, line, column, dotted(self.resolve(path)), message)

    def add(self, line: int, column: int, message: str, path: PathKey = ()) -> None:
        self.problems.append(SpecProblem(self.file, line, column, dotted(path), message))

    def position_of(self, index: int) -> tuple[int, int]:
        """(line, column) of a character index, counting line breaks as libyaml does."""
        line, start = 1, 0
        for match in _BREAK.finditer(self.text, 0, index):
            line, start = line + 1, match.end()
        return line, index - start + 1


def dotted(path: Sequence[str | int]) -> str:
    text = ""
    for element in path:
        text += f"[{element}]" if isinstance(element, int) else (f".{element}" if text else element)
    return text


def code_points(text: str) -> str:
    """'b\u0430ke' -> "U+0430 CYRILLIC SMALL LETTER A": the letters a reader cannot tell apart."""
    odd = dict.fromkeys(c for c in text if not c.isascii())
    return ", ".join(f"U+{ord(c):04X} {unicodedata.name(c, 'unnamed')}" for c in odd)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _show_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_YAML) if tag.startswith(_YAML) else tag


# --------------------------------------------------------------------------- bytes -> text


def _read_bytes(path: Path, located: Located) -> bytes | None:
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_BYTES + 1)
    except OSError as error:
        located.add(1, 1, f"cannot read: {error.strerror or error}")
        return None
    if len(data) > MAX_BYTES:
        located.add(
            1,
            1,
            f"the file is larger than {MAX_BYTES // 1024} KB; phase and project files are small",
        )
        return None
    return data


def _decode(data: bytes, located: Located) -> str | None:
    """UTF-8 (BOM optional), or UTF-16/32 with a BOM; else the first bad byte, located."""
    for magic, what in _MAGIC.items():
        if data.startswith(magic):
            located.add(1, 1, f"this is {what}, not YAML text")
            return None
    encoding = next((name for bom, name in _BOMS if data.startswith(bom)), "utf-8")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        before = data[: error.start]
        line = before.count(b"\n") + 1
        column = len(before[before.rfind(b"\n") + 1 :].decode(encoding, "replace")) + 1
        byte = data[error.start]
        hint = " (Latin-1 or Windows-1252?)" if encoding == "utf-8" else ""
        located.add(
            line,
            column,
            f"not {encoding.upper().removesuffix('-SIG')} text: byte 0x{byte:02X} cannot be "
            f"decoded{hint}; save the file as UTF-8",
        )
        return None
    located.text = text
    bad = _NOT_PRINTABLE.search(text)
    if bad:
        char = bad.group()
        what = "a NUL byte" if char == "\0" else "a control character"
        hint = " (UTF-16 without a byte-order mark?)" if char == "\0" else ""
        located.add(
            *located.position_of(bad.start()),
            f"{what} (U+{ord(char):04X}) is not allowed in YAML{hint}",
        )
        return None
    return text


# --------------------------------------------------------------------------- limits


def _within_limits(text: str, located: Located) -> bool:
    """Count nodes (aliases expanded) and depth on the event stream, building nothing."""
    total = 0
    open_nodes: list[tuple[int, str | None]] = []  # (total before the node, its anchor)
    sizes: dict[str, int] = {}
    try:
        for event in yaml.parse(text, Loader=_LOADER):
            if isinstance(event, yaml.AliasEvent):
                if event.anchor not in sizes:
                    if any(anchor == event.anchor for _, anchor in open_nodes):
                        located.add(
                            *_mark(event),
                            f"alias *{event.anchor} refers to a node that contains it",
                        )
                        return False
                    located.add(*_mark(event), f"alias *{event.anchor} has no anchor before it")
                    return False
                total += sizes[event.anchor]
            elif isinstance(event, yaml.ScalarEvent):
                total += 1
                if event.anchor:
                    sizes[event.anchor] = 1
            elif isinstance(event, yaml.CollectionStartEvent):
                open_nodes.append((total, event.anchor))
                total += 1
                if len(open_nodes) > MAX_DEPTH:
                    located.add(*_mark(event), f"nested deeper than {MAX_DEPTH} levels")
                    return False
            elif isinstance(event, yaml.CollectionEndEvent) and open_nodes:
                before, anchor = open_nodes.pop()
                if anchor:
                    sizes[anchor] = total - before
            if total > MAX_NODES:
                located.add(
                    *_mark(event),
                    f"more than {MAX_NODES} values (aliases expanded): "
                    "too large for a phase or project file",
                )
                return False
    except yaml.YAMLError as error:
        _syntax_problem(error, located)
        return False
    return True


def _runaway_quote(text: str, error_line: int) -> tuple[int, int, int] | None:
    """A quoted scalar that runs over lines and ends where the error is: a missing quote."""
    culprit = None
    try:
        for token in yaml.scan(text, Loader=_LOADER):
            if (
                isinstance(token, yaml.ScalarToken)
                and token.style in ('"', "'")
                and token.end_mark.line > token.start_mark.line
                and token.end_mark.line + 1 >= error_line - 1
            ):
                culprit = token
                break
    except yaml.YAMLError:
        pass
    if culprit is None:
        return None
    start = culprit.start_mark
    return start.line + 1, start.column + 1, culprit.end_mark.line + 1


def _syntax_problem(error: yaml.YAMLError, located: Located) -> None:
    """libyaml's message, placed where the reader has to look and worded for them."""
    if isinstance(error, yaml.reader.ReaderError):
        located.add(*located.position_of(error.position), f"YAML: {error.reason}")
        return
    if not isinstance(error, yaml.MarkedYAMLError):
        located.add(1, 1, f"YAML: {error}")
        return
    mark = error.problem_mark or error.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    index = mark.index if mark else 0
    context, problem = error.context or "", error.problem or ""
    if "quoted scalar" in context and error.context_mark:
        opened = error.context_mark
        located.add(
            opened.line + 1,
            opened.column + 1,
            f"YAML: the quote opened here is never closed (read up to line {line} looking for it)",
        )
        return
    runaway = _runaway_quote(located.text, line)
    if runaway is not None:
        quote_line, quote_column, end_line = runaway
        located.add(
            quote_line,
            quote_column,
            f"YAML: the quote opened here is not closed on its line, so YAML read on to "
            f"the next quote (line {end_line}) and then found: {problem}",
        )
        return
    if "simple key" in context and error.context_mark:
        opened = error.context_mark
        located.add(opened.line + 1, opened.column + 1, "YAML: this line has no ':' after its key")
        return
    if index < len(located.text) and located.text[index] == "\t":
        located.add(line, column, "YAML: a tab character; YAML indents with spaces only")
        return
    if context.startswith("while parsing a flow") and error.context_mark:
        opened = error.context_mark
        bracket = located.text[opened.index : opened.index + 1] or "bracket"
        located.add(
            opened.line + 1,
            opened.column + 1,
            f"YAML: the '{bracket}' opened here is not closed where expected "
            f"({problem} at line {line} column {column})",
        )
        return
    reason = " ".join(part for part in (context, problem) if part)
    located.add(line, column, f"YAML: {reason}")


# --------------------------------------------------------------------------- nodes -> data


class _Converter:
    """Node graph -> plain data; every path's position kept, every tag and key checked."""

    def __init__(self, located: Located) -> None:
        self.located = located

    def value(self, node: yaml.Node, path: PathKey) -> Any:
        located = self.located
        located.positions.setdefault(path, _mark(node))
        if isinstance(node, yaml.ScalarNode):
            located.scalars[path] = node
            return self.scalar(node, path)
        expected = _MAP if isinstance(node, yaml.MappingNode) else _SEQ
        if node.tag != expected:
            located.add(*_mark(node), f"unsupported tag {_show_tag(node.tag)}", path)
        if isinstance(node, yaml.SequenceNode):
            items = []
            for i, item in enumerate(node.value):
                located.positions[(*path, i)] = _mark(item)
                items.append(self.value(item, (*path, i)))
            return items
        return self.mapping(node, path)

    def scalar(self, node: yaml.ScalarNode, path: PathKey) -> Any:
        text, tag = node.value, node.tag
        if node.style in (None, "") and tag == _RESOLVER.resolve(
            yaml.ScalarNode, text, (True, False)
        ):
            return self.plain(text, path)
        if tag != _STR:
            self.located.add(
                *_mark(node),
                f"unsupported tag {_show_tag(tag)}: tgk-deploy reads plain YAML (only !!str)",
                path,
            )
        return text

    def plain(self, text: str, path: PathKey) -> Any:
        if _NULL.fullmatch(text):
            return None
        if _TRUE.fullmatch(text) or _FALSE.fullmatch(text):
            return text[0] in "tT"
        if re.fullmatch(r"0[0-9]+", text):
            self.located.notes[path] = (
                f"{text} has a leading zero, which YAML 1.1 reads as an octal number; "
                f"write {int(text)}"
            )
            return text
        for pattern, why in _YAML11:
            if pattern.fullmatch(text):
                self.located.notes[path] = f"{text} is {why}"
                return text
        if _INT.fullmatch(text):
            return int(text)
        if _FLOAT.fullmatch(text):
            return float(text)
        if text.lower() in _SPECIAL_FLOAT:
            return float(_SPECIAL_FLOAT[text.lower()])
        return text

    def mapping(self, node: yaml.MappingNode, path: PathKey) -> dict[str, Any]:
        """Merged keys (``<<: *name``) first, so that the mapping's own keys and places win."""
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                sources = (
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                for source in sources:
                    if not isinstance(source, yaml.MappingNode):
                        self.located.add(
                            *_mark(source),
                            "a merge key '<<' takes a mapping's alias (<<: *name) or a list of them",
                            path,
                        )
                        continue
                    for key, value in self.mapping(source, path).items():
                        merged.setdefault(key, value)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                continue
            key = self.key(key_node, path)
            if key is None:
                continue
            if key in result:
                first = self.located.positions[(*path, key)][0]
                self.located.add(
                    *_mark(key_node), f"duplicate key {key!r} (first at line {first})", (*path, key)
                )
                continue
            self.located.positions[(*path, key)] = _mark(key_node)
            result[key] = self.value(value_node, (*path, key))
        for key, value in merged.items():
            result.setdefault(key, value)
        return result

    def key(self, node: yaml.Node, path: PathKey) -> str | None:
        """Keys are text as written: ``1:`` is the key "1", ``~:`` and ``[a]:`` are refused."""
        if isinstance(node, yaml.ScalarNode) and not (
            node.style in (None, "") and _NULL.fullmatch(node.value)
        ):
            plain_tag = _RESOLVER.resolve(yaml.ScalarNode, node.value, (True, False))
            if node.tag not in (_STR, plain_tag):
                self.located.add(*_mark(node), f"unsupported tag {_show_tag(node.tag)}", path)
            return node.value
        self.located.add(*_mark(node), "keys must be text", path)
        return None


def read_yaml(path: Path) -> Located:
    """Parse one file; every problem becomes a located problem, never an exception."""
    located = Located(file=str(path), data=None)
    data = _read_bytes(path, located)
    text = _decode(data, located) if data is not None else None
    if text is None or not _within_limits(text, located):
        return located
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as error:
        _syntax_problem(error, located)
        return located
    if node is None:
        located.add(1, 1, "the file is empty")
        return located
    located.data = _Converter(located).value(node, ())
    if not isinstance(located.data, dict):
        located.add(1, 1, "the top level must be a mapping")
        located.data = None
    return located
