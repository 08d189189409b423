"""A Grafana dashboard for the Email Worker, made from the spec: ``tgk-deploy export dashboard``.

Pure: the spec in, a dashboard model (a dict ready for ``json.dumps``) out.
Four rows of fixed panels (email flow, AI, routing, the rollout's candidate
vs stable split by ``version_id``) and one row with a panel per rollback
trigger, drawn from the phase files with its threshold as a line. Every query
names only series the Worker emits (``wrangler/src/metrics.js``); a test
holds the two together. Queries filter on the ``$environment`` and
``$version`` template variables; the data source is the ``$datasource``
variable, so the JSON imports into any Grafana with a Prometheus.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tgk_deploy.spec.models import Comparison, Phase, Spec, Trigger, format_duration
from tgk_deploy.triggers.alerts import alert_name, runbook_anchor

SCHEMA_VERSION = 39
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SELECTOR = 'environment=~"$environment", version_id=~"$version"'
WIDTH = 24  # Grafana's grid is 24 columns wide
ROW_HEIGHT = 1
PANEL_HEIGHT = 8


def _sel(extra: str = "") -> str:
    return "{" + SELECTOR + (", " + extra if extra else "") + "}"


DELIVERED = 'status="delivered"'
ROUTED = 'status=~"delivered|fallback|failed"'  # mail meant for Telegram: not rejected/unrouted
RESPONDER = 'outcome="responder"'


@dataclass
class PanelSpec:
    """What a panel shows; the layout decides where."""

    title: str
    kind: str  # "timeseries" or "stat"
    targets: list[tuple[str, str]]  # (expr, legendFormat)
    unit: str = "short"
    description: str = ""
    width: int = 8
    thresholds: list[tuple[float, str]] = field(default_factory=list)
    threshold_line: bool = False
    min: float | None = None
    max: float | None = None


def _email_flow() -> list[PanelSpec]:
    return [
        PanelSpec(
            "Delivery rate (1h)",
            "stat",
            [
                (
                    f"(sum(increase(tgk_email_delivery_total{_sel(DELIVERED)}[1h])) or vector(0))"
                    f" / sum(increase(tgk_email_delivery_total{_sel(ROUTED)}[1h]))",
                    "delivered",
                )
            ],
            unit="percentunit",
            description="Delivered to Telegram, of the mail routed to it (fallbacks and failures count against).",
            width=6,
            thresholds=[(0, "red"), (0.995, "orange"), (0.999, "green")],
        ),
        PanelSpec(
            "Emails per minute",
            "stat",
            [(f"sum(rate(tgk_email_delivery_total{_sel()}[5m])) * 60", "emails/min")],
            width=6,
        ),
        PanelSpec(
            "Emails by outcome",
            "timeseries",
            [(f"sum by (status) (rate(tgk_email_delivery_total{_sel()}[5m]))", "{{status}}")],
            unit="reqps",
            width=12,
        ),
        PanelSpec(
            "Routing latency",
            "timeseries",
            [
                (
                    f"histogram_quantile({q}, sum by (le) "
                    f"(rate(tgk_email_routing_duration_seconds_bucket{_sel()}[5m])))",
                    f"p{round(q * 100)}",
                )
                for q in (0.5, 0.95, 0.99)
            ],
            unit="s",
            description="Receipt to delivery decision carried out.",
            width=12,
        ),
        PanelSpec(
            "Routing failures",
            "timeseries",
            [(f"sum(increase(tgk_email_route_failures_total{_sel()}[1h]))", "failures / 1h")],
            description="Routing table or KV lookups that failed.",
            width=12,
        ),
    ]


def _ai() -> list[PanelSpec]:
    return [
        PanelSpec(
            "AI processing latency",
            "timeseries",
            [
                (
                    f"histogram_quantile({q}, sum by (le) "
                    f"(rate(tgk_email_ai_processing_seconds_bucket{_sel()}[5m])))",
                    f"p{round(q * 100)}",
                )
                for q in (0.5, 0.95)
            ],
            unit="s",
            width=12,
        ),
        PanelSpec(
            "AI model-reported confidence (1h mean; not accuracy)",
            "stat",
            [
                (
                    f"sum(increase(tgk_email_ai_confidence_sum{_sel()}[1h]))"
                    f" / sum(increase(tgk_email_ai_confidence_count{_sel()}[1h]))",
                    "confidence",
                )
            ],
            unit="percentunit",
            width=6,
            thresholds=[(0, "red"), (0.7, "orange"), (0.85, "green")],
        ),
        PanelSpec(
            "PII texts blocked (1h)",
            "stat",
            [(f"sum(increase(tgk_email_pii_blocked_total{_sel()}[1h])) or vector(0)", "blocked")],
            description="Texts that still looked personal after redaction: not sent; any halts.",
            width=6,
            thresholds=[(0, "green"), (1, "red")],
        ),
        PanelSpec(
            "AI failures by reason",
            "timeseries",
            [(f"sum by (reason) (rate(tgk_email_ai_failures_total{_sel()}[5m]))", "{{reason}}")],
            unit="reqps",
            width=12,
        ),
        PanelSpec(
            "AI analyses per minute",
            "timeseries",
            [(f"sum(rate(tgk_email_ai_processing_seconds_count{_sel()}[5m])) * 60", "analyses")],
            width=12,
        ),
    ]


def _routing() -> list[PanelSpec]:
    return [
        PanelSpec(
            "On-call lookups naming a reachable responder",
            "timeseries",
            [
                (
                    f"sum(rate(tgk_email_oncall_lookups_total{_sel(RESPONDER)}[15m]))"
                    f" / sum(rate(tgk_email_oncall_lookups_total{_sel()}[15m]))",
                    "responder share",
                )
            ],
            unit="percentunit",
            min=0,
            max=1,
            width=12,
        ),
        PanelSpec(
            "External API failure ratio",
            "timeseries",
            [
                (
                    f"sum by (api) (rate(tgk_email_external_api_failures_total{_sel()}[10m]))"
                    f" / sum by (api) (rate(tgk_email_external_api_requests_total{_sel()}[10m]))",
                    "{{api}}",
                )
            ],
            unit="percentunit",
            width=12,
        ),
        PanelSpec(
            "External API calls",
            "timeseries",
            [
                (
                    f"sum by (api) (rate(tgk_email_external_api_requests_total{_sel()}[5m]))",
                    "{{api}}",
                )
            ],
            unit="reqps",
            width=8,
        ),
        PanelSpec(
            "Replies by status",
            "timeseries",
            [(f"sum by (status) (rate(tgk_email_reply_total{_sel()}[5m]))", "{{status}}")],
            unit="reqps",
            width=8,
        ),
        PanelSpec(
            "Webhook auth failures and rate limiting (1h; anyone can raise these)",
            "timeseries",
            [
                (
                    f"sum(increase(tgk_email_webhook_auth_failures_total{_sel()}[1h]))",
                    "auth failures",
                ),
                (f"sum(increase(tgk_email_reply_rate_limited_total{_sel()}[1h]))", "rate limited"),
            ],
            width=8,
        ),
    ]


def _rollout() -> list[PanelSpec]:
    return [
        PanelSpec(
            "Traffic share by version",
            "timeseries",
            [
                (
                    f"sum by (version_id) (rate(tgk_email_delivery_total{_sel()}[5m]))"
                    ' / scalar(sum(rate(tgk_email_delivery_total{environment=~"$environment"}[5m])))',
                    "{{version_id}}",
                )
            ],
            unit="percentunit",
            description="The candidate vs stable split as mail sees it.",
            min=0,
            max=1,
            width=12,
        ),
        PanelSpec(
            "Delivery rate by version",
            "timeseries",
            [
                (
                    f"sum by (version_id) (rate(tgk_email_delivery_total{_sel(DELIVERED)}[15m]))"
                    f" / sum by (version_id) (rate(tgk_email_delivery_total{_sel()}[15m]))",
                    "{{version_id}}",
                )
            ],
            unit="percentunit",
            width=12,
        ),
        PanelSpec(
            "Routing p95 by version",
            "timeseries",
            [
                (
                    "histogram_quantile(0.95, sum by (le, version_id) "
                    f"(rate(tgk_email_routing_duration_seconds_bucket{_sel()}[15m])))",
                    "{{version_id}}",
                )
            ],
            unit="s",
        ),
        PanelSpec(
            "AI p95 by version",
            "timeseries",
            [
                (
                    "histogram_quantile(0.95, sum by (le, version_id) "
                    f"(rate(tgk_email_ai_processing_seconds_bucket{_sel()}[15m])))",
                    "{{version_id}}",
                )
            ],
            unit="s",
        ),
        PanelSpec(
            "Routing failures by version (1h)",
            "timeseries",
            [
                (
                    f"sum by (version_id) (increase(tgk_email_route_failures_total{_sel()}[1h]))",
                    "{{version_id}}",
                )
            ],
        ),
    ]


_PLACEHOLDER = re.compile(r"\{\{\s*(candidate|stable|environment)\s*\}\}")


def _grafana_query(query: str) -> str:
    """A phase-file query for Grafana: one line, ``{{candidate}}`` as ``$candidate`` (and so on)."""
    return _PLACEHOLDER.sub(r"$\1", " ".join(query.split()))


def _trigger_panel(phase: Phase, trigger: Trigger) -> PanelSpec:
    """The trigger's own query, unfiltered: what `advance` and the alert rule judge."""
    op = trigger.op
    bad = "red"
    good = "green"
    if trigger.relative_to:
        targets = [
            (_grafana_query(trigger.query), trigger.name),
            (
                f"{trigger.threshold!r} * ({_grafana_query(trigger.relative_to)})",
                "threshold x baseline",
            ),
        ]
        steps: list[tuple[float, str]] = []
    else:
        targets = [(_grafana_query(trigger.query), trigger.name)]
        below_is_bad = op in (Comparison.LT, Comparison.LE)
        steps = (
            [(0, bad), (trigger.threshold, good)]
            if below_is_bad
            else [(0, good), (trigger.threshold, bad)]
        )
    window = f" for {format_duration(trigger.for_)}" if trigger.for_ else ""
    return PanelSpec(
        f"Phase {phase.phase}: {trigger.name} ({op.value} {trigger.threshold:g})",
        "timeseries",
        targets,
        description=(
            f"Alert {alert_name(phase, trigger)}. "
            + (trigger.description + ". " if trigger.description else "")
            + f"Fires when {op.value} {trigger.threshold:g}{window}. "
            f"Runbook: {runbook_anchor(phase, trigger)}"
        ),
        thresholds=steps,
        threshold_line=bool(steps),
    )


def _trigger_panels(spec: Spec) -> list[PanelSpec]:
    return [
        _trigger_panel(phase, trigger)
        for phase in spec.phases
        for trigger in phase.rollback_triggers
    ]


# --------------------------------------------------------------------------- model


def _panel_model(panel_id: int, panel: PanelSpec, x: int, y: int) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit}
    if panel.min is not None:
        defaults["min"] = panel.min
    if panel.max is not None:
        defaults["max"] = panel.max
    if panel.thresholds:
        defaults["thresholds"] = {
            "mode": "absolute",
            "steps": [
                {"color": color, "value": None if index == 0 else value}
                for index, (value, color) in enumerate(panel.thresholds)
            ],
        }
    if panel.kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 10,
            "showPoints": "never",
            "spanNulls": False,
            "thresholdsStyle": {"mode": "line" if panel.threshold_line else "off"},
        }
        options: dict[str, Any] = {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    else:
        options = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": "auto",
        }
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": PANEL_HEIGHT, "w": panel.width, "x": x, "y": y},
        "targets": [
            {
                "refId": chr(ord("A") + index),
                "datasource": DATASOURCE,
                "expr": expr,
                "legendFormat": legend,
                "range": True,
            }
            for index, (expr, legend) in enumerate(panel.targets)
        ],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
    }


def _layout(rows: list[tuple[str, list[PanelSpec]]]) -> list[dict[str, Any]]:
    """Rows top to bottom; panels left to right, wrapping at 24 columns."""
    panels: list[dict[str, Any]] = []
    next_id = 1
    y = 0
    for title, specs in rows:
        panels.append(
            {
                "id": next_id,
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"h": ROW_HEIGHT, "w": WIDTH, "x": 0, "y": y},
                "panels": [],
            }
        )
        next_id += 1
        y += ROW_HEIGHT
        x = 0
        for spec in specs:
            if x + spec.width > WIDTH:
                x = 0
                y += PANEL_HEIGHT
            panels.append(_panel_model(next_id, spec, x, y))
            next_id += 1
            x += spec.width
        if x:
            y += PANEL_HEIGHT
    return panels


def _variables(uses_versions: bool) -> list[dict[str, Any]]:
    def query_variable(name: str, label: str, query: str, *, all_value: bool) -> dict[str, Any]:
        return {
            "type": "query",
            "name": name,
            "label": label,
            "datasource": DATASOURCE,
            "definition": query,
            "query": {"query": query, "refId": f"{name}-values", "qryType": 1},
            "refresh": 2,
            "sort": 1,
            "multi": True,
            "includeAll": all_value,
            "allValue": ".*" if all_value else None,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]}
            if all_value
            else {},
            "options": [],
            "hide": 0,
        }

    variables: list[dict[str, Any]] = [
        {
            "type": "datasource",
            "name": "datasource",
            "label": "Prometheus",
            "query": "prometheus",
            "regex": "",
            "refresh": 1,
            "current": {},
            "options": [],
            "hide": 0,
        },
        query_variable(
            "environment",
            "Environment",
            "label_values(tgk_email_delivery_total, environment)",
            all_value=True,
        ),
        query_variable(
            "version",
            "Version",
            "label_values(tgk_email_delivery_total, version_id)",
            all_value=True,
        ),
    ]
    if uses_versions:
        for name in ("candidate", "stable"):
            variables.append(
                {
                    "type": "textbox",
                    "name": name,
                    "label": f"{name} version id",
                    "query": "",
                    "current": {"text": "", "value": ""},
                    "options": [],
                    "hide": 0,
                }
            )
    return variables


def grafana_dashboard(spec: Spec) -> dict[str, Any]:
    """The dashboard model (Grafana schemaVersion 39)."""
    script = spec.project.environments["production"].script
    trigger_panels = _trigger_panels(spec)
    uses_versions = any(
        "$candidate" in e or "$stable" in e for p in trigger_panels for e, _ in p.targets
    )
    return {
        "uid": f"tgk-deploy-{script}"[:40],
        "title": f"{script}: email flow and rollout",
        "description": "Generated by tgk-deploy export dashboard from tgk-deploy.yaml and phases/*.yaml.",
        "tags": ["tgk-deploy", "cloudflare-workers", "email"],
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "timezone": "utc",
        "refresh": "1m",
        "time": {"from": "now-6h", "to": "now"},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "links": [],
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "templating": {"list": _variables(uses_versions)},
        "panels": _layout(
            [
                ("Email flow overview", _email_flow()),
                ("AI performance", _ai()),
                ("Routing analytics", _routing()),
                ("Rollout: candidate vs stable", _rollout()),
                ("Rollback triggers (from the phase files)", trigger_panels),
            ]
        ),
    }
