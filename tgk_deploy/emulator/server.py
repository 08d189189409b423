"""The emulator as a real HTTP server on loopback, started in-process.

    with start() as emulator:                      # port 0: the OS picks a free port
        client = httpx.Client(base_url=emulator.url)   # .../client/v4
        emulator.state.seed_script("tgk-email-orchestrator")
        emulator.faults.fail_next("POST", ".../deployments", status=429, retry_after=3)

Each connection gets its own thread (``ThreadingHTTPServer``), so injected
latency overlaps for concurrent calls the way it does against Cloudflare.
Faults are applied here, around the call: wait, then answer an error or
close the socket — before the state changes, or after it (``after=True``).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tgk_deploy.emulator.faults import API_PREFIX, Fault, Faults, Hold
from tgk_deploy.emulator.routes import Api, Response, error_envelope, parse_request
from tgk_deploy.emulator.state import Clock, EmulatorState, wall_clock
from tgk_deploy.emulator.worker_http import WORKERS_PREFIX, WorkerFront


@dataclass(frozen=True)
class LoggedRequest:
    """One API call as the log keeps it: never a body, so never a secret."""

    method: str
    path: str  # with the query string; queries carry no secrets in this API
    status: int | None  # None: the connection was dropped without an answer
    timestamp: str  # wall clock, ISO 8601
    duration_ms: float
    fault: str | None = None


class RequestLog:
    def __init__(self) -> None:
        self._entries: list[LoggedRequest] = []
        self._lock = threading.Lock()

    def add(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._entries.append(entry)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def records(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._entries)

    def entries(self) -> list[dict[str, Any]]:
        return [asdict(e) for e in self.records()]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # one small answer must not wait 40 ms for a delayed ACK
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        del format, args  # the request log is ours; stderr stays quiet

    def _serve(self) -> None:
        started = time.perf_counter()
        body = self._read_body()
        request = parse_request(self.command, self.path, dict(self.headers.items()), body)
        emulator = self.server.emulator
        is_api = request.path.startswith(API_PREFIX)
        fault: Fault | None = None
        hold: Hold | None = None
        releases: tuple[threading.Event, ...] = ()
        if is_api:
            decision = emulator.faults.decide(request.method, request.path)
            fault, releases, hold = decision.fault, decision.releases, decision.hold
            if hold is not None and not hold.after:
                hold.wait()
            if decision.latency_s:
                time.sleep(decision.latency_s)
        response: Response | None
        if fault is not None and not fault.after:
            response = self._faulted(fault)
        else:
            response = emulator.api.handle(request)
            if fault is not None:
                response = self._faulted(fault)
        for released in releases:  # a call held until this one was handled goes on now
            released.set()
        if hold is not None:
            if hold.after:
                hold.wait()  # applied; the answer waits (the client may be killed meanwhile)
            if hold.drop:
                response = None
        if is_api:  # logged before answering: a test that saw the answer sees the entry
            emulator.log.add(
                LoggedRequest(
                    method=request.method,
                    path=self.path,
                    status=response.status if response else None,
                    timestamp=datetime.now(UTC).isoformat(),
                    duration_ms=round((time.perf_counter() - started) * 1000, 3),
                    fault=fault.describe() if fault else None,
                )
            )
        if response is None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(response)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    @staticmethod
    def _faulted(fault: Fault) -> Response | None:
        """The answer a fault replaces the real one with; None: drop the connection."""
        if fault.kind == "drop":
            return None
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        code, message = fault.code, fault.message
        if code is None:
            code = (
                971 if fault.status == 429 else 10002
            )  # 971: "Please wait and consider throttling your request speed"
        if message is None:
            message = (
                "Please wait and consider throttling your request speed"
                if fault.status == 429
                else "Internal server error (injected by the emulator)"
            )
        return error_envelope(fault.status, code, message, headers)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: Emulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (killed, timed out) is not the emulator's error."""
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class Emulator:
    """A running emulator: ``.url`` (base URL ending in /client/v4), ``.state``, ``.faults``."""

    def __init__(self, state: EmulatorState, faults: Faults, host: str, port: int) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the emulator binds loopback only")
        self.state = state
        self.faults = faults
        self.log = RequestLog()
        self.api = Api(state, faults, self.log)
        self._server = _Server((host, port), _Handler)
        self._server.emulator = self
        self.host, self.port = self._server.server_address[:2]
        self.origin = f"http://{self.host}:{self.port}"
        self.url = self.origin + API_PREFIX
        state.public_origin = self.origin
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"tgk-emulator:{self.port}",
            daemon=True,
        )
        self._thread.start()

    @property
    def requests(self) -> list[LoggedRequest]:
        """Every API call so far (control-plane calls are not logged)."""
        return self.log.records()

    def calls(self, method: str | None = None, path_suffix: str | None = None) -> int:
        """How many API calls matched: e.g. ``calls("POST", "/versions")``."""
        return sum(
            1
            for r in self.log.records()
            if (method is None or r.method == method.upper())
            and (path_suffix is None or r.path.split("?", 1)[0].endswith(path_suffix))
        )

    @property
    def front(self) -> WorkerFront:
        """The Workers' own HTTP side: ``worker_url(script)``, self-test faults, its request log."""
        return self.api.front

    def worker_url(self, script: str) -> str:
        """Where an emulated script answers HTTP, as a custom domain would."""
        return f"{self.origin}{WORKERS_PREFIX}/{script}"

    def reset(self) -> None:
        """Fresh state, no faults, empty logs: what each test starts from."""
        self.state.reset()
        self.faults.clear()
        self.log.clear()
        self.api.front.reset()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    clock: Clock = wall_clock,
    seed: int = 0,
    tokens: Iterable[str] | None = None,
    latency_ms: float = 0.0,
    export_polls: int | None = None,
    state: EmulatorState | None = None,
    faults: Faults | None = None,
) -> Emulator:
    """Start an emulator in a background thread and return its handle."""
    if state is None:
        state = EmulatorState(clock=clock, seed=seed, tokens=tokens)
    if export_polls is not None:
        state.export_polls = export_polls
    faults = faults or Faults(seed=seed)
    if latency_ms:
        faults.set_latency(latency_ms)
    return Emulator(state, faults, host, port)
