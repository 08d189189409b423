"""The HTTP part: credentials as Alertmanager sends them, bad bodies refused, health and metrics.

Every refusal here must leave Cloudflare untouched: the emulator's request log
holds no mutation afterwards.
"""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.receiver.conftest import PASSWORD, TOKEN, USERNAME, alert, webhook
from tgk_deploy.errors import ConfigError
from tgk_deploy.receiver.http import Credentials


def mutated(world) -> int:
    return sum(world.emulator.calls(method) for method in ("POST", "PUT", "PATCH", "DELETE"))


@pytest.fixture
def receiver(world, alert_receivers):
    return alert_receivers.start(max_body=64 * 1024)


def firing(world) -> dict:
    return webhook(alert(1, "delivery-rate-low", starts_at=world.clock.now()))


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Basic {USERNAME}:{PASSWORD}", "Token " + TOKEN, "Bearer"],
    ids=["none", "wrong-token", "basic-not-base64", "other-scheme", "empty-bearer"],
)
def test_a_request_without_the_credentials_is_refused_journaled_and_not_read(
    world, receiver, authorization
):
    headers = {"Authorization": authorization} if authorization else {}

    answer = httpx.post(f"{receiver.url}/alerts", json=firing(world), headers=headers)

    assert answer.status_code == 401
    assert receiver.wait() == []
    assert mutated(world) == 0
    [serve] = [run for run in world.journal.runs() if run.command == "serve"]
    [entry] = serve.actions
    assert (entry["kind"], entry["status"]) == ("request", "refused")
    assert TOKEN not in str(entry) and PASSWORD not in str(entry)
    assert 'requests_refused_total{code="401"} 1' in httpx.get(f"{receiver.url}/metrics").text


def test_basic_auth_as_alertmanager_sends_it_is_accepted(world, receiver):
    answer = httpx.post(
        f"{receiver.url}/alerts", json=webhook(), auth=(USERNAME, PASSWORD), timeout=10
    )
    assert answer.status_code == 200 and answer.json() == {"queued": 0}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"version": "3", "status": "firing", "alerts": []}', "version '3'"),
        (b'{"version": "4", "status": "firing", "alerts": [{"labels": {}}]}', "alerts.0.status"),
        (b"\xff\xfe", "not UTF-8"),
    ],
    ids=["not-json", "not-object", "old-version", "alert-without-status", "binary"],
)
def test_a_malformed_payload_is_a_400_that_acts_on_nothing(world, receiver, body, says):
    answer = httpx.post(
        f"{receiver.url}/alerts",
        content=body,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )

    assert answer.status_code == 400
    assert says in answer.json()["error"]
    assert receiver.wait() == []
    assert mutated(world) == 0


def test_a_10_mb_payload_is_refused_before_it_is_read(world, receiver):
    """Only the headers are sent: a 413 that arrives proves the body was never waited for."""
    host, port = receiver.server.server_address[:2]
    with socket.create_connection((host, port), timeout=10) as connection:
        connection.sendall(
            b"POST /alerts HTTP/1.1\r\nHost: receiver\r\n"
            + f"Authorization: Bearer {TOKEN}\r\n".encode()
            + b"Content-Type: application/json\r\nContent-Length: 10485760\r\n\r\n"
            + b'{"version": "4", "alerts": ['
        )
        started = time.monotonic()
        answer = connection.recv(4096).decode()
        waited = time.monotonic() - started

    assert answer.startswith("HTTP/1.1 413")
    assert "Connection: close" in answer
    assert waited < 5
    assert receiver.wait() == [] and mutated(world) == 0


def test_a_body_without_a_length_is_refused(world, receiver):
    def chunks():
        yield b'{"version": "4",'
        yield b'"alerts": []}'

    answer = httpx.post(
        f"{receiver.url}/alerts", content=chunks(), headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert answer.status_code == 411


def test_healthz_and_metrics_say_what_the_receiver_heard_and_did(world, receiver):
    assert httpx.get(f"{receiver.url}/healthz").json() == {
        "status": "ok",
        "queued": 0,
        "dry_run": False,
    }
    receiver.post(
        webhook(alert(1, "delivery-rate-low", starts_at=world.clock.now(), status="resolved"))
    )
    receiver.wait()

    metrics = httpx.get(f"{receiver.url}/metrics")

    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = metrics.text
    assert 'tgk_deploy_receiver_alerts_received_total{status="resolved"} 1' in text
    assert 'tgk_deploy_receiver_alerts_ignored_total{reason="resolved"} 1' in text
    assert "# TYPE tgk_deploy_receiver_action_latency_seconds histogram" in text
    assert "tgk_deploy_receiver_action_latency_seconds_count 0" in text


def test_a_stopping_receiver_answers_503_so_alertmanager_sends_again(world, receiver):
    receiver.responder.stop(timeout=10)

    assert receiver.post(firing(world)).status_code == 503
    assert httpx.get(f"{receiver.url}/healthz").status_code == 503


def test_credentials_come_from_the_environment_and_are_required():
    with pytest.raises(ConfigError, match="TGK_DEPLOY_RECEIVER_TOKEN"):
        Credentials.from_env({})
    with pytest.raises(ConfigError, match="both"):
        Credentials.from_env({"TGK_DEPLOY_RECEIVER_USERNAME": "am"})
    credentials = Credentials.from_env({"TGK_DEPLOY_RECEIVER_TOKEN": "s3cret-value"})
    assert credentials.allows("Bearer s3cret-value")
    assert not credentials.allows("Basic czNjcmV0LXZhbHVl")
    assert "s3cret-value" not in repr(credentials)
