"""Triggers that compare the candidate with the stable version render in runbooks and dashboards."""

from __future__ import annotations

import re

from tgk_deploy.render.dashboard import grafana_dashboard
from tgk_deploy.render.runbooks import heading_anchors, render_runbooks
from tgk_deploy.spec.models import Phase, Spec

CANDIDATE_ERRORS = (
    'sum(rate(tgk_email_delivery_total{status="failed", version_id="{{candidate}}"}[15m]))'
    ' / sum(rate(tgk_email_delivery_total{version_id="{{candidate}}"}[15m]))'
)
STABLE_ERRORS = (
    'sum(rate(tgk_email_delivery_total{status="failed", version_id="{{stable}}"}[15m]))'
    ' / sum(rate(tgk_email_delivery_total{version_id="{{stable}}"}[15m]))'
)


def with_relative_trigger(spec: Spec) -> Spec:
    phase = spec.phase(1).model_dump(by_alias=True)
    phase["rollback_triggers"] = [
        {
            "name": "candidate-failing-more",
            "description": "the candidate fails twice as much mail as stable",
            "query": CANDIDATE_ERRORS,
            "relative_to": STABLE_ERRORS,
            "op": ">",
            "threshold": 2,
            "for": "10m",
            "response": "gradual-rollback",
        }
    ]
    return spec.model_copy(update={"phases": [Phase.model_validate(phase)]})


def test_the_runbook_explains_a_relative_threshold_and_the_version_placeholders(spec):
    page = render_runbooks(with_relative_trigger(spec))["phase-1-foundation.md"]
    section = page.split("### candidate-failing-more", 1)[1]
    assert "candidate-failing-more" in heading_anchors(page)
    assert "Fires when value > 2 times the baseline query below, holding for 10m" in section
    assert "Baseline:" in section and 'version_id="{{stable}}"' in section
    assert "`{{candidate}}` and `{{stable}}` are the live version ids" in section
    assert "gradual rollback: the candidate's share goes 75 % → 50 % → 25 % → 0 %" in section
    assert "tgk-deploy rollback --gradual --yes" in section


def test_the_dashboard_draws_candidate_against_threshold_times_baseline(spec):
    dashboard = grafana_dashboard(with_relative_trigger(spec))
    panel = next(p for p in dashboard["panels"] if "candidate-failing-more" in p["title"])
    candidate, bound = (t["expr"] for t in panel["targets"])
    assert '"$candidate"' in candidate and "{{" not in candidate
    assert bound.startswith("2.0 * (") and '"$stable"' in bound
    variables = {v["name"]: v["type"] for v in dashboard["templating"]["list"]}
    assert variables["candidate"] == variables["stable"] == "textbox"
    used = {m for t in panel["targets"] for m in re.findall(r"\$(\w+)", t["expr"])}
    assert used <= set(variables)
