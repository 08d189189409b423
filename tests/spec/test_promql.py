"""Queries in phase files are parsed offline, located inside the query, and read real series."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.spec import REPO
from tests.spec.test_load import VALID_PHASE, only_problem, write
from tgk_deploy.spec.promql import check_query, queries, worker_metrics
from tgk_deploy.spec.source import read_yaml

METRICS_JS = REPO / "wrangler" / "src" / "metrics.js"

# Expressions people write, right and wrong; promtool (Prometheus' own parser) is the judge.
EXPRESSIONS = [
    "sum(rate(tgk_email_delivery_total[5m]))",
    'sum(rate(tgk_email_delivery_total{status="delivered"}[5m])) / sum(rate(tgk_email_delivery_total[5m]))',
    "histogram_quantile(0.95, sum by (le) (rate(tgk_email_ai_processing_seconds_bucket[10m])))",
    "sum((tgk_email_delivery_total - tgk_email_delivery_total offset 1h) or tgk_email_delivery_total)",
    "max_over_time(tgk_email_reply_total[1h:5m])",
    "vector(0)",
    "sum(rate(tgk_email_delivery_total[5 minutes]))",
    "sum(rate(tgk_email_delivery_total[5m])",
    "sum(rate(tgk_email_delivery_total[5m])))",
    'tgk_email_delivery_total{status="delivered}',
    "rate(tgk_email_delivery_total)",
    "sum(tgk_email_delivery_total) by",
    "percentile(0.9, tgk_email_delivery_total)",
    "tgk_email_delivery_total +",
    "tgk_email_delivery_total[5m",
]


def _promtool_accepts(expression: str, tmp_path: Path) -> bool:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        json.dumps({"groups": [{"name": "g", "rules": [{"alert": "A", "expr": expression}]}]})
    )
    done = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True)
    return done.returncode == 0


@pytest.mark.prometheus
@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool (Debian prometheus) missing")
@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_validate_accepts_exactly_what_promtool_accepts(tmp_path, expression):
    ours = not check_query(expression, None)
    assert ours == _promtool_accepts(expression, tmp_path), check_query(expression, None)


def test_every_query_of_the_real_phase_files_parses():
    count = 0
    for path in sorted((REPO / "phases").glob("*.yaml")):
        from tgk_deploy.spec.load import validate_model
        from tgk_deploy.spec.models import Phase

        located = read_yaml(path)
        phase = validate_model(located, Phase)
        for at, query in queries(phase):
            count += 1
            assert check_query(query, None) == [], (path, at)
    assert count >= 15


@pytest.mark.node
@pytest.mark.skipif(not shutil.which("node"), reason="node missing")
def test_metric_names_are_the_workers_own_table():
    """What node imports from metrics.js, not what our regular expression reads."""
    script = (
        f"import({json.dumps(str(METRICS_JS))})"
        ".then(m => console.log(JSON.stringify(Object.entries(m.HELP).map(([k, v]) => [k, v[0]]))))"
    )
    done = subprocess.run(["node", "-e", script], capture_output=True, text=True, check=True)
    expected = set()
    for name, kind in json.loads(done.stdout):
        suffixes = ("_bucket", "_sum", "_count") if kind == "histogram" else ("",)
        expected |= {name + suffix for suffix in suffixes}
    assert worker_metrics(METRICS_JS) == expected


def test_a_misspelt_metric_is_named_with_a_suggestion():
    known = worker_metrics(METRICS_JS)
    [(offset, message)] = check_query("sum(rate(tgk_email_delivery_totl[5m]))", known)
    assert offset == len("sum(rate(")
    assert (
        "tgk_email_delivery_totl" in message and "did you mean tgk_email_delivery_total" in message
    )


def test_placeholders_are_filled_before_parsing_and_offsets_stay_true():
    query = 'sum(rate(x{version_id="{{candidate}}"}[5 m]))'
    [(offset, message)] = check_query(query, None)
    assert query[offset] == "m" and "brackets" in message


@pytest.mark.parametrize(
    ("query_yaml", "line", "column"),
    [
        # one line, plain: the column of the bad character in the file
        ("    query: sum(rate(tgk_email_delivery_total[5 minutes]))\n", 17, 48),
        # folded block: the error is on the second line of the query
        (
            "    query: >\n      sum(rate(tgk_email_delivery_total[5m]))\n"
            "      / sum(rate(tgk_email_delivery_total[5 minutes]))\n",
            19,
            45,
        ),
        # double-quoted with escapes
        (
            '    query: "sum(rate(tgk_email_delivery_total{status=\\"x\\"}[5 minutes]))"\n',
            17,
            63,
        ),
        # unclosed parenthesis: where it opens
        ("    query: sum(rate(tgk_email_delivery_total[5m])\n", 17, 15),
    ],
    ids=["plain", "folded", "double-quoted", "unclosed"],
)
def test_query_errors_point_into_the_query(tmp_path, query_yaml, line, column):
    text = VALID_PHASE.replace("    query: sum(rate(tgk_email_delivery_total[5m]))\n", query_yaml)
    [problem] = only_problem(write(tmp_path, "1-foundation.yaml", text))
    assert problem.field == "rollback_triggers[0].query" and "PromQL" in problem.message
    assert (problem.line, problem.column) == (line, column), str(problem)


def test_min_sample_and_baseline_queries_are_parsed_too(tmp_path):
    text = VALID_PHASE.replace(
        "    for: 10m\n",
        "    for: 10m\n    relative_to: sum(rate(x[5m])\n    min_sample: {query: 'up[', count: 5}\n",
    )
    fields = {p.field for p in only_problem(write(tmp_path, "1-foundation.yaml", text))}
    assert fields == {"rollback_triggers[0].relative_to", "rollback_triggers[0].min_sample.query"}


def _project_with(tmp_path: Path, phase_text: str, extra: str = "") -> Path:
    from tests.fixtures.spec import write_project

    project = write_project(tmp_path, phase_text)
    project.write_text(project.read_text() + extra)
    return project


def test_validate_refuses_a_metric_the_worker_does_not_emit(tmp_path):
    from tgk_deploy.errors import SpecError
    from tgk_deploy.spec.load import validate_paths

    text = VALID_PHASE.replace("tgk_email_delivery_total[5m]", "tgk_email_delivery_totl[5m]")
    with pytest.raises(SpecError) as caught:
        validate_paths([_project_with(tmp_path, text)])
    [problem] = caught.value.problems
    assert (problem.line, problem.column) == (17, 21) and "tgk_email_delivery_totl" in str(problem)


def test_external_metrics_are_declared_in_the_project_file(tmp_path):
    from tgk_deploy.spec.load import validate_paths

    text = VALID_PHASE.replace("tgk_email_delivery_total[5m]", "probe_success[5m]")
    project, _ = validate_paths(
        [_project_with(tmp_path, text, "metrics:\n  external: [probe_success]\n")]
    )
    assert project is not None and project.metrics.external == ["probe_success"]


def test_commands_that_act_do_not_need_the_workers_metric_table(tmp_path):
    """A rollback must not fail because the bundle folder is missing; validate says it."""
    from tgk_deploy.errors import SpecError
    from tgk_deploy.spec.load import load_spec, validate_paths

    project = _project_with(tmp_path, VALID_PHASE)
    project.write_text(project.read_text().replace(f"bundle: {REPO / 'wrangler'}", "bundle: gone"))
    assert load_spec(project).phases
    with pytest.raises(SpecError, match="cannot check metric names"):
        validate_paths([project])
