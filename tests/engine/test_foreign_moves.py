"""Moves made outside tgk-deploy, over HTTP against the emulator: status says what happened,
advance refuses naming adopt and restore, and each of those puts the rollout back on its feet.

The foreign requests are the ones the other clients send: wrangler 4.86's rollback and
``versions deploy`` (its body and User-Agent, as captured from the real CLI), and a
dashboard-style deployment that carries no annotation at all.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.engine.test_advance import run_to
from tgk_deploy.emulator import DEFAULT_ACCOUNT_ID
from tgk_deploy.engine.advance import AdvanceStatus, advance
from tgk_deploy.engine.rollback import adopt, restore
from tgk_deploy.planner.foreign import ForeignKind
from tgk_deploy.planner.observed import MarkKind
from tgk_deploy.planner.plan import RefusalReason, find_position
from tgk_deploy.planner.status import status_report

SCRIPT = "tgk-email-orchestrator"
WRANGLER = "wrangler/4.86.0"
BROWSER = "Mozilla/5.0 (dashboard)"


def deploy_as(world, agent: str, shares: dict[str, float], message: str | None) -> None:
    """One POST .../deployments as another client sends it."""
    body: dict[str, Any] = {
        "strategy": "percentage",
        "versions": [{"version_id": v, "percentage": p} for v, p in shares.items()],
    }
    if message is not None:
        body["annotations"] = {"workers/message": message}
    path = f"/accounts/{DEFAULT_ACCOUNT_ID}/workers/scripts/{SCRIPT}/deployments"
    with httpx.Client(base_url=world.emulator.url, headers={"User-Agent": agent}) as http:
        response = http.post(path, json=body, headers={"Authorization": "Bearer someone-else"})
        if response.status_code == 400 and 10220 in [e["code"] for e in response.json()["errors"]]:
            response = http.post(  # wrangler's rollback answers 10220 by forcing
                path,
                params={"force": "true"},
                json=body,
                headers={"Authorization": "Bearer someone-else"},
            )
    assert response.status_code == 200, response.text


@pytest.fixture
def canary(world):
    """Phase 1 step canary-10 applied on production: candidate 10 %, stable 90 %."""
    run_to(world, 1, "canary-10")
    live = world.production().live
    shares = {v.version_id: v.percentage for v in live.versions}
    candidate = next(v for v, p in shares.items() if p == 10)
    stable = next(v for v, p in shares.items() if p == 90)
    return candidate, stable


def number_of(world, version_id: str) -> int:
    """The version's number on Cloudflare, as status names it."""
    return world.production().versions[version_id].number


def refused_with_drift(world) -> str:
    report = advance(world.context(), 1)
    assert report.status is AdvanceStatus.REFUSED and report.exit_code == 4
    (drift,) = [r for r in report.plan.refusals if r.reason is RefusalReason.DRIFT]
    assert "tgk-deploy adopt --env production" in drift.command
    assert "tgk-deploy restore --env production" in drift.command
    return drift.message


def foreign_of(world):
    report = status_report(world.spec, world.observe())
    (production,) = [e for e in report.environments if e.name == "production"]
    return report, production.foreign


def test_a_wrangler_rollback_is_recognised_as_a_rollback_and_adopt_records_it(world, canary):
    _candidate, stable = canary
    deploy_as(world, WRANGLER, {stable: 100}, "Rollback")

    report, move = foreign_of(world)
    assert move.kind is ForeignKind.ROLLBACK and move.source == "wrangler"
    assert move.message == "Rollback" and move.ours_mark.startswith("tgk p=1 s=canary-10")
    expected = f"rolled back: all traffic to 100 % version {number_of(world, stable)}"
    assert expected in report.foreign_text[0]
    assert "tgk p=1 s=canary-10" in report.foreign_text[0]
    assert "via wrangler" in refused_with_drift(world)

    adopted = adopt(world.context(), environment="production")

    assert adopted.message.startswith("adopted as phase 1's rollback")
    position = find_position(world.spec, world.observe())
    assert position.rolled_back and position.phase == 1
    live = world.production().live
    assert live.mark.kind is MarkKind.ROLLBACK and live.split == ((stable, 100.0),)
    assert foreign_of(world)[1] is None
    again = advance(world.context(), 1)
    assert not any(r.reason is RefusalReason.DRIFT for r in again.plan.refusals)


def test_a_wrangler_versions_deploy_is_a_traffic_move_and_restore_puts_the_split_back(
    world, canary
):
    candidate, stable = canary
    deploy_as(world, WRANGLER, {candidate: 50, stable: 50}, "by hand")

    _, move = foreign_of(world)
    assert move.kind is ForeignKind.TRAFFIC
    number = number_of(world, candidate)
    assert f"moved traffic: 50 % version {number}" in move.describe()
    assert f"10 % version {number}" in move.describe()  # what tgk-deploy left
    refused_with_drift(world)

    restored = restore(world.context(), environment="production")

    assert "restored" in restored.message
    live = world.production().live
    assert dict(live.split) == {candidate: 10.0, stable: 90.0}
    assert live.mark.kind is MarkKind.STEP and live.mark.step == "canary-10"
    assert foreign_of(world)[1] is None


def test_a_dashboard_deployment_without_annotation_is_named_and_can_be_adopted(world, canary):
    candidate, _stable = canary
    deploy_as(world, BROWSER, {candidate: 100}, None)

    report, move = foreign_of(world)
    assert move.kind is ForeignKind.TRAFFIC and move.message is None
    assert "no message" in report.foreign_text[0]
    assert move.author  # Cloudflare names who did it
    refused_with_drift(world)

    adopt(world.context(), environment="production")

    live = world.production().live
    assert live.mark.kind is MarkKind.ADVISORY and live.split == ((candidate, 100.0),)
    assert foreign_of(world)[1] is None
    position = find_position(world.spec, world.observe())
    assert (position.phase, position.step) == (1, "canary-10")  # the rollout goes on from here


def test_adopt_and_restore_with_nothing_foreign_change_nothing(world, canary):
    posts = world.emulator.calls("POST")
    assert "nothing to adopt" in adopt(world.context(), environment="production").message
    assert "nothing to restore" in restore(world.context(), environment="production").message
    assert world.emulator.calls("POST") == posts
