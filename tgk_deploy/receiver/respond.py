"""One worker takes the alerts in the order they came and runs each declared response.

Deliveries are serialised twice: one worker thread in this process, and the
engine's run lock (beside the journal) around observe-decide-respond, which a
second receiver sharing the project directory (an HA pair on one host) or an
``advance`` applying a step waits for. Each alert is decided against a fresh
read of Cloudflare taken under that lock, so the second of two identical
alerts finds the response done and changes nothing. The response itself is
the engine's (``perform_response``): the same code ``advance`` runs when a
trigger fires.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from tgk_deploy.engine.context import Context, new_run_id
from tgk_deploy.errors import ConflictError, TgkError
from tgk_deploy.receiver.decide import Decision, Reason, Target, judge, match
from tgk_deploy.receiver.metrics import ReceiverMetrics
from tgk_deploy.receiver.payload import Alert, Notification
from tgk_deploy.spec.models import ResponseKind

LogLine = Callable[[dict[str, Any]], None]


class ShuttingDown(Exception):
    """The receiver is draining its queue to stop: Alertmanager should send again later."""


@dataclass(frozen=True)
class Settings:
    environments: frozenset[str] = frozenset({"production"})
    max_age: timedelta = timedelta(hours=1)
    dry_run: bool = False
    lock_wait: float = 900.0  # seconds a response waits for another run's lock
    # the second of an HA pair on another host (no shared run lock) waits this long, so that
    # it finds the first one's response done and acts only if the first did not
    standby: timedelta = timedelta(0)


class Handled(BaseModel):
    """What became of one alert: the journal entry, the log line, what tests read."""

    alert: str
    fingerprint: str
    outcome: str  # acted, planned (dry run), ignored, failed
    reason: str | None = None
    why: str = ""
    phase: int | None = None
    trigger: str | None = None
    environment: str | None = None
    response: str | None = None
    run_id: str | None = None  # the response's own run in the journal
    seconds: float | None = None  # from arrival to the response done
    result: dict[str, Any] | None = None


class Responder:
    def __init__(
        self,
        base: Context,
        settings: Settings,
        *,
        metrics: ReceiverMetrics | None = None,
        log: LogLine = lambda line: None,
    ) -> None:
        self.base = base
        self.settings = settings
        self.metrics = metrics or ReceiverMetrics()
        self.log = log
        self.handled: deque[Handled] = deque(maxlen=1000)
        self._queue: queue.Queue[tuple[Alert, float] | None] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._accepting = True
        self._halts: set[tuple[str, str]] = set()  # halts already announced: (fingerprint, start)
        self._thread = threading.Thread(target=self._work, name="tgk-receiver", daemon=True)

    # ------------------------------------------------------------ the HTTP side

    def start(self) -> Responder:
        self._thread.start()
        return self

    def submit(self, notification: Notification) -> int:
        """Queue every alert of one webhook call; returns how many were queued."""
        if not self._accepting:
            raise ShuttingDown("the receiver is stopping")
        arrived = time.monotonic()
        with self._idle:
            self._pending += len(notification.alerts)
        for alert in notification.alerts:
            self.metrics.received(alert.status.value)
            self._queue.put((alert, arrived))
        return len(notification.alerts)

    @property
    def queued(self) -> int:
        with self._idle:
            return self._pending

    @property
    def stopping(self) -> bool:
        return not self._accepting

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Until every queued alert is handled (tests, benchmarks, shutdown)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def stop(self, timeout: float | None = None) -> bool:
        """Take no more alerts, finish those queued (a rollback in progress included), stop."""
        self._accepting = False
        self._queue.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # ------------------------------------------------------------ the worker

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            alert, arrived = item
            try:
                self._handle(alert, arrived)
            except Exception as error:  # one bad alert must not stop the receiver
                self._record(alert, "failed", why=f"{type(error).__name__}: {error}")
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _handle(self, alert: Alert, arrived: float) -> None:
        spec, settings = self.base.spec, self.settings
        decision = match(
            alert,
            spec,
            environments=settings.environments,
            max_age=settings.max_age,
            now=self.base.clock.now(),
        )
        if not decision.act:
            self._record(alert, "ignored", decision=decision)
            return
        target = decision.target
        assert target is not None
        if settings.standby:
            # wall time, not the engine's clock: this is about the other receiver's progress
            remaining = settings.standby.total_seconds() - (time.monotonic() - arrived)
            time.sleep(max(0.0, remaining))
        ctx = replace(self.base, run_id=new_run_id(), pending=[])
        try:
            with self._run_lock(ctx):
                decision = judge(target, spec, ctx.observe())
                halt_key = (alert.fingerprint, alert.starts_at.isoformat())
                halt = target.response.action is ResponseKind.HALT
                if decision.act and halt and halt_key in self._halts:
                    why = "this alert's halt was already announced"
                    decision = Decision(target=target, reason=Reason.ALREADY_DONE, why=why)
                if not decision.act:
                    self._record(alert, "ignored", decision=decision)
                    return
                result = self._respond(ctx, alert, target)
                seconds = time.monotonic() - arrived  # the engine verified it by a re-read
                if halt and not settings.dry_run:
                    self._halts.add(halt_key)
        except TgkError as error:
            hint = f" ({error.hint})" if error.hint else ""
            self._record(alert, "failed", decision=decision, why=error.message + hint, run=ctx)
            return
        finally:
            ctx.finish_notifications()
        outcome = "planned" if settings.dry_run else "acted"
        self._record(alert, outcome, decision=decision, run=ctx, seconds=seconds, result=result)

    def _respond(self, ctx: Context, alert: Alert, target: Target) -> dict[str, Any]:
        """As ``advance`` does when a trigger fires: announce it, then run the declared response."""
        from tgk_deploy.engine.advance import perform_response

        response = target.response
        message = (
            f"alert {alert.name} fired: phase {target.phase} {target.trigger}; "
            f"response: {response.action.value}"
        )
        ctx.emit("response", message)
        if not self.settings.dry_run:
            ctx.notify("trigger-fired", message, phase=target.phase)
        return perform_response(
            ctx, response, dry_run=self.settings.dry_run, environment=target.environment
        )

    def _run_lock(self, ctx: Context) -> ExitStack:
        """The engine's run lock, waited for: another receiver or an advance may hold it briefly."""
        from tgk_deploy.engine.lock import run_lock

        deadline = time.monotonic() + self.settings.lock_wait
        while True:
            stack = ExitStack()
            try:
                stack.enter_context(run_lock(ctx.lock_path, ctx.run_id, "serve (alert response)"))
                return stack
            except ConflictError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    # ------------------------------------------------------------ journal, log, metrics

    def refused(self, code: int, client: str, why: str) -> None:
        """A request refused before any alert was read (401, 400, 411, 413): nothing acted on."""
        self.metrics.refused(code)
        self.log({"event": "refused", "code": code, "client": client, "why": why})
        if self.base.journal is not None:
            self.base.journal.action(
                self.base.run_id,
                "request",
                f"request from {client} refused ({code}): {why}",
                "refused",
                result={"code": code, "client": client},
            )

    def _record(
        self,
        alert: Alert,
        outcome: str,
        *,
        decision: Decision | None = None,
        why: str = "",
        run: Context | None = None,
        seconds: float | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        target = decision.target if decision else None
        reason = decision.reason.value if decision and decision.reason else None
        response = target.response.action.value if target else None
        handled = Handled(
            alert=alert.name,
            fingerprint=alert.fingerprint,
            outcome=outcome,
            reason=reason,
            why=why or (decision.why if decision else ""),
            phase=target.phase if target else None,
            trigger=target.trigger if target else None,
            environment=target.environment if target else None,
            response=response,
            run_id=run.run_id if run and outcome != "ignored" else None,
            seconds=round(seconds, 3) if seconds is not None else None,
            result=result,
        )
        self.handled.append(handled)
        if outcome == "ignored":
            self.metrics.ignored(reason or "unknown")
        elif outcome == "failed":
            self.metrics.failed(response or "unknown")
        elif outcome == "acted" and seconds is not None:
            self.metrics.acted(response or "unknown", seconds)
        line = handled.model_dump(mode="json", exclude={"result"}, exclude_none=True)
        self.log({"event": "alert", **line})
        journal = self.base.journal
        if journal is not None:
            description = f"alert {alert.name}: {outcome}" + (f" ({reason})" if reason else "")
            journal.action(
                self.base.run_id,
                "alert",
                f"{description}: {handled.why}",
                outcome,
                handled.environment,
                result=line,
            )
