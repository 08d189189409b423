"""The engine tells Slack and PagerDuty, and a receiver that hangs never holds a rollback up."""

from __future__ import annotations

import time

from tests.engine.test_advance import run_to
from tgk_deploy.engine import rollback
from tgk_deploy.engine.advance import advance
from tgk_deploy.notify import Notifier
from tgk_deploy.spec.models import NotificationsSpec, PagerDutySpec, SlackSpec


def notifier_for(slack_url: str, pagerduty_url: str) -> Notifier:
    spec = NotificationsSpec(
        slack=SlackSpec(webhook_url="${SLACK_WEBHOOK_URL}"),
        pagerduty=PagerDutySpec(routing_key="${PAGERDUTY_ROUTING_KEY}", url=pagerduty_url),
        timeout="1s",
    )
    return Notifier.from_spec(
        spec, env={"SLACK_WEBHOOK_URL": slack_url, "PAGERDUTY_ROUTING_KEY": "pd-key-123456"}
    )


def test_a_rollback_is_announced_started_and_finished(world, receivers):
    run_to(world, 1, "canary-10")
    slack, pagerduty = receivers("ok"), receivers("ok")
    ctx = world.context(notifier=notifier_for(slack.url, pagerduty.url))
    rollback.immediate(ctx)
    ctx.finish_notifications()
    texts = [r.body["text"] for r in slack.requests]
    assert any("started" in t for t in texts) and any("rolled back" in t for t in texts)
    actions = [r.body["event_action"] for r in pagerduty.requests]
    assert actions == ["trigger", "resolve"]


def test_a_hanging_receiver_does_not_hold_the_rollback_up(world, receivers):
    run_to(world, 1, "canary-10")
    hanging = receivers("hang")
    ctx = world.context(notifier=notifier_for(hanging.url, hanging.url))
    started = time.monotonic()
    report = rollback.immediate(ctx)
    reports = ctx.finish_notifications()
    elapsed = time.monotonic() - started
    assert report.done
    assert elapsed < 3.0, elapsed  # the 1 s notification budget, not the receiver's silence
    assert not all(r.ok for r in reports)
    assert len(world.production().live.versions) == 1


def test_a_firing_trigger_pages(world, receivers):
    run_to(world, 1, "canary-10")
    slack, pagerduty = receivers("ok"), receivers("ok")
    world.set_metric("delivery-rate-low", {"value": 0.02})
    ctx = world.context(notifier=notifier_for(slack.url, pagerduty.url))
    advance(ctx, 1)
    ctx.finish_notifications()
    summaries = [r.body["payload"]["summary"] for r in pagerduty.requests if r.body.get("payload")]
    assert any("delivery-rate-low" in s for s in summaries)
    assert "pd-key-123456" not in str([r.body for r in slack.requests])
