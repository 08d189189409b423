"""The emulator's HTTP adapter: method + path -> state call -> Cloudflare envelope.

Nothing here knows a rule of the API; it parses (JSON, multipart, query),
validates bodies with ``bodies``, calls ``EmulatorState`` and wraps the
result in ``{success, errors, messages, result, result_info?}``. The control
plane for tests and ``rehearse`` lives under ``/__emulator/`` (moto's
``/moto-api/``) and needs no token; its calls are neither faulted nor logged:

    POST   /__emulator/reset                       state, faults and log back to empty
    POST   /__emulator/seed/{script,version,email-rule,d1,r2,demo}   JSON = seed_* kwargs
    GET    /__emulator/requests   DELETE: clear    the request log (never bodies)
    GET    /__emulator/faults     DELETE: clear    the fault plan, and what was injected
    POST   /__emulator/faults                      {seed, latency_ms, jitter_ms,
                                                    error_rate, error_status, drop_rate}
    POST   /__emulator/faults/fail-next            {method, path, status, retry_after, times, after}
    POST   /__emulator/faults/drop-next            {method, path, times, after}
    POST   /__emulator/faults/fail-nth-mutation    {n, status, drop, after, retry_after}
    POST   /__emulator/clock                       {advance_seconds} (simulated clock only)
    GET    /__emulator/state                       a summary, for people debugging
    GET    /__emulator/d1-exports/{token}          the SQL dump a D1 export's signed_url names
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote

from pydantic import BaseModel, ValidationError

from tgk_deploy.emulator import bodies
from tgk_deploy.emulator.faults import API_PREFIX, Faults
from tgk_deploy.emulator.state import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_ZONE_ID,
    ApiError,
    Code,
    EmulatorState,
    Module,
    Page,
    SimulatedClock,
    Upload,
)

M = TypeVar("M", bound=BaseModel)
CONTROL_PREFIX = "/__emulator"
JSON_TYPE = "application/json"


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


def envelope(result: object, *, status: int = 200, result_info: object = None) -> Response:
    payload: dict[str, object] = {"success": True, "errors": [], "messages": [], "result": result}
    if result_info is not None:
        payload["result_info"] = result_info
    return Response.json(status, payload)


def error_envelope(status: int, code: int, message: str, headers: dict[str, str] | None = None):
    payload = {
        "success": False,
        "errors": [{"code": code, "message": message}],
        "messages": [],
        "result": None,
    }
    return Response.json(status, payload, headers)


def page_envelope(page: Page) -> Response:
    return envelope(page.items, result_info=page.result_info)


# --- parsing ---------------------------------------------------------------------------------


def parse_request(method: str, target: str, headers: Mapping[str, str], body: bytes) -> Request:
    path, _, query = target.partition("?")
    return Request(
        method=method.upper(),
        path=path,
        query=parse_qs(query, keep_blank_values=True),
        headers={k.lower(): v for k, v in headers.items()},
        body=body,
    )


def _json_body(request: Request, code: int = Code.VALIDATION) -> Any:
    try:
        return json.loads(request.body or b"null")
    except ValueError as error:
        raise ApiError(400, code, f"request body is not valid JSON: {error}") from None


def _validate(model: type[M], data: object, code: int = Code.VALIDATION) -> M:
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


def _upload(request: Request) -> Upload:
    parts = parse_multipart(request.headers.get("content-type", ""), request.body)
    metadata_part = next((p for p in parts if p.name == "metadata"), None)
    if metadata_part is None:
        raise ApiError(400, Code.VALIDATION, "multipart upload without a 'metadata' part")
    try:
        raw = json.loads(metadata_part.content)
    except ValueError as error:
        raise ApiError(400, Code.VALIDATION, f"metadata is not valid JSON: {error}") from None
    metadata = _validate(bodies.UploadMetadata, raw)
    modules = tuple(
        Module(
            name=p.filename or p.name,
            content=p.content,
            content_type=p.content_type or "application/octet-stream",
        )
        for p in parts
        if p is not metadata_part
    )
    return Upload(metadata, modules)


# --- the route table -------------------------------------------------------------------------

Handler = Callable[["Api", Request, dict[str, str]], Response]


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # OpenAPI-style, relative to /client/v4
    handler: Handler
    pattern: re.Pattern[str]


_ROUTES: list[Route] = []


def route(method: str, template: str) -> Callable[[Handler], Handler]:
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)

    def register(handler: Handler) -> Handler:
        _ROUTES.append(Route(method, template, handler, re.compile(f"^{regex}$")))
        return handler

    return register


def match_route(method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
    """(route, path params, path known under another method)."""
    known = False
    for candidate in _ROUTES:
        found = candidate.pattern.match(path)
        if found:
            if candidate.method == method:
                return candidate, {k: unquote(v) for k, v in found.groupdict().items()}, True
            known = True
    return None, {}, known


def route_template(method: str, path: str) -> str | None:
    """The OpenAPI path template an API path answers to (for the contract test and the log)."""
    path = path.split("?", 1)[0]
    if path.startswith(API_PREFIX):
        path = path[len(API_PREFIX) :]
    found, _, _ = match_route(method.upper(), path)
    return found.template if found else None


class Api:
    """Dispatches one request to the state (``/client/v4``) or the control plane."""

    def __init__(self, state: EmulatorState, faults: Faults, log: Any = None) -> None:
        self.state = state
        self.faults = faults
        self.log = log

    def handle(self, request: Request) -> Response:
        try:
            if request.path.startswith(CONTROL_PREFIX):
                return self._control(request)
            if not request.path.startswith(API_PREFIX + "/"):
                raise ApiError(404, Code.NO_ROUTE, "No route for the URI")
            path = request.path[len(API_PREFIX) :]
            found, params, known = match_route(request.method, path)
            if found is None:
                if known:
                    raise ApiError(405, Code.METHOD_NOT_ALLOWED, "Method not allowed")
                raise ApiError(404, Code.NO_ROUTE, "No route for the URI")
            self.state.authenticate(request.headers.get("authorization"))
            return found.handler(self, request, params)
        except ApiError as error:
            return error_envelope(error.status, error.code, error.message)
        except Exception as error:  # an emulator bug must still answer, never hang the client
            return error_envelope(500, 10002, f"emulator error: {type(error).__name__}: {error}")

    # ---- control plane

    def _control(self, request: Request) -> Response:
        path = request.path[len(CONTROL_PREFIX) :].rstrip("/")
        method = request.method
        state, faults = self.state, self.faults
        if method == "GET" and path.startswith("/d1-exports/"):
            sql = state.dump(path.rsplit("/", 1)[-1])
            if sql is None:
                return Response(404, b"no such export\n", {"Content-Type": "text/plain"})
            return Response(200, sql.encode(), {"Content-Type": "application/sql"})
        data = _json_body(request) if request.body else {}
        data = data or {}
        if method == "POST" and path == "/reset":
            state.reset()
            faults.clear()
            if self.log is not None:
                self.log.clear()
            return envelope({"reset": True})
        if method == "GET" and path == "/requests":
            return envelope(self.log.entries() if self.log is not None else [])
        if method == "DELETE" and path == "/requests":
            if self.log is not None:
                self.log.clear()
            return envelope({"cleared": True})
        if method == "GET" and path == "/faults":
            return envelope(faults.snapshot())
        if method == "DELETE" and path == "/faults":
            faults.clear(seed=data.get("seed"))
            return envelope(faults.snapshot())
        if method == "POST" and path == "/faults":
            if "seed" in data:
                faults.clear(seed=int(data["seed"]))
            if "latency_ms" in data:
                faults.set_latency(
                    float(data["latency_ms"]), jitter_ms=float(data.get("jitter_ms", 0))
                )
            if "error_rate" in data:
                faults.set_error_rate(
                    float(data["error_rate"]), status=int(data.get("error_status", 500))
                )
            if "drop_rate" in data:
                faults.set_drop_rate(float(data["drop_rate"]))
            return envelope(faults.snapshot())
        if method == "POST" and path == "/faults/fail-next":
            faults.fail_next(
                data["method"],
                data["path"],
                status=int(data.get("status", 500)),
                retry_after=data.get("retry_after"),
                code=data.get("code"),
                message=data.get("message"),
                times=int(data.get("times", 1)),
                after=bool(data.get("after", False)),
            )
            return envelope(faults.snapshot())
        if method == "POST" and path == "/faults/drop-next":
            faults.drop_next(
                data["method"],
                data["path"],
                times=int(data.get("times", 1)),
                after=bool(data.get("after", False)),
            )
            return envelope(faults.snapshot())
        if method == "POST" and path == "/faults/fail-nth-mutation":
            faults.fail_nth_mutation(
                int(data["n"]),
                status=int(data.get("status", 500)),
                drop=bool(data.get("drop", False)),
                after=bool(data.get("after", False)),
                retry_after=data.get("retry_after"),
            )
            return envelope(faults.snapshot())
        if method == "POST" and path.startswith("/seed/"):
            return self._seed(path.removeprefix("/seed/"), data)
        if method == "POST" and path == "/clock":
            clock = state.clock
            if not isinstance(clock, SimulatedClock):
                raise ApiError(409, Code.VALIDATION, "this emulator runs on the wall clock")
            now = clock.advance(float(data.get("advance_seconds", 0)))
            return envelope({"now": now.isoformat()})
        if method == "GET" and path == "/state":
            return envelope(_summary(state))
        raise ApiError(404, Code.NO_ROUTE, f"no control route {method} {path}")

    def _seed(self, what: str, data: dict[str, Any]) -> Response:
        state = self.state
        try:
            if what == "script":
                version = state.seed_script(data.pop("name"), **data)
                return envelope(version.short())
            if what == "version":
                version = state.seed_version(data.pop("name"), **data)
                return envelope(version.short())
            if what == "email-rule":
                return envelope(state.seed_email_rule(data.pop("name"), **data).to_api())
            if what == "d1":
                return envelope(state.seed_d1(data.pop("name"), **data).to_api())
            if what == "r2":
                objects = {k: v.encode() for k, v in data.pop("objects", {}).items()}
                return envelope(state.seed_r2(data.pop("name"), objects=objects, **data).to_api())
            if what == "demo":
                return envelope(state.seed_demo(**data))
        except (KeyError, TypeError, ValidationError) as error:
            raise ApiError(400, Code.VALIDATION, f"bad seed request: {error}") from None
        raise ApiError(404, Code.NO_ROUTE, f"nothing to seed called {what!r}")


def _summary(state: EmulatorState) -> dict[str, object]:
    return {
        "scripts": [
            {
                "account_id": account,
                "name": name,
                "versions": len(script.versions),
                "live": script.live.to_api() if script.live else None,
            }
            for (account, name), script in state.scripts.items()
        ],
        "email_rules": {
            zone: [r.to_api() for r in rules.values()] for zone, rules in state.email_rules.items()
        },
        "d1": [d.to_api() for d in state.databases.values()],
        "r2": [b.to_api() for b in state.buckets.values()],
        "defaults": {"account_id": DEFAULT_ACCOUNT_ID, "zone_id": DEFAULT_ZONE_ID},
    }


# --- the API ---------------------------------------------------------------------------------

SCRIPT = "/accounts/{account_id}/workers/scripts/{script_name}"
ZONE_RULES = "/zones/{zone_identifier}/email/routing/rules"
D1 = "/accounts/{account_id}/d1/database/{database_id}"
R2 = "/accounts/{account_id}/r2/buckets/{bucket_name}"


@route("GET", "/user/tokens/verify")
def _verify(api: Api, request: Request, params: dict[str, str]) -> Response:
    result = api.state.verify_token(request.headers.get("authorization"))
    response = envelope(result)
    payload = json.loads(response.body)
    payload["messages"] = [{"code": 10000, "message": "This API Token is valid and active"}]
    return Response.json(200, payload)


@route("PUT", SCRIPT)
def _put_script(api: Api, request: Request, params: dict[str, str]) -> Response:
    upload = _upload(request)
    return envelope(api.state.put_script(params["account_id"], params["script_name"], upload))


@route("GET", SCRIPT)
def _download_script(api: Api, request: Request, params: dict[str, str]) -> Response:
    """The live main module, raw (not JSON), as Cloudflare's "Download Worker" returns it."""
    version = api.state.content(params["account_id"], params["script_name"], None)
    main = version.modules[version.main_module]
    return Response(200, main.content, {"Content-Type": main.content_type})


@route("DELETE", SCRIPT)
def _delete_script(api: Api, request: Request, params: dict[str, str]) -> Response:
    api.state.delete_script(
        params["account_id"], params["script_name"], force=request.flag("force")
    )
    return envelope(None)


@route("GET", SCRIPT + "/content/v2")
def _content(api: Api, request: Request, params: dict[str, str]) -> Response:
    version = api.state.content(
        params["account_id"], params["script_name"], request.param("version")
    )
    boundary = f"emulator-{version.id}"
    parts = [Part(m.name, m.name, m.content_type, m.content) for m in version.modules.values()]
    return Response(
        200,
        encode_multipart(parts, boundary),
        {
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "CF-Entrypoint": version.main_module,
        },
    )


@route("POST", SCRIPT + "/versions")
def _create_version(api: Api, request: Request, params: dict[str, str]) -> Response:
    upload = _upload(request)
    strict = request.param("bindings_inherit") == "strict"
    result = api.state.create_version(
        params["account_id"], params["script_name"], upload, strict_inherit=strict
    )
    return envelope(result)


@route("GET", SCRIPT + "/versions")
def _list_versions(api: Api, request: Request, params: dict[str, str]) -> Response:
    page = api.state.list_versions(
        params["account_id"],
        params["script_name"],
        page=request.int_param("page", 1),
        per_page=request.int_param("per_page", 20),
        deployable=request.flag("deployable"),
    )
    return envelope({"items": page.items}, result_info=page.result_info)


@route("GET", SCRIPT + "/versions/{version_id}")
def _get_version(api: Api, request: Request, params: dict[str, str]) -> Response:
    return envelope(
        api.state.get_version(params["account_id"], params["script_name"], params["version_id"])
    )


@route("POST", SCRIPT + "/deployments")
def _create_deployment(api: Api, request: Request, params: dict[str, str]) -> Response:
    body = _validate(bodies.DeploymentCreate, _json_body(request))
    result = api.state.create_deployment(
        params["account_id"], params["script_name"], body, force=request.flag("force")
    )
    return envelope(result)


@route("GET", SCRIPT + "/deployments")
def _list_deployments(api: Api, request: Request, params: dict[str, str]) -> Response:
    deployments = api.state.list_deployments(params["account_id"], params["script_name"])
    return envelope({"deployments": deployments})


@route("PUT", SCRIPT + "/secrets")
def _put_secret(api: Api, request: Request, params: dict[str, str]) -> Response:
    body = _validate(bodies.SecretPut, _json_body(request))
    return envelope(api.state.put_secret(params["account_id"], params["script_name"], body))


@route("GET", SCRIPT + "/secrets")
def _list_secrets(api: Api, request: Request, params: dict[str, str]) -> Response:
    return envelope(api.state.list_secrets(params["account_id"], params["script_name"]))


@route("GET", SCRIPT + "/secrets/{secret_name}")
def _get_secret(api: Api, request: Request, params: dict[str, str]) -> Response:
    return envelope(
        api.state.get_secret(params["account_id"], params["script_name"], params["secret_name"])
    )


@route("DELETE", SCRIPT + "/secrets/{secret_name}")
def _delete_secret(api: Api, request: Request, params: dict[str, str]) -> Response:
    api.state.delete_secret(params["account_id"], params["script_name"], params["secret_name"])
    return envelope(None)


@route("GET", SCRIPT + "/settings")
def _get_settings(api: Api, request: Request, params: dict[str, str]) -> Response:
    return envelope(api.state.get_settings(params["account_id"], params["script_name"]))


@route("PATCH", SCRIPT + "/settings")
def _patch_settings(api: Api, request: Request, params: dict[str, str]) -> Response:
    parts = parse_multipart(request.headers.get("content-type", ""), request.body)
    part = next((p for p in parts if p.name == "settings"), None)
    if part is None:
        raise ApiError(400, Code.VALIDATION, "multipart body without a 'settings' part")
    try:
        raw = json.loads(part.content)
    except ValueError as error:
        raise ApiError(400, Code.VALIDATION, f"settings is not valid JSON: {error}") from None
    patch = _validate(bodies.SettingsPatch, raw)
    return envelope(api.state.patch_settings(params["account_id"], params["script_name"], patch))


@route("GET", SCRIPT + "/script-settings")
def _get_script_settings(api: Api, request: Request, params: dict[str, str]) -> Response:
    return envelope(api.state.get_script_settings(params["account_id"], params["script_name"]))


@route("PATCH", SCRIPT + "/script-settings")
def _patch_script_settings(api: Api, request: Request, params: dict[str, str]) -> Response:
    patch = _validate(bodies.ScriptSettingsPatch, _json_body(request))
    return envelope(
        api.state.patch_script_settings(params["account_id"], params["script_name"], patch)
    )


def _enabled_filter(request: Request) -> bool | None:
    raw = request.param("enabled")
    if raw is None:
        return None
    if raw.lower() not in ("true", "false"):
        raise ApiError(400, Code.EMAIL_VALIDATION, "enabled must be true or false")
    return raw.lower() == "true"


@route("GET", ZONE_RULES)
def _list_rules(api: Api, request: Request, params: dict[str, str]) -> Response:
    page = api.state.list_rules(
        params["zone_identifier"],
        page=request.int_param("page", 1),
        per_page=request.int_param("per_page", 20),
        enabled=_enabled_filter(request),
    )
    return page_envelope(page)


@route("POST", ZONE_RULES)
def _create_rule(api: Api, request: Request, params: dict[str, str]) -> Response:
    body = _validate(
        bodies.RuleBody, _json_body(request, Code.EMAIL_VALIDATION), Code.EMAIL_VALIDATION
    )
    return envelope(api.state.create_rule(params["zone_identifier"], body))


@route("GET", ZONE_RULES + "/catch_all")
def _get_catch_all(api: Api, request: Request, params: dict[str, str]) -> Response:
    return envelope(api.state.get_catch_all(params["zone_identifier"]))


@route("PUT", ZONE_RULES + "/catch_all")
def _put_catch_all(api: Api, request: Request, params: dict[str, str]) -> Response:
    body = _validate(
        bodies.CatchAllBody, _json_body(request, Code.EMAIL_VALIDATION), Code.EMAIL_VALIDATION
    )
    return envelope(api.state.update_catch_all(params["zone_identifier"], body))


@route("GET", ZONE_RULES + "/{rule_identifier}")
def _get_rule(api: Api, request: Request, params: dict[str, str]) -> Response:
    return envelope(api.state.get_rule(params["zone_identifier"], params["rule_identifier"]))


@route("PUT", ZONE_RULES + "/{rule_identifier}")
def _put_rule(api: Api, request: Request, params: dict[str, str]) -> Response:
    body = _validate(
        bodies.RuleBody, _json_body(request, Code.EMAIL_VALIDATION), Code.EMAIL_VALIDATION
    )
    return envelope(
        api.state.update_rule(params["zone_identifier"], params["rule_identifier"], body)
    )


@route("DELETE", ZONE_RULES + "/{rule_identifier}")
def _delete_rule(api: Api, request: Request, params: dict[str, str]) -> Response:
    return envelope(api.state.delete_rule(params["zone_identifier"], params["rule_identifier"]))


@route("GET", D1)
def _get_database(api: Api, request: Request, params: dict[str, str]) -> Response:
    return envelope(api.state.get_database(params["account_id"], params["database_id"]))


@route("DELETE", D1)
def _delete_database(api: Api, request: Request, params: dict[str, str]) -> Response:
    api.state.delete_database(params["account_id"], params["database_id"])
    return envelope(None)


@route("POST", D1 + "/export")
def _export_database(api: Api, request: Request, params: dict[str, str]) -> Response:
    body = _validate(
        bodies.D1ExportBody, _json_body(request, Code.D1_VALIDATION), Code.D1_VALIDATION
    )
    status, result = api.state.export_database(params["account_id"], params["database_id"], body)
    return envelope(result, status=status)


@route("GET", R2)
def _get_bucket(api: Api, request: Request, params: dict[str, str]) -> Response:
    return envelope(api.state.get_bucket(params["account_id"], params["bucket_name"]))


@route("DELETE", R2)
def _delete_bucket(api: Api, request: Request, params: dict[str, str]) -> Response:
    api.state.delete_bucket(params["account_id"], params["bucket_name"])
    return envelope({})
