"""A receiver (responder + HTTP server) around the engine ``world``: emulator, simulated clock.

def test_x(world, alert_receivers):
    receiver = alert_receivers.start()
    receiver.post(webhook(alert(...)))
    receiver.wait()
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.fixtures.engine import World
from tgk_deploy.engine.context import new_run_id
from tgk_deploy.receiver.http import Credentials, ReceiverServer
from tgk_deploy.receiver.respond import Handled, Responder, Settings

TOKEN = "receiver-test-token-3f9a"
USERNAME, PASSWORD = "alertmanager", "receiver-test-password-77c1"


def alert(
    phase: int,
    trigger: str,
    *,
    starts_at: datetime,
    status: str = "firing",
    environment: str | None = "production",
    candidate: str | None = None,
    fingerprint: str = "f00d",
    name: str = "TgkAlert",
) -> dict[str, Any]:
    """One alert as Alertmanager's webhook carries it, with the labels export alerts writes."""
    labels = {
        "alertname": name,
        "severity": "critical",
        "tgk_deploy_phase": str(phase),
        "tgk_deploy_trigger": trigger,
    }
    if environment is not None:
        labels["tgk_deploy_environment"] = environment
    if candidate is not None:
        labels["tgk_deploy_candidate"] = candidate
    return {
        "status": status,
        "labels": labels,
        "annotations": {"summary": "test"},
        "startsAt": starts_at.isoformat().replace("+00:00", "Z"),
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.invalid/graph",
        "fingerprint": fingerprint,
    }


def webhook(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="TgkAlert"}',
        "truncatedAlerts": 0,
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "receiver": "tgk-deploy",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.invalid",
        "alerts": list(alerts),
    }


@dataclass
class Receiver:
    responder: Responder
    server: ReceiverServer
    log: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def post(self, document: Any, *, token: str | None = TOKEN, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.post(
            f"{self.url}/alerts", json=document, headers=headers, timeout=30, **kwargs
        )

    def wait(self) -> list[Handled]:
        assert self.responder.wait_idle(timeout=60), "the receiver never finished its queue"
        return list(self.responder.handled)


class Receivers:
    def __init__(self, world: World) -> None:
        self.world = world
        self.started: list[Receiver] = []

    def start(
        self, *, max_body: int = 1024 * 1024, context: dict[str, Any] | None = None, **settings: Any
    ) -> Receiver:
        base = self.world.context(run_id=new_run_id(), **(context or {}))
        base.journal.start_run(base.run_id, "serve")
        log: list[dict[str, Any]] = []
        settings.setdefault("max_age", timedelta(hours=1))
        responder = Responder(base, Settings(**settings), log=log.append).start()
        credentials = Credentials(token=TOKEN, username=USERNAME, password=PASSWORD)
        server = ReceiverServer(("127.0.0.1", 0), responder, credentials, max_body=max_body)
        receiver = Receiver(responder, server.start(), log)
        self.started.append(receiver)
        return receiver

    def stop(self) -> None:
        for receiver in self.started:
            if not receiver.responder.stopping:
                receiver.server.stop(timeout=60)


@pytest.fixture
def alert_receivers(world: World) -> Iterator[Receivers]:
    started = Receivers(world)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def alertmanager_to(tmp_path) -> Iterator[Any]:
    """Start a real Alertmanager routed to the given receivers; stopped by its PID afterwards."""
    from tests.fixtures.alertmanager import start_alertmanager

    started = []

    def start(*receivers: Receiver) -> Any:
        manager = start_alertmanager(tmp_path / "alertmanager", [r.url for r in receivers], TOKEN)
        started.append(manager)
        return manager

    try:
        yield start
    finally:
        for manager in started:
            manager.stop()
