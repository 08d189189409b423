"""Pydantic's validation errors -> messages that name what is wrong, at the right place.

pydantic says "Extra inputs are not permitted" and "Input should be a valid
integer"; an operator needs "unknown field 'b\u0430ke' (U+0430 CYRILLIC SMALL
LETTER A); did you mean 'bake'?" and "050 is written with a leading zero".
Values are echoed only where they cannot be credentials (numbers, enum words).
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, Tag

from tgk_deploy.errors import SpecProblem
from tgk_deploy.spec.source import Located, code_points, dotted

_NUMERIC_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_TYPE_ERRORS = {"int_type", "float_type", "bool_type", "int_from_float", "bool_parsing"}
_WORD_ERRORS = {"enum", "literal_error", "string_pattern_mismatch"}


def _unwrap(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _members(annotation: Any) -> list[Any]:
    annotation = _unwrap(annotation)
    if get_origin(annotation) in (Union, types.UnionType):
        return [member for arg in get_args(annotation) for member in _members(arg)]
    return [annotation]


def _tag(annotation: Any) -> str | None:
    if get_origin(annotation) is Annotated:
        return next((m.tag for m in get_args(annotation)[1:] if isinstance(m, Tag)), None)
    return None


def _step(annotation: Any, element: str | int) -> Any:
    """The type found one step down ``element`` from ``annotation``, if any."""
    outer = _unwrap(annotation)
    if get_origin(outer) in (Union, types.UnionType):
        for arg in get_args(outer):
            if _tag(arg) == element:
                return arg
    for member in _members(annotation):
        origin = get_origin(member)
        if origin is list and isinstance(element, int):
            return get_args(member)[0]
        if origin is dict:
            return get_args(member)[1]
        if isinstance(member, type) and issubclass(member, BaseModel):
            for name, info in member.model_fields.items():
                if element in (name, info.alias):
                    return info.annotation
    return None


def fields_at(root: type[BaseModel], path: Sequence[str | int]) -> list[str]:
    """The field names a mapping at ``path`` may have (for "did you mean")."""
    annotation: Any = root
    for element in path:
        annotation = _step(annotation, element)
        if annotation is None:
            return []
    for member in _members(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            return [info.alias or name for name, info in member.model_fields.items()]
    return []


def _unknown_field(root: type[BaseModel], loc: tuple[Any, ...]) -> str:
    name = str(loc[-1])
    if name == "value" and "put_secret" in loc:
        return (
            "put_secret takes no inline 'value': secret values never go in files; "
            "use from_env: NAME (read from the environment) or from_file: PATH"
        )
    message = f"unknown field {name!r}"
    if not name.isascii():
        message += f" (it contains {code_points(name)})"
    known = fields_at(root, loc[:-1])
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        message += f"; did you mean {close[0]!r}?"
    elif known:
        message += f"; known here: {', '.join(known)}"
    return message


def _wrong_type(detail: dict[str, Any], note: str | None) -> str:
    message = str(detail["msg"])
    given = detail.get("input")
    if note:
        return f"{message}: {note}"
    if isinstance(given, bool):
        return f"{message}, not the boolean {str(given).lower()}"
    if isinstance(given, str) and _NUMERIC_TEXT.fullmatch(given.strip()):
        return f"{message}, not the text {given!r}: write it without quotes"
    if isinstance(given, str) and "bool" in detail["type"]:
        return f"{message}: write true or false"
    return message


def explain(root: type[BaseModel], located: Located, detail: dict[str, Any]) -> SpecProblem:
    """One pydantic error as a located problem with a message an operator can act on."""
    loc = tuple(detail["loc"])
    kind = detail["type"]
    context = detail.get("ctx") or {}
    if "at" in context:
        loc = (*loc, *context["at"])
    if kind == "missing":
        # point at the mapping that lacks the field, name the field in the path
        line, column = located.where(loc[:-1])
        field = dotted((*located.resolve(loc[:-1]), loc[-1]))
        return SpecProblem(
            located.file, line, column, field, f"required field {loc[-1]!r} is missing"
        )
    if kind == "extra_forbidden":
        return located.problem(loc, _unknown_field(root, loc))
    note = located.notes.get(located.resolve(loc))
    if kind in _TYPE_ERRORS or (kind.endswith("_type") and note):
        return located.problem(loc, _wrong_type(detail, note))
    message = str(detail["msg"]).removeprefix("Value error, ")
    given = detail.get("input")
    if kind in _WORD_ERRORS and isinstance(given, str) and not given.isascii():
        message += f" (the value contains {code_points(given)})"
    elif kind == "finite_number":
        message = "must be a finite number (.nan and .inf make a rule that can never fire)"
    return located.problem(loc, message)
