"""End to end through a real Alertmanager: the exported rule's labels, routed by the exported
snippet to two receivers (an HA pair) with bearer credentials from a file."""

from __future__ import annotations

import time
from datetime import timedelta

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


@pytest.mark.prometheus
def test_series_that_breach_a_trigger_fire_through_prometheus_and_alertmanager_to_a_rollback(
    world, alert_receivers, alertmanager_to, tmp_path
):
    """The whole chain: the exported rules evaluated by a real Prometheus on backfilled series
    ending now, its alert routed by a real Alertmanager, the receiver rolling the canary back."""
    from datetime import UTC, datetime

    from tests.fixtures.prometheus import (
        Case,
        PrometheusServer,
        SyntheticData,
        prometheus_binary,
        promtool_binary,
    )
    from tgk_deploy.triggers.alerts import render_rules_file

    if prometheus_binary() is None or promtool_binary() is None:
        pytest.skip("Prometheus is not installed (make test-deps installs it)")
    run_to(world, 1, "canary-10")
    receiver = alert_receivers.start()
    manager = alertmanager_to(receiver)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    data = SyntheticData()
    case = Case(name="routing-errors-now", start=now - timedelta(hours=2), at=now)
    worker = {"environment": "production", "version_id": "v1", "isolate": "0a1b2c3d"}
    case.counter("tgk_email_delivery_total", 1.0, {"status": "delivered", **worker})
    # > 5 in 1 h, and still occurring (the last one within 5 minutes)
    case.events("tgk_email_route_failures_total", 8, within=timedelta(minutes=30), labels=worker)
    data.cases[case.name] = case
    (tmp_path / "rules.yml").write_text(render_rules_file(alert_rules(world.spec)))
    host_port = manager.url.removeprefix("http://")
    config = (
        "global: {scrape_interval: 1m, evaluation_interval: 1s}\n"
        f"rule_files: [{tmp_path / 'rules.yml'}]\n"
        "alerting:\n  alertmanagers:\n"
        f"    - static_configs: [{{targets: ['{host_port}']}}]\n"
    )
    before = mutations(world)
    # the first send goes out before Alertmanager is discovered; resend at once, not in 1 m
    prometheus = PrometheusServer.start(
        data.openmetrics(),
        tmp_path / "prometheus",
        config=config,
        flags=("--rules.alert.resend-delay=1s",),
    )
    try:
        wait_until(lambda: any(h.outcome == "acted" for h in receiver.responder.handled), 60)
    finally:
        prometheus.stop()

    acted = next(h for h in receiver.wait() if h.outcome == "acted")
    assert (acted.alert, acted.phase, acted.trigger) == (
        "RoutingErrorsIncreasing",
        1,
        "routing-errors",
    )
    assert acted.response == "gradual-rollback"  # at 10 % the gradual rollback is one step: 0 %
    assert stable_only(world)
    after = mutations(world)
    assert after["deployments"] - before["deployments"] == 1
    assert after["versions"] == before["versions"]
