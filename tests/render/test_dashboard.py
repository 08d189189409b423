"""`tgk-deploy export dashboard`: a Grafana dashboard model whose every query reads series the Worker emits."""

from __future__ import annotations

import json
import re
from itertools import combinations

import httpx
import pytest
from typer.testing import CliRunner

from tests.fixtures.spec import REPO
from tgk_deploy.cli.app import app
from tgk_deploy.render.dashboard import grafana_dashboard

runner = CliRunner()
METRICS_JS = REPO / "wrangler" / "src" / "metrics.js"
WORKER_LABELS = {"version_id", "environment", "isolate"}  # on every series (commonLabels)


def emitted_series() -> set[str]:
    """Series names from the Worker's own metric table: histograms as _bucket/_sum/_count."""
    source = METRICS_JS.read_text()
    table = re.search(r"const HELP = \{(.*?)\n\};", source, re.S)
    assert table, "wrangler/src/metrics.js no longer declares `const HELP = {...}`"
    entries = re.findall(r'^\s*(tgk_[a-z0-9_]+):\s*\["(counter|gauge|histogram)"', table[1], re.M)
    assert len(entries) >= 10, entries
    names = set()
    for name, kind in entries:
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        else:
            names.add(name)
    return names


def emitted_labels() -> set[str]:
    """Labels the Worker puts on series: the common ones, le, and every label key it passes to inc()."""
    labels = set(WORKER_LABELS) | {"le"}
    for source in (REPO / "wrangler" / "src").glob("*.js"):
        for block in re.findall(r'\.inc\("tgk_[a-z_]+",\s*\{([^}]*)\}', source.read_text()):
            labels |= set(re.findall(r"(\w+)\s*:", block))
    return labels


@pytest.fixture(scope="module")
def dashboard(spec):
    return grafana_dashboard(spec)


def panels(dashboard):
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def exprs(dashboard):
    return [t["expr"] for p in panels(dashboard) for t in p["targets"]]


def test_the_dashboard_has_the_fields_grafana_requires(dashboard):
    assert dashboard["title"] and dashboard["uid"]
    assert len(dashboard["uid"]) <= 40 and re.fullmatch(r"[A-Za-z0-9_-]+", dashboard["uid"])
    assert dashboard["schemaVersion"] == 39
    assert isinstance(dashboard["version"], int)
    for panel in dashboard["panels"]:
        assert isinstance(panel["id"], int)
        assert panel["type"] in {"row", "timeseries", "stat"}
        assert panel["title"]
        grid = panel["gridPos"]
        assert set(grid) == {"h", "w", "x", "y"}
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24
    for panel in panels(dashboard):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids))
        for target in panel["targets"]:
            assert target["expr"].strip() and target["datasource"] == panel["datasource"]


def test_panel_ids_are_unique_and_no_two_panels_overlap(dashboard):
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))

    def cells(panel):
        g = panel["gridPos"]
        return {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }

    for a, b in combinations(dashboard["panels"], 2):
        assert not cells(a) & cells(b), f"{a['title']!r} overlaps {b['title']!r}"


def test_the_rows_cover_flow_ai_routing_and_the_rollout(dashboard):
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows[:4] == [
        "Email flow overview",
        "AI performance",
        "Routing analytics",
        "Rollout: candidate vs stable",
    ]
    rollout = [p for p in panels(dashboard) if "version" in p["title"]]
    assert rollout and all(
        "by (version_id)" in t["expr"] or "version_id)" in t["expr"]
        for p in rollout
        for t in p["targets"]
    )


def test_datasource_and_version_variables(dashboard):
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    version = variables["version"]
    assert version["type"] == "query"
    # the Worker labels series with version_id (CF_VERSION_METADATA.id), not "version"
    assert version["definition"] == "label_values(tgk_email_delivery_total, version_id)"
    used = {m for e in exprs(dashboard) for m in re.findall(r"\$(\w+)", e)}
    assert used <= set(variables), used - set(variables)


def test_every_query_names_only_series_the_worker_emits(dashboard):
    emitted = emitted_series()
    for expr in exprs(dashboard):
        named = set(re.findall(r"\btgk_[a-z0-9_]+", expr))
        assert named, f"no metric in {expr}"
        assert named <= emitted, f"{sorted(named - emitted)} not emitted by metrics.js: {expr}"


def test_every_label_a_query_groups_or_filters_by_is_one_the_worker_sets(dashboard):
    labels = emitted_labels()
    for expr in exprs(dashboard):
        used = set()
        for group in re.findall(r"\bby \(([^)]*)\)", expr):
            used |= {label.strip() for label in group.split(",")}
        used |= set(re.findall(r"(\w+)\s*=~?\s*\"", expr))
        assert used <= labels, f"{sorted(used - labels)} not set by the Worker: {expr}"


def test_every_rollback_trigger_has_a_panel_with_its_query_and_threshold(spec, dashboard):
    by_title = {p["title"]: p for p in panels(dashboard)}
    for phase in spec.phases:
        for trigger in phase.rollback_triggers:
            title = (
                f"Phase {phase.phase}: {trigger.name} ({trigger.op.value} {trigger.threshold:g})"
            )
            panel = by_title[title]
            assert panel["targets"][0]["expr"] == " ".join(trigger.query.split()).replace(
                "{{environment}}", "$environment"
            )
            steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
            assert trigger.threshold in [s["value"] for s in steps]
            assert f"#{trigger.name}" in panel["description"]


def test_export_dashboard_writes_json_a_file_or_stdout(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    printed = runner.invoke(app, ["export", "dashboard"])
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.stdout)["schemaVersion"] == 39
    target = tmp_path / "dashboard.json"
    written = runner.invoke(app, ["export", "dashboard", "--output", str(target)])
    assert written.exit_code == 0
    assert json.loads(target.read_text()) == json.loads(printed.stdout)
    assert "panels" in written.stderr


@pytest.mark.prometheus
def test_every_query_is_promql_a_real_prometheus_accepts(dashboard, prometheus):
    """Variables as Grafana would fill them (all values); a parse error is HTTP 400."""
    with httpx.Client(base_url=prometheus.url, timeout=10) as http:
        for expr in exprs(dashboard):
            concrete = re.sub(r"\$(environment|version)\b", ".*", expr)
            concrete = re.sub(r"\$(candidate|stable)\b", "v1", concrete)
            answer = http.get("/api/v1/query", params={"query": concrete})
            assert answer.status_code == 200, (expr, answer.text)
            assert answer.json()["status"] == "success"
