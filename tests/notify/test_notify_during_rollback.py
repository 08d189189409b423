"""A notification sent while rolling back: the rollback never waits for a receiver that hangs."""

from __future__ import annotations

import time
from datetime import timedelta

from tests.engine.test_advance import run_to
from tgk_deploy.engine import rollback
from tgk_deploy.notify import Event, Notifier
from tgk_deploy.spec.models import NotificationEvent, NotificationsSpec, SlackSpec


def test_an_immediate_rollback_finishes_on_time_while_a_receiver_hangs(world, receivers):
    run_to(world, 1, "canary-10")
    hanging = receivers("hang")
    notifier = Notifier.from_spec(
        NotificationsSpec(
            slack=SlackSpec(webhook_url="${SLACK_URL}"), timeout=timedelta(seconds=1)
        ),
        env={"SLACK_URL": hanging.url},
    )

    began = time.monotonic()
    pending = notifier.start(
        Event(kind=NotificationEvent.ROLLBACK_STARTED, phase=1, summary="immediate rollback")
    )
    started_in = time.monotonic() - began
    report = rollback.immediate(world.context())
    rolled_back_in = time.monotonic() - began
    notified = pending.wait()
    total = time.monotonic() - began

    assert started_in < 0.1  # start() hands the send to a thread and returns
    assert report.done
    assert world.observe().email_rules["legacy"].enabled
    # the rollback ran alongside the hanging send: the total is the longer of the two,
    # not their sum, and never more than the timeout past the rollback
    assert total < max(rolled_back_in, 1.0) + 0.5
    (slack,) = notified.deliveries
    assert not slack.ok and "no answer within 1 s" in (slack.error or "")
    assert len(hanging.requests) == 1


def test_waiting_on_a_finished_send_returns_its_report_at_once(receivers):
    slack = receivers()
    notifier = Notifier.from_spec(
        NotificationsSpec(slack=SlackSpec(webhook_url="${SLACK_URL}")), env={"SLACK_URL": slack.url}
    )
    pending = notifier.start(
        Event(kind=NotificationEvent.PHASE_COMPLETE, phase=3, summary="phase 3 complete")
    )
    report = pending.wait()
    assert report.ok and report.deliveries[0].status == 200
    began = time.monotonic()
    assert pending.wait() == report
    assert time.monotonic() - began < 0.1
