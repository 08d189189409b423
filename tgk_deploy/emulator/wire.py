"""What every emulated service shares on the wire: one envelope, errors, pagination, routes.

A service module (``services/*.py``) registers its handlers with ``router``;
each handler receives its own service's state, the parsed ``Request`` and the
path parameters, and returns a ``Response``. ``ApiError`` raised anywhere
becomes Cloudflare's failure envelope ``{success: false, errors: [{code,
message}], messages: [], result: null}`` in ``routes.Api``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)
JsonDict = dict[str, Any]
JSON_TYPE = "application/json"


class Code:
    """Cloudflare error codes the emulator answers with.

    Documented ones: 10000, 10001, 10007, 10021, 10056 (Workers error table and
    the OpenAPI x-cfLinkErrors), 10214/10215/10220 (wrangler handles them by
    number), 7003 (the envelope's "No route for the URI"), 7404 (D1 not found),
    10006/10008 (R2 no such bucket / bucket not empty), 1001 (zone not found).
    The validation codes of D1 are not documented, nor is email routing's
    not-found: the emulator's choice is marked. 2007 "Invalid Input: ..." is
    what Email Routing answered to a drop action with values (cloudflare-docs
    issue 20017).
    """

    AUTH = 10000
    CONTENT_TYPE = 10001
    NOT_FOUND = 10007
    SERVICE_NOT_FOUND = 10090
    VALIDATION = 10021
    BINDING_NOT_FOUND = 10056
    SETTINGS_LATEST_NOT_DEPLOYED = 10214
    SECRET_LATEST_NOT_DEPLOYED = 10215
    SECRETS_CHANGED = 10220
    NO_ROUTE = 7003
    METHOD_NOT_ALLOWED = 10405
    EMAIL_VALIDATION = 2007
    EMAIL_NOT_FOUND = 2020  # emulator's choice
    D1_NOT_FOUND = 7404
    D1_VALIDATION = 7400  # emulator's choice
    R2_NO_SUCH_BUCKET = 10006
    R2_NOT_EMPTY = 10008
    ZONE_NOT_FOUND = 1001


class ApiError(Exception):
    """A refusal as Cloudflare would send it: HTTP status, error code, message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


# --- requests and responses ------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query string
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # lower-case names
    body: bytes

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    def flag(self, name: str) -> bool:
        return (self.param(name) or "").lower() in ("1", "true", "yes")

    def int_param(self, name: str, default: int) -> int:
        raw = self.param(name)
        if raw is None:
            return default
        try:
            return int(float(raw))
        except ValueError:
            raise ApiError(
                400, Code.VALIDATION, f"query parameter {name} must be a number"
            ) from None


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: object, headers: dict[str, str] | None = None) -> Response:
        return cls(
            status, json.dumps(payload).encode(), {"Content-Type": JSON_TYPE, **(headers or {})}
        )


def parse_request(method: str, target: str, headers: Mapping[str, str], body: bytes) -> Request:
    path, _, query = target.partition("?")
    return Request(
        method=method.upper(),
        path=path,
        query=parse_qs(query, keep_blank_values=True),
        headers={k.lower(): v for k, v in headers.items()},
        body=body,
    )


def envelope(
    result: object,
    *,
    status: int = 200,
    result_info: object = None,
    messages: Sequence[JsonDict] = (),
) -> Response:
    payload: dict[str, object] = {
        "success": True,
        "errors": [],
        "messages": list(messages),
        "result": result,
    }
    if result_info is not None:
        payload["result_info"] = result_info
    return Response.json(status, payload)


def error_envelope(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    payload = {
        "success": False,
        "errors": [{"code": code, "message": message}],
        "messages": [],
        "result": None,
    }
    return Response.json(status, payload, headers)


# --- pagination ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    items: list[JsonDict]
    page: int
    per_page: int
    total_count: int

    @property
    def result_info(self) -> JsonDict:
        return {
            "page": self.page,
            "per_page": self.per_page,
            "count": len(self.items),
            "total_count": self.total_count,
            "total_pages": max(1, -(-self.total_count // self.per_page)),
        }


def paginate(items: Sequence[JsonDict], page: int, per_page: int) -> Page:
    start = (page - 1) * per_page
    return Page(list(items[start : start + per_page]), page, per_page, len(items))


def page_envelope(page: Page) -> Response:
    return envelope(page.items, result_info=page.result_info)


# --- bodies ----------------------------------------------------------------------------------


def json_body(request: Request, code: int = Code.VALIDATION) -> Any:
    try:
        return json.loads(request.body or b"null")
    except ValueError as error:
        raise ApiError(400, code, f"request body is not valid JSON: {error}") from None


def validate(model: type[M], data: object, code: int = Code.VALIDATION) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in error.errors()
        )
        prefix = "Invalid Input" if code == Code.EMAIL_VALIDATION else "invalid request body"
        raise ApiError(400, code, f"{prefix}: {problems}") from None


_PARAM = re.compile(r';\s*([\w*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None
    content_type: str | None
    content: bytes


def _header_params(value: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, raw in _PARAM.findall(value):
        raw = raw.strip()
        if raw.startswith('"') and raw.endswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params[key.lower()] = raw
    return params


def parse_multipart(content_type: str, body: bytes) -> list[Part]:
    """A byte-exact multipart/form-data parser: module contents are kept verbatim."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise ApiError(400, Code.CONTENT_TYPE, "expected a multipart/form-data body")
    boundary = _header_params(content_type).get("boundary")
    if not boundary:
        raise ApiError(400, Code.CONTENT_TYPE, "multipart body without a boundary")
    delimiter = b"--" + boundary.encode()
    chunks = body.split(delimiter)
    parts: list[Part] = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk.removeprefix(b"\r\n")
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise ApiError(400, Code.CONTENT_TYPE, "malformed multipart part")
        content = content.removesuffix(b"\r\n")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", errors="replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        disposition = _header_params(headers.get("content-disposition", ""))
        parts.append(
            Part(
                name=disposition.get("name", ""),
                filename=disposition.get("filename"),
                content_type=headers.get("content-type"),
                content=content,
            )
        )
    return parts


def encode_multipart(parts: list[Part], boundary: str) -> bytes:
    out = bytearray()
    for part in parts:
        out += f"--{boundary}\r\n".encode()
        disposition = f'form-data; name="{part.name}"'
        if part.filename is not None:
            disposition += f'; filename="{part.filename}"'
        out += f"Content-Disposition: {disposition}\r\n".encode()
        if part.content_type:
            out += f"Content-Type: {part.content_type}\r\n".encode()
        out += b"\r\n" + part.content + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


# --- the route table -------------------------------------------------------------------------

Handler = Callable[[Any, Request, dict[str, str]], Response]


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # OpenAPI-style, relative to /client/v4
    service: str  # the EmulatorState attribute whose state the handler receives
    handler: Handler
    pattern: re.Pattern[str]


ROUTES: list[Route] = []


def router(service: str) -> Callable[[str, str], Callable[[Handler], Handler]]:
    """``route = router("workers")``; then ``@route("GET", "/accounts/{account_id}/...")``."""

    def route(method: str, template: str) -> Callable[[Handler], Handler]:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)

        def register(handler: Handler) -> Handler:
            ROUTES.append(Route(method, template, service, handler, re.compile(f"^{regex}$")))
            return handler

        return register

    return route


def match_route(method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
    """(route, path params, path known under another method).

    A literal template wins over one with a parameter in the same place
    (``rules/catch_all`` over ``rules/{rule_identifier}``) because services
    register literal paths first.
    """
    known = False
    for candidate in ROUTES:
        found = candidate.pattern.match(path)
        if found:
            if candidate.method == method:
                return candidate, {k: unquote(v) for k, v in found.groupdict().items()}, True
            known = True
    return None, {}, known
