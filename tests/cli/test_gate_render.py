"""The gate's view for people: every check's value against its threshold, the why, warnings."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console

from tgk_deploy.cli.gate import render_verdict
from tgk_deploy.spec.models import Comparison, Severity
from tgk_deploy.triggers.evaluate import CheckVerdict, GateKind, Outcome, gate_verdict

AT = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def shown(verdict) -> str:
    console = Console(width=120, record=True, color_system=None)
    console.print(render_verdict(verdict))
    return console.export_text()


def check(**fields) -> CheckVerdict:
    base = dict(
        phase=2, check="ai-p95-slow", kind=GateKind.TRIGGERS, outcome=Outcome.FAIL,
        why="fired: 14.2 > 10", query="q", op=Comparison.GT, threshold=10.0,
        effective_threshold=10.0, value=14.2, window="10m", sample_size=900.0, min_sample=20.0,
        severity=Severity.WARNING, evaluated_at=AT,
    )  # fmt: skip
    return CheckVerdict.model_validate({**base, **fields})


def test_the_table_shows_value_condition_window_sample_and_verdict():
    text = shown(gate_verdict(2, GateKind.TRIGGERS, [check()], AT))

    row = next(line for line in text.splitlines() if "ai-p95-slow" in line and "│" in line)
    for cell in ("14.2", "> 10", "for 10m", "900 (min 20)", "fail"):
        assert cell in row
    assert "ai-p95-slow: fired: 14.2 > 10" in text
    assert "FAIL: 1 of 1 rollback triggers fired" in text


def test_prometheus_warnings_are_shown_verbatim():
    verdict = check(warnings=["remote read: partial response from store eu-1"])

    text = shown(gate_verdict(2, GateKind.TRIGGERS, [verdict], AT))

    assert "Prometheus warning: remote read: partial response from store eu-1" in text


def test_simulated_verdicts_say_so_in_the_title_and_the_headline():
    verdict = check(simulated=True, why="[simulated] fired: 14.2 > 10")

    text = shown(gate_verdict(2, GateKind.TRIGGERS, [verdict], AT, simulated=True))

    assert text.startswith("SIMULATED phase 2 triggers at 2026-03-02T12:00:00+00:00")
    assert "SIMULATED FAIL: [simulated] 1 of 1 rollback triggers fired" in text
