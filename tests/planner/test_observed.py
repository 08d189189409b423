"""tgk-deploy's marks: every kind renders within Cloudflare's 50 characters and reads back."""

from __future__ import annotations

import pytest

from tgk_deploy.planner.observed import MARK_MAX, MarkKind, RolloutMark

LONGEST_STEP = "s" * 28  # the longest step id a phase file may declare


@pytest.mark.parametrize(
    "kind", [MarkKind.STEP, MarkKind.PROGRESS, MarkKind.CLAIM, MarkKind.VERSION]
)
def test_a_step_mark_of_every_kind_fits_and_reads_back(kind):
    mark = RolloutMark(phase=5, kind=kind, step=LONGEST_STEP, run_id="r1a2b3c4d")

    text = mark.render()

    assert len(text) <= MARK_MAX
    assert RolloutMark.parse(text) == mark


def test_a_progress_or_claim_mark_is_not_a_position():
    """Only a stamp says a step is applied: a kill before it leaves the step to finish."""
    from datetime import UTC, datetime

    from tests.fixtures.spec import REPO
    from tgk_deploy.planner.observed import Deployment, EnvironmentState, ObservedState
    from tgk_deploy.planner.plan import find_position
    from tgk_deploy.spec.load import load_spec

    spec = load_spec(REPO / "tgk-deploy.yaml")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    marks = [
        RolloutMark(phase=1, kind=kind, step="canary-10", run_id="r1").render()
        for kind in (MarkKind.CLAIM, MarkKind.PROGRESS)
    ]
    deployments = [
        Deployment(id=str(i), created_on=now, versions=[], message=message)
        for i, message in enumerate(reversed(marks))
    ]
    observed = ObservedState(
        observed_at=now,
        environments={"production": EnvironmentState(script="s", deployments=deployments)},
    )
    assert find_position(spec, observed) is None
