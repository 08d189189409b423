"""The long-running process: one engine context, the responder, the HTTP server, one journal run.

``tgk-deploy serve`` opens it and waits for a signal; leaving the ``with``
stops it gracefully (new alerts get 503, queued ones and a rollback in
progress are finished) and closes the journal run ``serve``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tgk_deploy.engine.context import Event, open_context
from tgk_deploy.receiver.http import Credentials, ReceiverServer
from tgk_deploy.receiver.respond import LogLine, Responder, Settings


def parse_listen(value: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:9095`` for IPv6); a ConfigError says what is wrong."""
    from tgk_deploy.errors import ConfigError

    host, _, port = value.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"--listen {value!r}: write HOST:PORT, e.g. 127.0.0.1:9095")
    return host, int(port)


@contextmanager
def serving(
    project_file: Path | None,
    settings: Settings,
    credentials: Credentials,
    *,
    listen: tuple[str, int],
    max_body: int,
    timeout: float,
    log: LogLine,
) -> Iterator[ReceiverServer]:
    def engine_event(event: Event) -> None:
        log({"event": event.kind, "message": event.message})

    with open_context(
        project_file, timeout=timeout, with_metrics="optional", events=engine_event
    ) as base:
        if base.journal is not None:
            base.journal.start_run(
                base.run_id, "serve", operator=base.operator, dry_run=settings.dry_run
            )
        responder = Responder(base, settings, log=log).start()
        server = ReceiverServer(listen, responder, credentials, max_body=max_body).start()
        log(
            {
                "event": "listening",
                "url": server.url,
                "environments": sorted(settings.environments),
                "dry_run": settings.dry_run,
                "run_id": base.run_id,
            }
        )
        status = "stopped"
        try:
            yield server
        finally:
            log({"event": "stopping", "queued": responder.queued})
            if not server.stop():
                status = "stopped with alerts unhandled"
            if base.journal is not None:
                base.journal.finish_run(base.run_id, status)
            log({"event": "stopped"})
