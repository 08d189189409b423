"""The rehearsal metrics provider: scenario values over simulated time, judged like live ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fixtures.spec import REPO
from tgk_deploy.errors import ConfigError, SpecError
from tgk_deploy.spec.load import load_spec
from tgk_deploy.spec.models import Comparison, Trigger
from tgk_deploy.triggers.evaluate import GateKind, LiveVersions, Outcome
from tgk_deploy.triggers.gate import run_gate, run_gates
from tgk_deploy.triggers.scenario import (
    Scenario,
    ScenarioProvider,
    find_scenario,
    healthy_value,
    load_scenario,
)

SPEC = load_spec(REPO / "tgk-deploy.yaml")
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
VERSIONS = LiveVersions(candidate="cand", stable="stab")
SCENARIOS = sorted((REPO / "scenarios").glob("*.yaml"))


def provider(name: str) -> ScenarioProvider:
    return ScenarioProvider(load_scenario(REPO / "scenarios" / f"{name}.yaml"), SPEC, START)


def gate(source: ScenarioProvider, phase: int, kind: GateKind, at: datetime):
    return run_gate(SPEC, phase, kind, source, VERSIONS, lambda: at)


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_every_scenario_file_loads_and_names_only_declared_checks(path: Path):
    ScenarioProvider(load_scenario(path), SPEC, START)


@pytest.mark.parametrize("phase", [p.phase for p in SPEC.phases])
@pytest.mark.parametrize("kind", list(GateKind))
def test_the_clean_scenario_passes_every_gate_and_says_it_is_simulated(phase: int, kind: GateKind):
    verdict = gate(provider("clean"), phase, kind, START + timedelta(days=3 * phase))

    assert verdict.outcome is Outcome.PASS, verdict.why
    assert verdict.simulated and verdict.why.startswith("[simulated] ")
    assert all(c.simulated and c.why.startswith("[simulated] ") for c in verdict.checks)


def test_the_ai_latency_incident_fires_ai_timeouts_two_days_into_phase_2_and_then_recovers():
    source = provider("ai-latency-incident")
    phase_2 = START + timedelta(days=10)
    source.phase_started(2, phase_2)

    before = gate(source, 2, GateKind.TRIGGERS, phase_2 + timedelta(days=1))
    starting = gate(source, 2, GateKind.TRIGGERS, phase_2 + timedelta(days=2, minutes=3))
    held = gate(source, 2, GateKind.TRIGGERS, phase_2 + timedelta(days=2, minutes=5))
    fixed = gate(source, 2, GateKind.TRIGGERS, phase_2 + timedelta(days=2, hours=7))

    assert before.outcome is Outcome.PASS
    assert starting.outcome is Outcome.PASS  # for: 5m has not held yet
    assert held.outcome is Outcome.FAIL
    [fired] = [c for c in held.checks if c.fired]
    assert fired.check == "ai-timeouts" and fired.value == 0.4
    assert held.why.startswith("[simulated] 1 of 4 rollback triggers fired: ai-timeouts")
    assert fixed.outcome is Outcome.PASS


def test_phase_segments_count_from_the_first_evaluation_when_nobody_said_when_the_phase_began():
    source = provider("ai-latency-incident")
    first = START + timedelta(days=10)

    assert gate(source, 2, GateKind.TRIGGERS, first).outcome is Outcome.PASS
    later = gate(source, 2, GateKind.TRIGGERS, first + timedelta(days=2, minutes=10))
    assert later.outcome is Outcome.FAIL


def scenario_of(**checks: list[dict[str, object]]) -> ScenarioProvider:
    return ScenarioProvider(Scenario.model_validate({"name": "t", "checks": checks}), SPEC, START)


def test_missing_data_in_a_scenario_is_inconclusive():
    source = scenario_of(**{"routing-errors": [{"after": "1h", "missing": True}]})

    verdict = gate(source, 1, GateKind.TRIGGERS, START + timedelta(hours=2))

    assert verdict.outcome is Outcome.INCONCLUSIVE
    [routing] = [c for c in verdict.checks if c.check == "routing-errors"]
    assert "no data" in routing.why


def test_an_unreachable_prometheus_in_a_scenario_is_inconclusive():
    source = scenario_of(**{"delivery-rate-low": [{"unreachable": True}]})

    verdict = gate(source, 1, GateKind.TRIGGERS, START + timedelta(hours=2))

    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert "simulated: Prometheus unreachable (scenario t)" in verdict.why


def test_a_scenario_sample_below_the_minimum_is_inconclusive():
    source = scenario_of(**{"delivery-rate-low": [{"value": 0.999, "sample": 12}]})

    verdict = gate(source, 1, GateKind.TRIGGERS, START + timedelta(hours=2))

    [delivery] = [c for c in verdict.checks if c.check == "delivery-rate-low"]
    assert delivery.outcome is Outcome.INCONCLUSIVE
    assert "sample too small: 12 events" in delivery.why


def test_a_scenario_naming_an_unknown_check_is_refused():
    with pytest.raises(ConfigError, match="names check\\(s\\) no phase declares: ai-p59-slow"):
        scenario_of(**{"ai-p59-slow": [{"value": 1}]})


def test_a_malformed_scenario_file_is_reported_at_file_and_line(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nchecks:\n  ai-p95-slow:\n    - after: 2 days\n      value: 3\n")

    with pytest.raises(SpecError) as raised:
        load_scenario(bad)

    [problem] = raised.value.problems
    assert problem.line == 4 and "duration" in problem.message


@given(
    op=st.sampled_from(list(Comparison)),
    threshold=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    must_hold=st.booleans(),
)
def test_the_default_healthy_value_is_always_on_the_good_side(
    op: Comparison, threshold: float, must_hold: bool
):
    value = healthy_value(op, threshold, must_hold=must_hold)

    assert op.holds(value, threshold) is must_hold


def test_an_unnamed_relative_check_reads_healthy_against_a_baseline_of_one():
    relative = Trigger(name="rel", query="q", relative_to="b", op=">", threshold=2)
    phase = SPEC.phases[0].model_copy(
        update={"success_criteria": [], "rollback_triggers": [relative]}
    )
    spec = SPEC.model_copy(update={"phases": [phase]})
    source = ScenarioProvider(Scenario(name="t"), spec, START)

    verdict = run_gate(spec, 1, GateKind.TRIGGERS, source, VERSIONS, lambda: START)

    assert verdict.outcome is Outcome.PASS
    assert verdict.checks[0].baseline == 1.0


def test_several_phases_are_judged_in_one_batch_at_one_instant():
    source = provider("ai-latency-incident")
    source.phase_started(2, START)
    at = START + timedelta(days=2, hours=1)

    verdicts = run_gates(SPEC, [1, 2], GateKind.TRIGGERS, source, VERSIONS, lambda: at)

    assert [(v.phase, v.outcome) for v in verdicts] == [(1, Outcome.PASS), (2, Outcome.FAIL)]
    assert [c.check for c in verdicts[1].fired] == ["ai-timeouts"]
    assert {v.evaluated_at for v in verdicts} == {at}


def test_scenarios_are_found_by_name_next_to_the_project():
    assert find_scenario("clean", REPO) == REPO / "scenarios" / "clean.yaml"
    with pytest.raises(ConfigError, match="known: ai-latency-incident, clean"):
        find_scenario("cleen", REPO)
