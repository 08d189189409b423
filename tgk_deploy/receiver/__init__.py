"""Hear Alertmanager, run the declared response: rollbacks between ``advance`` runs.

The data flow, one module each:

    http.py      the thin HTTP part: bind, authenticate, bound the body, /healthz, /metrics
       |
    payload.py   Alertmanager's webhook (version 4) -> alerts, or a clear 400
       |
    decide.py    pure: an alert + the spec + what Cloudflare says -> act (which response) or
       |         ignore (why): resolved, not ours, environment not owned, stale, phase not live,
       |         version no longer the candidate, already done
    respond.py   one worker, so deliveries are serialised: observe, decide, take the run lock,
       |         run the response through the engine (``perform_response``), journal, notify
    metrics.py   counters and the action latency, as Prometheus text

Cloudflare stays the source of truth: every alert is decided against a fresh
read, so Alertmanager's re-sends and a second receiver (an HA pair) find the
response already done and change nothing.
"""

WEBHOOK_PATH = "/alerts"
"""Where Alertmanager posts; ``tgk-deploy export alertmanager`` writes it into the URL."""
