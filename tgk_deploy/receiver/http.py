"""The thin HTTP part: bind, authenticate, bound the body, hand the alerts over.

    POST /alerts    Alertmanager's webhook; 401 without the configured credentials,
                    411/413 for a missing or too large Content-Length (the body is
                    never read), 400 for a body that is not a version-4 payload,
                    503 while stopping, else 200 once the alerts are queued
    GET  /healthz   200 while serving, 503 while stopping
    GET  /metrics   Prometheus text

Credentials come from the environment, as Alertmanager's ``http_config`` sends
them: a bearer token (``TGK_DEPLOY_RECEIVER_TOKEN``) or basic auth
(``TGK_DEPLOY_RECEIVER_USERNAME`` / ``TGK_DEPLOY_RECEIVER_PASSWORD``). Every
refused request is counted and journaled; no value is ever logged.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tgk_deploy.errors import ConfigError
from tgk_deploy.receiver import WEBHOOK_PATH
from tgk_deploy.receiver.payload import PayloadError, parse_notification
from tgk_deploy.receiver.respond import Responder, ShuttingDown

TOKEN_VAR = "TGK_DEPLOY_RECEIVER_TOKEN"
USERNAME_VAR = "TGK_DEPLOY_RECEIVER_USERNAME"
PASSWORD_VAR = "TGK_DEPLOY_RECEIVER_PASSWORD"
DEFAULT_MAX_BODY = 1024 * 1024  # Alertmanager's notifications are a few KB


@dataclass(frozen=True)
class Credentials:
    token: str | None = None
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:  # never show the values
        return f"Credentials(bearer={self.token is not None}, basic={self.username is not None})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Credentials:
        token = environ.get(TOKEN_VAR) or None
        username, password = environ.get(USERNAME_VAR) or None, environ.get(PASSWORD_VAR) or None
        if (username is None) != (password is None):
            raise ConfigError(f"set both {USERNAME_VAR} and {PASSWORD_VAR}, or neither")
        if token is None and username is None:
            raise ConfigError(
                f"the receiver needs credentials: set {TOKEN_VAR} (bearer) or "
                f"{USERNAME_VAR} and {PASSWORD_VAR} (basic auth)",
                hint="tgk-deploy export alertmanager prints the matching Alertmanager config",
            )
        return cls(token=token, username=username, password=password)

    def allows(self, authorization: str | None) -> bool:
        """Constant-time comparison with whichever schemes are configured."""
        if not authorization:
            return False
        scheme, _, value = authorization.partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if scheme == "bearer" and self.token is not None:
            return hmac.compare_digest(value.encode(), self.token.encode())
        if scheme == "basic" and self.username is not None and self.password is not None:
            try:
                decoded = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                return False
            expected = f"{self.username}:{self.password}".encode()
            return hmac.compare_digest(decoded, expected)
        return False


class ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        responder: Responder,
        credentials: Credentials,
        *,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        super().__init__(address, _Handler)
        self.responder = responder
        self.credentials = credentials
        self.max_body = max_body
        self._thread: threading.Thread | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-request (a 413'd sender, a timeout) is not an error."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ReceiverServer:
        self._thread = threading.Thread(target=self.serve_forever, name="tgk-receiver-http")
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> bool:
        """Graceful: refuse new alerts (503), finish what is queued, then stop listening.

        False if the queue was not finished within ``timeout``."""
        finished = self.responder.stop(timeout)
        self.shutdown()
        self.server_close()
        return finished


class _Handler(BaseHTTPRequestHandler):
    server: ReceiverServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # the receiver logs, not stderr
        return

    def _reply(self, code: int, document: dict[str, Any], *, close: bool = False) -> None:
        body = (json.dumps(document) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if code == 401:
            self.send_header("WWW-Authenticate", 'Bearer realm="tgk-deploy"')
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _refuse(self, code: int, why: str) -> None:
        self.server.responder.refused(code, self.client_address[0], why)
        # the body is not read: the connection cannot be reused
        self._reply(code, {"error": why}, close=True)

    def do_GET(self) -> None:
        responder = self.server.responder
        if self.path == "/healthz":
            status = "stopping" if responder.stopping else "ok"
            self._reply(
                503 if responder.stopping else 200,
                {
                    "status": status,
                    "queued": responder.queued,
                    "dry_run": responder.settings.dry_run,
                },
            )
        elif self.path == "/metrics":
            body = responder.metrics.render().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self._reply(404, {"error": f"no {self.path}; try {WEBHOOK_PATH}, /healthz, /metrics"})

    def do_POST(self) -> None:
        server = self.server
        if self.path != WEBHOOK_PATH:
            self._reply(404, {"error": f"post alerts to {WEBHOOK_PATH}"}, close=True)
            return
        if not server.credentials.allows(self.headers.get("Authorization")):
            self._refuse(401, "missing or wrong credentials")
            return
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._refuse(411, "a Content-Length is required")
            return
        if int(length) > server.max_body:
            self._refuse(413, f"body of {int(length)} bytes; the limit is {server.max_body}")
            return
        body = self.rfile.read(int(length))
        try:
            notification = parse_notification(body)
        except PayloadError as error:
            server.responder.refused(400, self.client_address[0], error.message)
            self._reply(400, {"error": error.message})
            return
        try:
            queued = server.responder.submit(notification)
        except ShuttingDown:
            self._reply(503, {"error": "stopping; send again"}, close=True)
            return
        self._reply(200, {"queued": queued})
