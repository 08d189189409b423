"""The emulator's dispatcher: method + path -> the service's handler -> Cloudflare envelope.

Nothing here knows a rule of the API: each service module under
``services/`` registers its own routes (``wire.router``), and every call is
checked for a bearer token before it reaches one. The control
plane for tests and ``rehearse`` lives under ``/__emulator/`` (moto's
``/moto-api/``) and needs no token; its calls are neither faulted nor logged:

    POST   /__emulator/reset                       state, faults and log back to empty
    POST   /__emulator/seed/{script,version,email-rule,d1,r2,zone,demo}   JSON = seed_* kwargs
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
    GET    /__emulator/worker-requests             requests to the Workers themselves (below)
    POST   /__emulator/faults/fail-smoke           {version_id, scope}: that self-test fails

The Workers' own HTTP side (``worker_http.py``) answers under ``/__workers/{script}/``;
its requests are not API calls and go to their own log.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from tgk_deploy.emulator.context import DEFAULT_ACCOUNT_ID, DEFAULT_ZONE_ID, SimulatedClock
from tgk_deploy.emulator.faults import API_PREFIX, Faults
from tgk_deploy.emulator.services import accounts, d1, email_routing, kv, r2, workers
from tgk_deploy.emulator.state import EmulatorState
from tgk_deploy.emulator.wire import (
    ApiError,
    Code,
    Part,
    Request,
    Response,
    encode_multipart,
    envelope,
    error_envelope,
    json_body,
    match_route,
    parse_multipart,
    parse_request,
)
from tgk_deploy.emulator.worker_http import WORKERS_PREFIX, WorkerFront

__all__ = [
    "Api",
    "Part",
    "Request",
    "Response",
    "encode_multipart",
    "envelope",
    "error_envelope",
    "parse_multipart",
    "parse_request",
    "route_template",
]

SERVICES = (accounts, workers, email_routing, d1, r2, kv)  # imported for their routes
CONTROL_PREFIX = "/__emulator"


def route_template(method: str, path: str) -> str | None:
    """The OpenAPI path template an API path answers to (for the contract test and the log)."""
    path = path.split("?", 1)[0]
    if path.startswith(API_PREFIX):
        path = path[len(API_PREFIX) :]
    found, _, _ = match_route(method.upper(), path)
    return found.template if found else None


class Api:
    """Dispatches one request to a service (``/client/v4``) or the control plane."""

    def __init__(self, state: EmulatorState, faults: Faults, log: Any = None) -> None:
        self.state = state
        self.faults = faults
        self.log = log
        self.front = WorkerFront(state)

    def handle(self, request: Request) -> Response:
        try:
            if request.path.startswith(CONTROL_PREFIX):
                return self._control(request)
            if request.path.startswith(WORKERS_PREFIX + "/"):
                return self.front.handle(request)
            if not request.path.startswith(API_PREFIX + "/"):
                raise ApiError(404, Code.NO_ROUTE, "No route for the URI")
            path = request.path[len(API_PREFIX) :]
            found, params, known = match_route(request.method, path)
            if found is None:
                if known:
                    raise ApiError(405, Code.METHOD_NOT_ALLOWED, "Method not allowed")
                raise ApiError(404, Code.NO_ROUTE, "No route for the URI")
            self.state.authenticate(request.headers.get("authorization"))
            return found.handler(self.state.service(found.service), request, params)
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
        data = json_body(request) if request.body else {}
        data = data or {}
        if method == "POST" and path == "/reset":
            state.reset()
            faults.clear()
            self.front.reset()
            if self.log is not None:
                self.log.clear()
            return envelope({"reset": True})
        if method == "GET" and path == "/requests":
            return envelope(self.log.entries() if self.log is not None else [])
        if method == "DELETE" and path == "/requests":
            if self.log is not None:
                self.log.clear()
            return envelope({"cleared": True})
        if method == "GET" and path == "/worker-requests":
            return envelope(self.front.requests())
        if method == "POST" and path == "/faults/fail-smoke":
            self.front.fail_smoke(data.get("version_id"), str(data.get("scope", "*")))
            return envelope({"fail_smoke": True})
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
            if what == "zone":
                return envelope(state.seed_zone(data.pop("name"), **data).to_api())
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
        "zones": [z.to_api() for z in state.accounts.zones.values()],
        "defaults": {"account_id": DEFAULT_ACCOUNT_ID, "zone_id": DEFAULT_ZONE_ID},
    }
