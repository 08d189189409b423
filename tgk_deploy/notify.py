"""Telling people: Slack incoming webhooks and PagerDuty Events API v2.

Notifications are a courtesy, never a dependency. ``Notifier.send`` posts to
every configured receiver at once (one thread each over one ``httpx.Client``),
waits at most the configured total timeout (2 s by default), and returns a
``NotifyReport`` the engine can journal. It never raises into the caller and
never blocks a rollback beyond that timeout: a receiver that hangs is reported
as timed out and its thread is left to die on its own read timeout.

Webhook URLs and routing keys are secrets: they come from ``${ENV}`` references,
are registered with the redactor, and never appear in a report or an error.
Everything sent goes through ``redact`` as a second line of defence.

    notifier = Notifier.from_project(spec.project)
    report = notifier.send(Event(kind=NotificationEvent.ROLLBACK_STARTED, phase=2,
                                 summary="immediate rollback of phase 2", details={...}))

    pending = notifier.start(event)   # returns at once: roll back while it sends
    ...                               # the rollback
    report = pending.wait()           # at most what is left of the timeout
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from tgk_deploy.secret_values import redact, remember
from tgk_deploy.spec.models import (
    NotificationEvent,
    NotificationsSpec,
    PagerDutySpec,
    Project,
    Severity,
    SlackSpec,
    env_ref_name,
)

SOURCE = "tgk-deploy"
_SUMMARY_LIMIT = 1024  # PagerDuty truncates payload.summary at 1024 characters
_HEADER_LIMIT = 150  # Slack header blocks take at most 150 characters
_TEXT_LIMIT = 3000  # Slack section text


class Event(BaseModel):
    """One thing worth telling people about, as the engine knows it.

    ``ok`` matters for ``rollback-finished``: True resolves the PagerDuty
    incident that ``rollback-started`` opened; False re-triggers it.
    ``trigger`` names the rollback trigger for ``trigger-fired``.
    """

    model_config = ConfigDict(frozen=True)

    kind: NotificationEvent
    summary: str
    phase: int | None = None
    step: str | None = None
    trigger: str | None = None
    environment: str = "production"
    severity: Severity = Severity.CRITICAL
    ok: bool = True
    runbook: str | None = Field(default=None, description="runbook path or URL for this event")
    details: dict[str, Any] = Field(default_factory=dict)

    def topic(self) -> str:
        """What this event is about: events on one topic share a PagerDuty dedup key."""
        if self.kind is NotificationEvent.TRIGGER_FIRED:
            return f"trigger/{self.trigger or 'unknown'}"
        if self.kind in (NotificationEvent.ROLLBACK_STARTED, NotificationEvent.ROLLBACK_FINISHED):
            return "rollback"
        if self.kind is NotificationEvent.APPROVAL_NEEDED:
            return f"approval/{self.step or 'unknown'}"
        return "complete"

    def dedup_key(self) -> str:
        """Stable per environment, phase and topic, so retries never open a second incident."""
        phase = f"phase-{self.phase}" if self.phase is not None else "no-phase"
        return f"{SOURCE}/{self.environment}/{phase}/{self.topic()}"


class Delivery(BaseModel):
    """What happened to one receiver; never holds the URL or key."""

    model_config = ConfigDict(frozen=True)

    channel: str
    ok: bool
    skipped: bool = False
    status: int | None = None
    error: str | None = None
    elapsed_ms: float = 0.0


class NotifyReport(BaseModel):
    """The outcome of one ``send``, small enough to journal."""

    model_config = ConfigDict(frozen=True)

    event: NotificationEvent
    dedup_key: str
    deliveries: list[Delivery] = Field(default_factory=list)
    elapsed_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return all(d.ok or d.skipped for d in self.deliveries)


# --------------------------------------------------------------------------- payloads (pure)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _title(event: Event) -> str:
    labels = {
        NotificationEvent.TRIGGER_FIRED: "Rollback trigger fired",
        NotificationEvent.ROLLBACK_STARTED: "Rollback started",
        NotificationEvent.ROLLBACK_FINISHED: "Rollback finished" if event.ok else "Rollback FAILED",
        NotificationEvent.PHASE_COMPLETE: "Phase complete",
        NotificationEvent.APPROVAL_NEEDED: "Approval needed",
    }
    where = f" — phase {event.phase}" if event.phase is not None else ""
    return f"tgk-deploy: {labels[event.kind]}{where} ({event.environment})"


def _next_command(event: Event) -> str | None:
    if event.kind is NotificationEvent.APPROVAL_NEEDED and event.phase and event.step:
        return f"tgk-deploy approve --phase {event.phase} --step {event.step}"
    if event.kind is NotificationEvent.TRIGGER_FIRED:
        return "tgk-deploy status"
    if event.kind is NotificationEvent.ROLLBACK_FINISHED and not event.ok:
        return "tgk-deploy rollback --immediate"
    return None


def _detail_text(value: Any) -> str:
    return redact(str(value))


def slack_payload(event: Event) -> dict[str, Any]:
    """An incoming-webhook body: ``text`` for notifications, ``blocks`` for the channel."""
    title = redact(_title(event))
    summary = redact(event.summary)
    fields = [
        {"type": "mrkdwn", "text": f"*Event*\n{event.kind.value}"},
        {"type": "mrkdwn", "text": f"*Environment*\n{event.environment}"},
    ]
    if event.phase is not None:
        fields.append({"type": "mrkdwn", "text": f"*Phase*\n{event.phase}"})
    if event.step:
        fields.append({"type": "mrkdwn", "text": f"*Step*\n{redact(event.step)}"})
    if event.trigger:
        fields.append({"type": "mrkdwn", "text": f"*Trigger*\n{redact(event.trigger)}"})
    for key, value in list(event.details.items())[: 10 - len(fields)]:
        fields.append({"type": "mrkdwn", "text": _clip(f"*{key}*\n{_detail_text(value)}", 2000)})
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(title, _HEADER_LIMIT)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _clip(summary, _TEXT_LIMIT)}},
        {"type": "section", "fields": fields},
    ]
    context = []
    command = _next_command(event)
    if command:
        context.append({"type": "mrkdwn", "text": f"next: `{command}`"})
    if event.runbook:
        context.append({"type": "mrkdwn", "text": f"runbook: {redact(event.runbook)}"})
    if context:
        blocks.append({"type": "context", "elements": context})
    return {"text": _clip(f"{title}: {summary}", _TEXT_LIMIT), "blocks": blocks}


_PD_SEVERITY = {Severity.CRITICAL: "critical", Severity.WARNING: "warning", Severity.INFO: "info"}


def pagerduty_payload(event: Event, routing_key: str) -> dict[str, Any]:
    """An Events API v2 body: trigger, or resolve when a rollback finished cleanly."""
    resolves = event.kind is NotificationEvent.ROLLBACK_FINISHED and event.ok
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "resolve" if resolves else "trigger",
        "dedup_key": event.dedup_key(),
    }
    if resolves:
        return body
    severity = _PD_SEVERITY[event.severity]
    if event.kind in (NotificationEvent.ROLLBACK_STARTED, NotificationEvent.ROLLBACK_FINISHED):
        severity = "critical"
    if event.kind in (NotificationEvent.PHASE_COMPLETE, NotificationEvent.APPROVAL_NEEDED):
        severity = "info"
    details = {key: _detail_text(value) for key, value in event.details.items()}
    details["event"] = event.kind.value
    if event.step:
        details["step"] = event.step
    if event.trigger:
        details["trigger"] = event.trigger
    command = _next_command(event)
    if command:
        details["next_command"] = command
    body["payload"] = {
        "summary": _clip(redact(f"{_title(event)}: {event.summary}"), _SUMMARY_LIMIT),
        "severity": severity,
        "source": f"{SOURCE}/{event.environment}",
        "component": f"phase-{event.phase}" if event.phase is not None else "rollout",
        "group": SOURCE,
        "class": event.kind.value,
        "custom_details": details,
    }
    if event.runbook and event.runbook.startswith(("http://", "https://")):
        body["links"] = [{"href": event.runbook, "text": "runbook"}]
    return body


# --------------------------------------------------------------------------- sending (thin I/O)


class Receiver(BaseModel):
    """One configured destination with its secret resolved (or the reason it is off)."""

    model_config = ConfigDict(frozen=True)

    channel: str
    url: str | None = Field(default=None, repr=False)
    routing_key: str | None = Field(default=None, repr=False)
    events: list[NotificationEvent]
    skipped_because: str | None = None

    def body(self, event: Event) -> dict[str, Any]:
        if self.channel == "pagerduty":
            return pagerduty_payload(event, self.routing_key or "")
        return slack_payload(event)


def _resolve(ref: str, env: Mapping[str, str]) -> tuple[str | None, str | None]:
    name = env_ref_name(ref)
    value = env.get(name)
    if not value:
        return None, f"{name} is not set"
    remember(value)
    return value, None


def _slack_receiver(spec: SlackSpec, env: Mapping[str, str]) -> Receiver:
    url, why = _resolve(spec.webhook_url, env)
    return Receiver(channel="slack", url=url, events=spec.events, skipped_because=why)


def _pagerduty_receiver(spec: PagerDutySpec, env: Mapping[str, str]) -> Receiver:
    key, why = _resolve(spec.routing_key, env)
    return Receiver(
        channel="pagerduty", url=spec.url, routing_key=key, events=spec.events, skipped_because=why
    )


def _describe_failure(error: BaseException) -> str:
    """A reason without the URL: httpx messages for status errors carry it."""
    if isinstance(error, httpx.TimeoutException):
        return f"timed out ({type(error).__name__})"
    if isinstance(error, httpx.HTTPError):
        return f"request failed ({type(error).__name__})"
    return f"unexpected {type(error).__name__}"


class Notifier:
    """Sends events to the configured receivers; configured nowhere = does nothing."""

    def __init__(
        self,
        receivers: list[Receiver],
        *,
        timeout: float = 2.0,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.receivers = receivers
        self.timeout = max(timeout, 0.05)
        self._client = client
        self._owns_client = client is None
        self._clock = clock
        self._lock = threading.Lock()

    @classmethod
    def from_spec(
        cls, spec: NotificationsSpec | None, env: Mapping[str, str] | None = None
    ) -> Notifier:
        if spec is None:
            return cls([])
        env = os.environ if env is None else env
        receivers = []
        if spec.slack is not None:
            receivers.append(_slack_receiver(spec.slack, env))
        if spec.pagerduty is not None:
            receivers.append(_pagerduty_receiver(spec.pagerduty, env))
        return cls(receivers, timeout=spec.timeout.total_seconds())

    @classmethod
    def from_project(cls, project: Project, env: Mapping[str, str] | None = None) -> Notifier:
        return cls.from_spec(project.notifications, env)

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    timeout=httpx.Timeout(self.timeout),
                    follow_redirects=False,
                    headers={"user-agent": SOURCE},
                )
            return self._client

    def close(self) -> None:
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, event: Event) -> PendingNotification:
        """Begin sending and return at once: for a rollback, which must not wait at all.

        ``wait()`` on the result later returns the report, waiting at most what
        is left of the timeout counted from this call.
        """
        started = self._clock()
        box: list[NotifyReport] = []
        thread = threading.Thread(
            target=lambda: box.append(self.send(event)), name="notify", daemon=True
        )
        thread.start()
        return PendingNotification(event, thread, box, started + self.timeout, self._clock)

    def send(self, event: Event) -> NotifyReport:
        """Post ``event`` everywhere it is wanted, concurrently; return within the timeout."""
        started = self._clock()
        try:
            return self._send(event, started)
        except Exception as error:  # a notification must never break the caller
            return NotifyReport(
                event=event.kind,
                dedup_key=event.dedup_key(),
                deliveries=[Delivery(channel="all", ok=False, error=_describe_failure(error))],
                elapsed_ms=(self._clock() - started) * 1000,
            )

    def _send(self, event: Event, started: float) -> NotifyReport:
        deliveries: dict[int, Delivery] = {}
        guard = threading.Lock()
        threads: dict[int, threading.Thread] = {}
        wanted = [r for r in self.receivers if event.kind in r.events]
        for index, receiver in enumerate(wanted):
            if receiver.skipped_because or not receiver.url:
                deliveries[index] = Delivery(
                    channel=receiver.channel,
                    ok=False,
                    skipped=True,
                    error=f"skipped: {receiver.skipped_because or 'no URL'}",
                )
                continue
            client = self._http()
            thread = threading.Thread(
                target=self._post,
                args=(client, receiver, event, index, deliveries, guard),
                name=f"notify-{receiver.channel}",
                daemon=True,
            )
            threads[index] = thread
            thread.start()
        deadline = started + self.timeout
        for index, thread in threads.items():
            thread.join(max(deadline - self._clock(), 0))
            late = Delivery(
                channel=wanted[index].channel,
                ok=False,
                error=f"no answer within {self.timeout:g} s; left behind",
                elapsed_ms=(self._clock() - started) * 1000,
            )
            with guard:
                deliveries.setdefault(index, late)
        with guard:
            results = [deliveries[i] for i in sorted(deliveries)]
        return NotifyReport(
            event=event.kind,
            dedup_key=event.dedup_key(),
            deliveries=results,
            elapsed_ms=(self._clock() - started) * 1000,
        )

    def _post(
        self,
        client: httpx.Client,
        receiver: Receiver,
        event: Event,
        index: int,
        deliveries: dict[int, Delivery],
        guard: threading.Lock,
    ) -> None:
        began = self._clock()
        try:
            response = client.post(receiver.url or "", json=receiver.body(event))
            ok = 200 <= response.status_code < 300
            result = Delivery(
                channel=receiver.channel,
                ok=ok,
                status=response.status_code,
                error=None if ok else f"HTTP {response.status_code}",
                elapsed_ms=(self._clock() - began) * 1000,
            )
        except Exception as error:
            result = Delivery(
                channel=receiver.channel,
                ok=False,
                error=_describe_failure(error),
                elapsed_ms=(self._clock() - began) * 1000,
            )
        with guard:
            deliveries.setdefault(index, result)


class PendingNotification:
    """A send under way (``Notifier.start``); ``wait`` is bounded by the notifier's timeout."""

    def __init__(
        self,
        event: Event,
        thread: threading.Thread,
        box: list[NotifyReport],
        deadline: float,
        clock: Callable[[], float],
    ) -> None:
        self.event = event
        self._thread = thread
        self._box = box
        self._deadline = deadline
        self._clock = clock

    def wait(self, timeout: float | None = None) -> NotifyReport:
        """The report, waiting at most ``timeout`` s (default: what is left of the deadline)."""
        left = max(self._deadline - self._clock(), 0.0) if timeout is None else timeout
        self._thread.join(left + 0.05)  # send() itself returns by the deadline
        if self._box:
            return self._box[0]
        return NotifyReport(
            event=self.event.kind,
            dedup_key=self.event.dedup_key(),
            deliveries=[Delivery(channel="all", ok=False, error="still sending; left behind")],
        )
