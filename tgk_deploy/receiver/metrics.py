"""What the receiver has heard and done, as Prometheus text for its own /metrics.

A handful of counters and one histogram do not need a client library: the
exposition format is plain text, written here under one lock.
"""

from __future__ import annotations

import threading
from collections import Counter

PREFIX = "tgk_deploy_receiver"
LATENCY_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class ReceiverMetrics:
    """Alerts received (by status), acted on (by response), ignored (by reason), failed,
    requests refused (by HTTP code), and the time from an alert's arrival to its response done."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: Counter[str] = Counter()
        self._acted: Counter[str] = Counter()
        self._ignored: Counter[str] = Counter()
        self._failed: Counter[str] = Counter()
        self._refused: Counter[str] = Counter()
        self._buckets = [0] * len(LATENCY_BUCKETS)
        self._latency_sum = 0.0
        self._latency_count = 0

    def received(self, status: str) -> None:
        with self._lock:
            self._received[status] += 1

    def acted(self, response: str, seconds: float) -> None:
        with self._lock:
            self._acted[response] += 1
            self._latency_sum += seconds
            self._latency_count += 1
            for index, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    self._buckets[index] += 1

    def ignored(self, reason: str) -> None:
        with self._lock:
            self._ignored[reason] += 1

    def failed(self, response: str) -> None:
        with self._lock:
            self._failed[response] += 1

    def refused(self, code: int) -> None:
        with self._lock:
            self._refused[str(code)] += 1

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            for name, label, counts, help_text in (
                ("alerts_received_total", "status", self._received, "Alerts heard, by status."),
                ("alerts_acted_total", "response", self._acted, "Responses run, by kind."),
                ("alerts_ignored_total", "reason", self._ignored, "Alerts acknowledged only."),
                ("alerts_failed_total", "response", self._failed, "Responses that failed."),
                (
                    "requests_refused_total",
                    "code",
                    self._refused,
                    "Requests refused, by HTTP code.",
                ),
            ):
                lines += [f"# HELP {PREFIX}_{name} {help_text}", f"# TYPE {PREFIX}_{name} counter"]
                lines += [
                    f'{PREFIX}_{name}{{{label}="{_escape(key)}"}} {value}'
                    for key, value in sorted(counts.items())
                ]
            name = f"{PREFIX}_action_latency_seconds"
            lines += [
                f"# HELP {name} From an alert's arrival to its response done (verified).",
                f"# TYPE {name} histogram",
            ]
            lines += [
                f'{name}_bucket{{le="{bound:g}"}} {count}'
                for bound, count in zip(LATENCY_BUCKETS, self._buckets, strict=True)
            ]
            lines += [
                f'{name}_bucket{{le="+Inf"}} {self._latency_count}',
                f"{name}_sum {self._latency_sum:.6f}",
                f"{name}_count {self._latency_count}",
            ]
        return "\n".join(lines) + "\n"
