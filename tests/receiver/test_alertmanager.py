"""End to end through a real Alertmanager: the exported rule's labels, routed by the exported
snippet to two receivers (an HA pair) with bearer credentials from a file."""

from __future__ import annotations

import time

import pytest

from tests.engine.test_advance import run_to
from tests.receiver.test_respond import mutations, stable_only
from tgk_deploy.triggers.alerts import alert_rules

pytestmark = pytest.mark.alertmanager


def exported_alert(world, name: str) -> dict:
    """An alert exactly as Prometheus would send it for the exported rule ``name``."""
    rule = next(
        rule
        for group in alert_rules(world.spec).groups
        for rule in group["rules"]
        if rule["alert"] == name
    )
    return {
        "labels": {"alertname": name, **rule["labels"]},
        "annotations": rule["annotations"],
        "startsAt": world.clock.now().isoformat().replace("+00:00", "Z"),
    }


def wait_until(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "Alertmanager never delivered"
        time.sleep(0.05)


def test_an_alert_through_alertmanager_to_an_ha_pair_rolls_back_once(
    world, alert_receivers, alertmanager_to
):
    run_to(world, 1, "canary-10")
    pair = [alert_receivers.start(), alert_receivers.start()]
    manager = alertmanager_to(*pair)
    before = mutations(world)

    manager.post_alerts([exported_alert(world, "EmailDeliveryFailing")])

    wait_until(lambda: all(r.responder.handled for r in pair))
    handled = [h for receiver in pair for h in receiver.wait()]
    assert sorted((h.outcome, h.reason) for h in handled) == [
        ("acted", None),
        ("ignored", "already-done"),
    ]
    acted = next(h for h in handled if h.outcome == "acted")
    assert (acted.phase, acted.trigger, acted.response) == (
        1,
        "delivery-rate-low",
        "immediate-rollback",
    )
    assert stable_only(world)
    after = mutations(world)
    assert after["deployments"] - before["deployments"] == 1
    assert after["versions"] == before["versions"]
