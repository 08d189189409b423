"""The emulated Workers' own HTTP side: what ``smoke`` calls on a deployed Worker.

    POST /__workers/{script}/selftest     the Worker's self-test (wrangler/src/selftest.js)

A request goes to a version the way Cloudflare routes it: the version a
``Cloudflare-Workers-Version-Overrides`` header names (an RFC 8941 dictionary,
``script="version id"``) when that version is in the current deployment, 0 %
included; otherwise, as when the header is malformed or names another version,
by the split (here: the version with the largest share, so tests are
deterministic). Every request is recorded with its override header and the
version that answered (``GET /__emulator/worker-requests``).

The self-test is a mirror of ``selftest.js`` over the answering version's own
bindings (``ROUTING_TABLE``, ``LEGACY_BRIDGE``, ``LEGACY_FORWARD_ADDRESS``; the
``SMOKE_TOKEN`` secret as its bearer token): a route fails on an unknown
``action``, a scope no address reaches, or no chat id Telegram accepts. The
JavaScript itself is tested in Miniflare; this is what the engine needs to meet.
``fail_smoke`` makes a version's self-test report a wrong route (fault injection).
"""

from __future__ import annotations

import hmac
import json
import re
import threading
from dataclasses import asdict, dataclass
from typing import Any

from tgk_deploy.emulator.services.workers import Script, Version
from tgk_deploy.emulator.state import EmulatorState
from tgk_deploy.emulator.wire import Request, Response

WORKERS_PREFIX = "/__workers"
OVERRIDE_HEADER = "cloudflare-workers-version-overrides"
_MEMBER = re.compile(
    r'\s*([a-z*][a-z0-9_\-.*]*)(?:=(?:"((?:[^"\\]|\\.)*)"|[^,;]*))?(?:;[^,]*)?\s*(?:,|$)'
)
_CHAT_ID = re.compile(r"-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31}")
_SCOPE = re.compile(r"[^@<>\s+A-Z]+")
ANY_DOMAIN = "any-domain.invalid"


@dataclass(frozen=True)
class WorkerRequest:
    """One request to an emulated Worker: never its body or token."""

    method: str
    path: str
    script: str
    override: str | None  # the header as sent
    target: str | None  # the version the header names for this script
    answered_by: str | None  # the version that ran
    status: int


def parse_overrides(header: str | None) -> dict[str, str] | None:
    """An RFC 8941 dictionary of String values; None when it is not one (Cloudflare ignores it)."""
    if header is None:
        return None
    found: dict[str, str] = {}
    position = 0
    text = header.strip()
    while position < len(text):
        match = _MEMBER.match(text, position)
        if match is None or match.end() == position:
            return None
        if match.group(2) is None:
            return None  # a member that is not a String: not a version id
        found[match.group(1)] = re.sub(r"\\(.)", r"\1", match.group(2))
        position = match.end()
    return found


class WorkerFront:
    """Routes requests to versions of emulated scripts and answers as their Worker would."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self._lock = threading.Lock()
        self._requests: list[WorkerRequest] = []
        self._failing: dict[str | None, set[str]] = {}  # version id (None: all) -> scopes

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._failing.clear()

    def fail_smoke(self, version_id: str | None = None, scope: str = "*") -> None:
        """Make a version's (None: every version's) self-test report ``scope`` (``*``: all) wrong."""
        with self._lock:
            self._failing.setdefault(version_id, set()).add(scope)

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(r) for r in self._requests]

    def handle(self, request: Request) -> Response:
        rest = request.path[len(WORKERS_PREFIX) :].lstrip("/")
        name, _, subpath = rest.partition("/")
        override = request.headers.get(OVERRIDE_HEADER)
        overrides = parse_overrides(override) or {}
        target = overrides.get(name)
        script = self._script(name)
        version = self._route(script, target) if script else None
        if version is None:
            response = Response.json(404, {"error": "no such Worker, or nothing deployed"})
        elif request.method == "POST" and subpath.rstrip("/") == "selftest":
            response = self._self_test(version, request.headers.get("authorization"))
        else:
            response = Response.json(404, {"error": "not found"})
        with self._lock:
            self._requests.append(
                WorkerRequest(
                    method=request.method,
                    path=request.path,
                    script=name,
                    override=override,
                    target=target,
                    answered_by=version.id if version else None,
                    status=response.status,
                )
            )
        return response

    def _script(self, name: str) -> Script | None:
        with self.state.shared.lock:
            return next((s for (_, n), s in self.state.workers.scripts.items() if n == name), None)

    def _route(self, script: Script, target: str | None) -> Version | None:
        with self.state.shared.lock:
            live = script.live
            if live is None or not live.versions:
                return None
            ids = [v for v, _ in live.versions]
            chosen = target if target in ids else max(live.versions, key=lambda v: v[1])[0]
            return script.version(chosen)

    def _self_test(self, version: Version, authorization: str | None) -> Response:
        expected = version.secrets.get("SMOKE_TOKEN")
        if not expected:
            return Response.json(404, {"error": "not found"})
        given = (authorization or "").removeprefix("Bearer ") if authorization else ""
        if not authorization or not authorization.startswith("Bearer "):
            given = ""
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return Response.json(401, {"error": "unauthorized"}, {"WWW-Authenticate": "Bearer"})
        vars_ = {
            b["name"]: b.get("text", "") for b in version.bindings if b["type"] == "plain_text"
        }
        with self._lock:
            failing = self._failing.get(version.id, set()) | self._failing.get(None, set())
        routes = _routes(vars_, failing)
        failed = sum(1 for r in routes if not r["ok"])
        return Response.json(
            200,
            {
                "service": "tgk-email-orchestrator",
                "environment": vars_.get("ENVIRONMENT", "production"),
                "version": {"id": version.id},
                "bridge": _flag(vars_, "LEGACY_BRIDGE"),
                "ok": failed == 0,
                "checked": len(routes),
                "failed": failed,
                "routes": routes,
            },
        )


def _flag(vars_: dict[str, str], name: str) -> bool:
    return vars_.get(name, "").strip().lower() == "true"


def _routes(vars_: dict[str, str], failing: set[str]) -> list[dict[str, Any]]:
    """selftest.js's verdicts, over one version's vars."""
    try:
        table = json.loads(vars_.get("ROUTING_TABLE") or "")
    except json.JSONDecodeError:
        table = None
    if not isinstance(table, dict) or not isinstance(table.get("routes"), dict):
        return [
            {
                "scope": None,
                "domain": None,
                "decision": None,
                "ok": False,
                "reason": "ROUTING_TABLE is not usable JSON with a routes object",
            }
        ]
    domains = [str(d).lower() for d in table.get("domains") or []] or [ANY_DOMAIN]
    bridge = _flag(vars_, "LEGACY_BRIDGE")
    results = []
    for domain in domains:
        for scope, route in table["routes"].items():
            decision, reason = _decide(scope, route, bridge, vars_)
            if reason is None and ("*" in failing or scope in failing):
                reason = "wrong route (injected by the emulator)"
            results.append(
                {"scope": scope, "domain": domain, "decision": decision, "ok": reason is None}
                | ({"reason": reason} if reason else {})
            )
    return results


def _decide(
    scope: str, route: Any, bridge: bool, vars_: dict[str, str]
) -> tuple[str | None, str | None]:
    if not _SCOPE.fullmatch(scope):
        return None, "no address reaches this scope (scopes are lower case, without + or blanks)"
    if not isinstance(route, dict):
        return None, "the route is not an object"
    action = route.get("action")
    if action not in (None, "telegram", "reject"):
        return None, f'unknown action "{action}"'
    if bridge:
        ok = bool(vars_.get("LEGACY_FORWARD_ADDRESS"))
        return "bridge", None if ok else "LEGACY_FORWARD_ADDRESS is not set"
    if action == "reject":
        return "reject", None
    if route.get("chat_id") is None:
        return "legacy", "mail would go to legacy, not telegram: the route has no chat_id"
    if not _CHAT_ID.fullmatch(str(route["chat_id"])):
        return "telegram", "the chat id is not one Telegram accepts (an integer or @channel)"
    return "telegram", None
