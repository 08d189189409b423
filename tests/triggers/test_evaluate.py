"""Verdict logic without a network: numbers in, pass / fail / inconclusive out, with the why."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tgk_deploy.spec.models import Comparison, MetricCheck, Trigger
from tgk_deploy.triggers.evaluate import (
    CheckPlan,
    GateKind,
    LiveVersions,
    Outcome,
    aggregate,
    gate_verdict,
    judge,
    plan_check,
    range_step,
    render_query,
)
from tgk_deploy.triggers.samples import Point, QueryRequest, QueryResult, Series

AT = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
NO_VERSIONS = LiveVersions()


def check(**fields: object) -> MetricCheck:
    base: dict[str, object] = {"name": "latency", "query": "p95", "op": ">", "threshold": 10}
    return MetricCheck.model_validate({**base, **fields})


def trigger(**fields: object) -> Trigger:
    base: dict[str, object] = {"name": "latency", "query": "p95", "op": ">", "threshold": 10}
    return Trigger.model_validate({**base, **fields})


def plan_of(
    subject: MetricCheck, kind: GateKind = GateKind.TRIGGERS, versions: LiveVersions = NO_VERSIONS
) -> CheckPlan:
    return plan_check(subject, phase=2, kind=kind, at=AT, versions=versions)


def answer(request: QueryRequest, *values: float | None, series: int = 1) -> QueryResult:
    """Values at the request's instant, or at each step of its window (None: no point)."""
    if request.is_range:
        assert request.step is not None
        moments = [request.start + i * request.step for i in range(len(values))]
    else:
        moments = [request.at]
    points = [Point(time=t, value=v) for t, v in zip(moments, values, strict=True) if v is not None]
    return QueryResult(
        request=request,
        series=[Series(labels={"n": str(i)}, points=points) for i in range(series)],
    )


def verdict_of(subject: MetricCheck, value: float, kind: GateKind = GateKind.TRIGGERS):
    plan = plan_of(subject, kind)
    assert plan.value is not None
    return judge(plan, [answer(plan.value, value)])


# ---------------------------------------------------------------- the comparison


def test_a_trigger_fires_when_its_condition_holds_and_passes_when_it_does_not():
    fired = verdict_of(trigger(), 11)
    quiet = verdict_of(trigger(), 9)

    assert fired.outcome is Outcome.FAIL and fired.fired
    assert fired.why == "fired: 11 > 10"
    assert quiet.outcome is Outcome.PASS
    assert quiet.why == "not fired: 9 is not > 10"


def test_a_success_criterion_passes_when_its_condition_holds():
    criterion = check(op=">=", threshold=0.999)

    assert verdict_of(criterion, 0.9995, GateKind.SUCCESS).outcome is Outcome.PASS
    failed = verdict_of(criterion, 0.9985, GateKind.SUCCESS)
    assert failed.outcome is Outcome.FAIL and not failed.fired
    assert failed.why == "does not hold: 0.9985 is not >= 0.999"


def test_every_verdict_carries_query_value_threshold_and_time():
    verdict = verdict_of(trigger(query="histogram_quantile(0.95, x)"), 12.5)

    assert verdict.query == "histogram_quantile(0.95, x)"
    assert verdict.value == 12.5
    assert verdict.threshold == 10 and verdict.effective_threshold == 10
    assert verdict.evaluated_at == AT
    assert verdict.phase == 2 and verdict.check == "latency"
    assert not verdict.simulated


@pytest.mark.parametrize(
    ("op", "value", "holds"),
    [("<", 9, True), ("<", 10, False), ("<=", 10, True), (">", 10, False), (">=", 10, True),
     ("==", 10, True), ("!=", 10, False)],
)  # fmt: skip
def test_each_comparison_decides_the_trigger(op: str, value: float, holds: bool):
    verdict = verdict_of(trigger(op=op), value)

    assert verdict.outcome is (Outcome.FAIL if holds else Outcome.PASS)


# ---------------------------------------------------------------- never pass on no numbers


def test_no_series_is_inconclusive():
    plan = plan_of(trigger())
    assert plan.value is not None

    verdict = judge(plan, [QueryResult(request=plan.value)])

    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.why == "no data: the query returned no series"


def test_nan_is_inconclusive():
    verdict = verdict_of(trigger(), math.nan)

    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert "NaN" in verdict.why


def test_several_series_where_one_was_expected_is_inconclusive_and_names_them():
    plan = plan_of(trigger())
    assert plan.value is not None

    verdict = judge(plan, [answer(plan.value, 1, series=2)])

    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert 'returned 2 series where one was expected: {n="0"}, {n="1"}' in verdict.why


def test_a_provider_error_is_inconclusive_with_its_words():
    plan = plan_of(trigger())
    assert plan.value is not None
    error = "Prometheus at http://prom:9090 did not answer after 4 attempt(s) within 20s"

    verdict = judge(plan, [QueryResult(request=plan.value, error=error)])

    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.why == f"query: {error}"


def test_a_sample_below_the_minimum_is_inconclusive_even_when_the_value_is_healthy():
    subject = trigger(min_sample={"query": "sum(increase(events[1h]))", "count": 100})
    plan = plan_of(subject)
    assert plan.value is not None and plan.sample is not None

    verdict = judge(plan, [answer(plan.value, 1), answer(plan.sample, 99)])

    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.why == "sample too small: 99 events, at least 100 needed"
    assert verdict.sample_size == 99 and verdict.min_sample == 100


def test_a_sample_at_the_minimum_lets_the_value_speak():
    subject = trigger(min_sample={"query": "sum(increase(events[1h]))", "count": 100})
    plan = plan_of(subject)
    assert plan.value is not None and plan.sample is not None

    verdict = judge(plan, [answer(plan.value, 11), answer(plan.sample, 100)])

    assert verdict.outcome is Outcome.FAIL
    assert verdict.why == "fired: 11 > 10; sample 100 events"


# ---------------------------------------------------------------- for: windows


def test_for_asks_a_range_over_the_whole_window_at_a_step():
    plan = plan_of(trigger(**{"for": "10m"}))
    assert plan.value is not None

    assert plan.value.window == timedelta(minutes=10)
    assert plan.value.step == timedelta(minutes=1)
    assert plan.value.start == AT - timedelta(minutes=10)


def test_for_fires_only_when_the_condition_held_at_every_point():
    plan = plan_of(trigger(**{"for": "10m"}))
    assert plan.value is not None

    held = judge(plan, [answer(plan.value, *[11] * 11)])
    dipped = judge(plan, [answer(plan.value, *[11] * 5, 9, *[11] * 5)])

    assert held.outcome is Outcome.FAIL
    assert held.why == "fired: > threshold at all 11 points over 10m (latest 11 > 10)"
    assert held.values == [11] * 11
    assert dipped.outcome is Outcome.PASS
    assert dipped.why == "not fired: held at 10 of 11 points over 10m (latest 11 > 10)"


def test_a_missing_point_in_the_window_is_inconclusive_not_pass():
    plan = plan_of(trigger(**{"for": "10m"}))
    assert plan.value is not None

    verdict = judge(plan, [answer(plan.value, None, *[11] * 10)])

    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.why.startswith("1 of 11 points of the 10m window have no data")


def test_a_success_criterion_with_for_passes_only_when_held_throughout():
    plan = plan_of(check(op=">", threshold=0.85, **{"for": "1h"}), GateKind.SUCCESS)
    assert plan.value is not None and plan.value.step is not None
    points = int(plan.value.window / plan.value.step) + 1  # type: ignore[operator]

    assert judge(plan, [answer(plan.value, *[0.9] * points)]).outcome is Outcome.PASS
    once_low = [0.9] * (points - 1) + [0.8]
    assert judge(plan, [answer(plan.value, *once_low)]).outcome is Outcome.FAIL


@pytest.mark.parametrize(
    ("window", "step"),
    [("90s", "1m"), ("10m", "1m"), ("30m", "1m"), ("1h", "2m"), ("2h", "4m"), ("30s", "30s")],
)
def test_the_range_step_keeps_a_window_to_at_most_31_points(window: str, step: str):
    from tgk_deploy.spec.models import parse_duration

    assert range_step(parse_duration(window)) == parse_duration(step)


# ---------------------------------------------------------------- relative checks


def relative_trigger() -> Trigger:
    return trigger(
        name="candidate-errors",
        query='errors{version="{{candidate}}"}',
        relative_to='errors{version="{{stable}}"}',
        op=">",
        threshold=2,
    )


def test_relative_queries_are_rendered_with_the_live_versions():
    plan = plan_of(relative_trigger(), versions=LiveVersions(candidate="c-2", stable="s-1"))

    assert plan.value is not None and plan.baseline is not None
    assert plan.value.query == 'errors{version="c-2"}'
    assert plan.baseline.query == 'errors{version="s-1"}'


def test_a_relative_trigger_compares_with_threshold_times_baseline():
    plan = plan_of(relative_trigger(), versions=LiveVersions(candidate="c-2", stable="s-1"))
    assert plan.value is not None and plan.baseline is not None

    fired = judge(plan, [answer(plan.value, 0.05), answer(plan.baseline, 0.02)])
    quiet = judge(plan, [answer(plan.value, 0.03), answer(plan.baseline, 0.02)])

    assert fired.outcome is Outcome.FAIL
    assert fired.effective_threshold == pytest.approx(0.04) and fired.baseline == 0.02
    assert fired.why == "fired: 0.05 > 0.04 (2 x baseline 0.02)"
    assert quiet.outcome is Outcome.PASS


def test_a_relative_trigger_with_for_compares_point_by_point():
    subject = relative_trigger().model_copy(update={"for_": timedelta(minutes=2)})
    plan = plan_of(subject, versions=LiveVersions(candidate="c", stable="s"))
    assert plan.value is not None and plan.baseline is not None

    verdict = judge(plan, [answer(plan.value, 3, 5, 7), answer(plan.baseline, 1, 2, 3)])
    not_throughout = judge(plan, [answer(plan.value, 3, 3, 7), answer(plan.baseline, 1, 2, 3)])

    assert verdict.outcome is Outcome.FAIL
    assert not_throughout.outcome is Outcome.PASS


def test_a_relative_trigger_without_live_versions_is_inconclusive_and_asks_nothing():
    plan = plan_of(relative_trigger(), versions=LiveVersions(stable="s-1"))

    assert plan.requests() == []
    verdict = judge(plan, [])
    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.why == "the query needs {{candidate}} but no candidate version is live"


def test_render_query_leaves_queries_without_placeholders_alone():
    assert render_query("sum(rate(x[5m]))", NO_VERSIONS) == "sum(rate(x[5m]))"
    assert render_query('x{v="{{ candidate }}"}', LiveVersions(candidate="a")) == 'x{v="a"}'


# ---------------------------------------------------------------- gates


def test_a_gate_fails_on_any_fail_and_is_inconclusive_on_any_inconclusive():
    assert aggregate([Outcome.PASS, Outcome.INCONCLUSIVE, Outcome.FAIL]) is Outcome.FAIL
    assert aggregate([Outcome.PASS, Outcome.INCONCLUSIVE]) is Outcome.INCONCLUSIVE
    assert aggregate([Outcome.PASS, Outcome.PASS]) is Outcome.PASS


def test_the_gate_why_names_the_culprits():
    fired = verdict_of(trigger(name="ai-p95-slow"), 14)
    quiet = verdict_of(trigger(name="accuracy"), 1)

    gate = gate_verdict(2, GateKind.TRIGGERS, [fired, quiet], AT)

    assert gate.outcome is Outcome.FAIL
    assert gate.why == "1 of 2 rollback triggers fired: ai-p95-slow: fired: 14 > 10"


def test_a_gate_without_checks_is_inconclusive_and_says_so():
    for kind, noun in ((GateKind.SUCCESS, "success criteria"), (GateKind.TRIGGERS, "triggers")):
        gate = gate_verdict(5, kind, [], AT)

        assert gate.outcome is Outcome.INCONCLUSIVE  # empty is never pass
        assert gate.why.startswith(
            f"phase 5 declares no {noun}".replace("no triggers", "no rollback triggers")
        )
        assert "nothing to judge" in gate.why


def test_simulated_verdicts_say_so_in_the_field_and_the_why():
    plan = plan_of(trigger())
    assert plan.value is not None

    verdict = judge(plan, [answer(plan.value, 11)], simulated=True)
    gate = gate_verdict(2, GateKind.TRIGGERS, [verdict], AT, simulated=True)

    assert verdict.simulated and verdict.why.startswith("[simulated] fired")
    assert gate.simulated and gate.why.startswith("[simulated] ")


def test_verdicts_are_strict_json_even_with_an_infinite_value():
    import json

    verdict = verdict_of(trigger(), math.inf)  # histogram_quantile's answer past the last bucket

    for text in (verdict.model_dump_json(), json.dumps(verdict.model_dump(mode="json"))):
        data = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
        assert data["value"] == "+Inf" and data["outcome"] == "fail"
        assert data["evaluated_at"] == "2026-03-02T12:00:00Z"


# ---------------------------------------------------------------- properties

finite = st.floats(allow_nan=False, allow_infinity=False, width=32)
values = st.one_of(finite, st.just(math.nan), st.just(math.inf), st.just(-math.inf))
comparisons = st.sampled_from(list(Comparison))


@given(op=comparisons, threshold=finite, value=values, kind=st.sampled_from(list(GateKind)))
def test_a_verdict_is_pass_exactly_when_the_comparison_says_so_and_nan_never_passes(
    op: Comparison, threshold: float, value: float, kind: GateKind
):
    verdict = verdict_of(check(op=op.value, threshold=threshold), value, kind)

    if math.isnan(value):
        assert verdict.outcome is Outcome.INCONCLUSIVE
    else:
        holds = op.holds(value, threshold)
        wanted = holds if kind is GateKind.SUCCESS else not holds
        assert verdict.outcome is (Outcome.PASS if wanted else Outcome.FAIL)


@given(present=st.lists(st.booleans(), min_size=11, max_size=11), value=finite)
def test_a_window_with_any_gap_is_never_pass_or_fail(present: list[bool], value: float):
    plan = plan_of(trigger(**{"for": "10m"}))
    assert plan.value is not None

    verdict = judge(plan, [answer(plan.value, *[value if p else None for p in present])])

    assert (verdict.outcome is Outcome.INCONCLUSIVE) == (not all(present))


@given(st.lists(st.sampled_from(list(Outcome)), max_size=8))
def test_aggregate_is_the_worst_outcome(outcomes: list[Outcome]):
    rank = {Outcome.PASS: 0, Outcome.INCONCLUSIVE: 1, Outcome.FAIL: 2}
    expected = max(outcomes, key=rank.__getitem__, default=Outcome.INCONCLUSIVE)

    assert aggregate(outcomes) is expected
