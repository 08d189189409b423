"""``tgk-deploy serve``: the Alertmanager webhook receiver that rolls back between runs.

Logs are JSON lines on stderr; SIGTERM or Ctrl-C stops it gracefully (a
rollback in progress is finished first).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from tgk_deploy.cli.options import ProjectOption, TimeoutOption, bounded
from tgk_deploy.cli.output import reports


def register(app: typer.Typer) -> None:
    app.command()(serve)


@reports
def serve(
    listen: Annotated[
        str, typer.Option("--listen", help="HOST:PORT to bind (0 as port picks a free one).")
    ] = "127.0.0.1:9095",
    environment: Annotated[
        list[str] | None,
        typer.Option(
            "--environment", "-e", help="An environment this receiver owns (repeat for more)."
        ),
    ] = None,
    max_age: Annotated[
        timedelta,
        bounded(
            "duration", 1, 7 * 86400, "--max-age", help="Ignore alerts that started longer ago."
        ),
    ] = "1h",  # type: ignore[assignment]
    standby: Annotated[
        timedelta,
        bounded(
            "duration",
            0,
            3600,
            "--standby",
            help="Wait this long before acting (the second of an HA pair on another host).",
        ),
    ] = "0",  # type: ignore[assignment]
    max_body: Annotated[
        int,
        bounded(
            "int",
            1024,
            100 * 1024 * 1024,
            "--max-body",
            help="Largest webhook body read, in bytes.",
        ),
    ] = 1024 * 1024,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Journal and log what it would do; change nothing.")
    ] = False,
    timeout: TimeoutOption = 60.0,
    project: ProjectOption = None,
) -> None:
    """Hear Alertmanager's webhook and run each fired trigger's declared response.

    Credentials from the environment, as Alertmanager's http_config sends them:
    TGK_DEPLOY_RECEIVER_TOKEN (bearer) or TGK_DEPLOY_RECEIVER_USERNAME and
    TGK_DEPLOY_RECEIVER_PASSWORD (basic auth). POST /alerts, GET /healthz, GET /metrics.
    """
    import json
    import os
    import signal
    import sys
    import threading
    from datetime import UTC, datetime

    from tgk_deploy.receiver.http import Credentials
    from tgk_deploy.receiver.respond import Settings
    from tgk_deploy.receiver.service import parse_listen, serving

    settings = Settings(
        environments=frozenset(environment or ["production"]),
        max_age=max_age,
        standby=standby,
        dry_run=dry_run,
    )
    credentials = Credentials.from_env(os.environ)
    lock = threading.Lock()

    def log(line: dict[str, object]) -> None:
        stamped = {"ts": datetime.now(UTC).isoformat(timespec="milliseconds"), **line}
        with lock:
            sys.stderr.write(json.dumps(stamped, default=str) + "\n")
            sys.stderr.flush()

    # SIGTERM/SIGINT are blocked in every thread (threads inherit the mask) and taken by
    # sigwait below: no handler runs inside a lock some thread holds
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    with serving(
        project,
        settings,
        credentials,
        listen=parse_listen(listen),
        max_body=max_body,
        timeout=timeout,
        log=log,
    ):
        received = signal.sigwait(stop_signals)
        log({"event": "signal", "signal": signal.Signals(received).name})
