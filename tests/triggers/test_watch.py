"""``watch_gate``: re-evaluate on an interval until pass or the deadline, on an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tgk_deploy.triggers.evaluate import GateKind, GateVerdict, Outcome
from tgk_deploy.triggers.gate import watch_gate

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


class FakeTime:
    def __init__(self) -> None:
        self.now = START
        self.slept: list[float] = []

    def clock(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


def verdicts(*outcomes: Outcome):
    """An evaluator answering ``outcomes`` in turn, recording when it was asked."""
    asked: list[datetime] = []
    answers = iter(outcomes)

    def evaluate(at: datetime) -> GateVerdict:
        asked.append(at)
        return GateVerdict(
            phase=1, kind=GateKind.SUCCESS, outcome=next(answers), why="", evaluated_at=at
        )

    return evaluate, asked


def test_it_stops_at_the_first_pass():
    time = FakeTime()
    evaluate, asked = verdicts(Outcome.INCONCLUSIVE, Outcome.FAIL, Outcome.PASS, Outcome.FAIL)

    final = watch_gate(
        evaluate, clock=time.clock, sleep=time.sleep, wait=timedelta(hours=1),
        interval=timedelta(minutes=5),
    )  # fmt: skip

    assert final.outcome is Outcome.PASS
    assert asked == [START, START + timedelta(minutes=5), START + timedelta(minutes=10)]


def test_it_gives_the_last_verdict_when_the_deadline_passes_and_never_oversleeps():
    time = FakeTime()
    evaluate, asked = verdicts(*[Outcome.FAIL] * 10)
    shown: list[tuple[Outcome, datetime]] = []

    final = watch_gate(
        evaluate, clock=time.clock, sleep=time.sleep, wait=timedelta(minutes=12),
        interval=timedelta(minutes=5), on_verdict=lambda v, deadline: shown.append((v.outcome, deadline)),
    )  # fmt: skip

    assert final.outcome is Outcome.FAIL
    assert time.slept == [300, 300, 120]
    assert asked[-1] == START + timedelta(minutes=12)
    assert shown == [(Outcome.FAIL, START + timedelta(minutes=12))] * 4


def test_without_wait_it_evaluates_once():
    time = FakeTime()
    evaluate, asked = verdicts(Outcome.FAIL)

    watch_gate(
        evaluate,
        clock=time.clock,
        sleep=time.sleep,
        wait=timedelta(0),
        interval=timedelta(minutes=1),
    )

    assert asked == [START] and time.slept == []
