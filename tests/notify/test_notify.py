"""Notifications reach Slack and PagerDuty in their own shapes, concurrently, and never hold up a rollback."""

from __future__ import annotations

import time
from datetime import timedelta

from tgk_deploy.notify import Event, Notifier, pagerduty_payload, slack_payload
from tgk_deploy.secret_values import MASK
from tgk_deploy.spec.models import (
    NotificationEvent,
    NotificationsSpec,
    PagerDutySpec,
    Severity,
    SlackSpec,
)

KEY = "R0UT1NGKEY0123456789abcdef012345"


def _spec(pagerduty_url: str | None = None, timeout: float = 2.0) -> NotificationsSpec:
    pagerduty = None
    if pagerduty_url is not None:
        pagerduty = PagerDutySpec(
            routing_key="${PD_KEY}", url=pagerduty_url, events=list(NotificationEvent)
        )
    return NotificationsSpec(
        slack=SlackSpec(webhook_url="${SLACK_URL}"),
        pagerduty=pagerduty,
        timeout=timedelta(seconds=timeout),
    )


def _trigger_fired() -> Event:
    return Event(
        kind=NotificationEvent.TRIGGER_FIRED,
        phase=2,
        step="canary-25",
        trigger="ai-p95-slow",
        severity=Severity.WARNING,
        summary="ai-p95-slow is 12.4 (> 10 for 10m); declared response: feature-rollback ai",
        runbook="runbooks/phase-2-ai-enhancement.md#ai-p95-slow",
        details={"value": 12.4, "threshold": "> 10"},
    )


def test_slack_gets_text_and_blocks(receivers):
    slack = receivers()
    notifier = Notifier.from_spec(_spec(), env={"SLACK_URL": slack.url})

    report = notifier.send(_trigger_fired())

    assert report.ok
    assert [d.channel for d in report.deliveries] == ["slack"]
    (request,) = slack.requests
    assert request.path == "/services/T000/B000/XXXX"
    assert request.headers["Content-Type"] == "application/json"
    body = request.body
    assert set(body) == {"text", "blocks"}
    assert "Rollback trigger fired" in body["text"] and "phase 2" in body["text"]
    assert body["blocks"][0]["type"] == "header"
    assert body["blocks"][0]["text"]["type"] == "plain_text"
    fields = [f["text"] for f in body["blocks"][2]["fields"]]
    assert "*Trigger*\nai-p95-slow" in fields
    context = body["blocks"][-1]["elements"]
    assert any("tgk-deploy status" in element["text"] for element in context)


def test_pagerduty_gets_events_v2_with_stable_dedup_keys(receivers):
    pagerduty = receivers()
    notifier = Notifier.from_spec(
        _spec(pagerduty.base + "/v2/enqueue"), env={"PD_KEY": KEY, "SLACK_URL": ""}
    )
    started = Event(kind=NotificationEvent.ROLLBACK_STARTED, phase=2, summary="immediate rollback")
    finished = Event(kind=NotificationEvent.ROLLBACK_FINISHED, phase=2, summary="done in 2.1 s")

    notifier.send(_trigger_fired())
    notifier.send(started)
    notifier.send(finished)

    trigger, rollback, resolve = (r.body for r in pagerduty.requests)
    assert all(r.path == "/v2/enqueue" for r in pagerduty.requests)
    assert trigger["routing_key"] == KEY
    assert trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == "tgk-deploy/production/phase-2/trigger/ai-p95-slow"
    payload = trigger["payload"]
    assert {"summary", "severity", "source", "component", "custom_details"} <= set(payload)
    assert payload["severity"] == "warning"
    assert payload["source"] == "tgk-deploy/production"
    assert payload["component"] == "phase-2"
    assert payload["custom_details"]["trigger"] == "ai-p95-slow"
    assert rollback["event_action"] == "trigger"
    assert rollback["payload"]["severity"] == "critical"
    # the finished rollback resolves the incident the started one opened
    assert resolve == {
        "routing_key": KEY,
        "event_action": "resolve",
        "dedup_key": rollback["dedup_key"],
    }


def test_a_failed_rollback_re_triggers_instead_of_resolving():
    failed = Event(kind=NotificationEvent.ROLLBACK_FINISHED, phase=1, ok=False, summary="HTTP 500")
    body = pagerduty_payload(failed, KEY)
    assert body["event_action"] == "trigger"
    assert body["payload"]["severity"] == "critical"
    assert "FAILED" in body["payload"]["summary"]
    assert body["payload"]["custom_details"]["next_command"] == "tgk-deploy rollback --immediate"


def test_approval_needed_names_the_command_that_approves():
    event = Event(
        kind=NotificationEvent.APPROVAL_NEEDED, phase=1, step="retire-legacy", summary="waiting"
    )
    text = str(slack_payload(event))
    assert "tgk-deploy approve --phase 1 --step retire-legacy" in text
    assert event.dedup_key() == "tgk-deploy/production/phase-1/approval/retire-legacy"


def test_each_receiver_only_gets_the_events_it_asked_for(receivers):
    slack, pagerduty = receivers(), receivers()
    spec = NotificationsSpec(
        slack=SlackSpec(webhook_url="${SLACK_URL}"),
        pagerduty=PagerDutySpec(routing_key="${PD_KEY}", url=pagerduty.base + "/v2/enqueue"),
    )
    notifier = Notifier.from_spec(spec, env={"SLACK_URL": slack.url, "PD_KEY": KEY})

    report = notifier.send(
        Event(kind=NotificationEvent.PHASE_COMPLETE, phase=3, summary="phase 3 complete")
    )

    assert [d.channel for d in report.deliveries] == ["slack"]
    assert len(slack.requests) == 1 and pagerduty.requests == []


def test_an_unset_variable_skips_that_receiver(receivers):
    pagerduty = receivers()
    notifier = Notifier.from_spec(_spec(pagerduty.base + "/v2/enqueue"), env={"PD_KEY": KEY})

    report = notifier.send(_trigger_fired())

    slack = next(d for d in report.deliveries if d.channel == "slack")
    assert slack.skipped and slack.error == "skipped: SLACK_URL is not set"
    assert report.ok  # a skipped receiver is not a failure
    assert len(pagerduty.requests) == 1


def test_no_notifications_section_means_nothing_is_sent():
    report = Notifier.from_spec(None).send(_trigger_fired())
    assert report.deliveries == [] and report.ok


def test_a_receiver_answering_500_is_reported_not_raised(receivers):
    broken, pagerduty = receivers("error"), receivers()
    notifier = Notifier.from_spec(
        _spec(pagerduty.base + "/v2/enqueue"), env={"SLACK_URL": broken.url, "PD_KEY": KEY}
    )

    report = notifier.send(_trigger_fired())

    slack = next(d for d in report.deliveries if d.channel == "slack")
    assert (slack.ok, slack.status, slack.error) == (False, 500, "HTTP 500")
    assert next(d for d in report.deliveries if d.channel == "pagerduty").ok
    assert not report.ok


def test_a_hanging_receiver_cannot_hold_the_caller_past_the_timeout(receivers):
    hanging, pagerduty = receivers("hang"), receivers()
    notifier = Notifier.from_spec(
        _spec(pagerduty.base + "/v2/enqueue", timeout=1.0),
        env={"SLACK_URL": hanging.url, "PD_KEY": KEY},
    )

    began = time.monotonic()
    report = notifier.send(
        Event(kind=NotificationEvent.ROLLBACK_STARTED, phase=2, summary="immediate rollback")
    )
    took = time.monotonic() - began

    assert took < 1.5
    slack = next(d for d in report.deliveries if d.channel == "slack")
    assert not slack.ok and "within 1 s" in (slack.error or "")
    assert next(d for d in report.deliveries if d.channel == "pagerduty").ok
    assert len(hanging.requests) == 1  # it was sent; it just never answered


def test_the_default_timeout_bounds_a_hang_at_two_seconds(receivers):
    hanging = receivers("hang")
    notifier = Notifier.from_spec(_spec(), env={"SLACK_URL": hanging.url})

    began = time.monotonic()
    report = notifier.send(_trigger_fired())

    assert time.monotonic() - began < 3
    assert not report.ok


def test_sends_go_out_concurrently(receivers):
    first, second = receivers("hang"), receivers("hang")
    spec = NotificationsSpec(
        slack=SlackSpec(webhook_url="${SLACK_URL}"),
        pagerduty=PagerDutySpec(
            routing_key="${PD_KEY}", url=second.base + "/v2/enqueue", events=[*NotificationEvent]
        ),
        timeout=timedelta(seconds=1),
    )
    notifier = Notifier.from_spec(spec, env={"SLACK_URL": first.url, "PD_KEY": KEY})

    began = time.monotonic()
    notifier.send(_trigger_fired())

    assert time.monotonic() - began < 1.5  # two hangs, one timeout: not one after the other
    assert len(first.requests) == len(second.requests) == 1


def test_an_unreachable_receiver_is_reported_without_its_url(receivers):
    gone = receivers()
    url = gone.url
    gone.stop()
    notifier = Notifier.from_spec(_spec(), env={"SLACK_URL": url})

    report = notifier.send(_trigger_fired())

    (slack,) = report.deliveries
    assert not slack.ok and "ConnectError" in (slack.error or "")
    assert "127.0.0.1" not in report.model_dump_json()


def test_secret_values_never_leave_in_a_notification(receivers):
    slack = receivers()
    webhook = slack.url
    notifier = Notifier.from_spec(_spec(), env={"SLACK_URL": webhook})
    from tgk_deploy.secret_values import SecretValue

    SecretValue("OPENAI_API_KEY", "sk-live-do-not-print-0123456789")
    notifier.send(
        Event(
            kind=NotificationEvent.ROLLBACK_STARTED,
            phase=2,
            summary="rollback; the key was sk-live-do-not-print-0123456789",
            details={"echo": f"webhook {webhook}"},
        )
    )

    sent = str(slack.requests[0].body)
    assert "sk-live-do-not-print" not in sent
    assert webhook not in sent
    assert MASK in sent
