"""The smoke step against the emulator: the candidate at 0 %, its self-test through a version
override, and traffic only when every route is right."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from tests.engine.test_advance import run_to
from tests.fixtures.engine import SECRET_VALUES
from tgk_deploy.engine.advance import AdvanceStatus, advance
from tgk_deploy.errors import ExitCode, TgkError
from tgk_deploy.planner.observed import MarkKind
from tgk_deploy.smoke import run_smoke, smoke_token
from tgk_deploy.triggers.evaluate import Outcome


def _to_canary(world) -> str:
    """Phase 1 up to the bridge, its bake waited out: canary-10 is next. Returns the bridge's id."""
    run_to(world, 1, "bridge")
    world.clock.advance(timedelta(days=2))
    (bridge,) = world.production().live.versions
    return bridge.version_id


def _shares_over_history(world, version_id: str) -> list[float]:
    return [d.share_of(version_id) for d in world.production().deployments]


def test_the_candidate_is_smoke_tested_at_zero_percent_through_the_override_before_traffic(world):
    bridge = _to_canary(world)
    report = advance(world.context(), 1)

    assert (report.status, report.step) == (AdvanceStatus.APPLIED, "canary-10")
    kinds = [o.kind for o in report.outcomes if o.kind != "prepare_switch_off"]
    assert kinds == ["upload_version", "set_traffic", "smoke", "set_traffic", "stamp"]
    candidate = report.outcomes[0].result["version"]
    (request,) = world.emulator.front.requests()
    assert request["path"] == "/__workers/tgk-email-orchestrator/selftest"
    assert request["override"] == f'tgk-email-orchestrator="{candidate}"'
    assert (request["answered_by"], request["status"]) == (candidate, 200)
    history = world.production().deployments  # newest first
    staged = next(d for d in history if candidate in d.shares and d.shares[candidate] == 0)
    assert staged.shares == {candidate: 0.0, bridge: 100.0}
    assert history[0].shares == {candidate: 10.0, bridge: 90.0}
    smoke = next(o for o in report.outcomes if o.kind == "smoke")
    assert smoke.result["outcome"] == "pass" and smoke.result["failed"] == 0
    assert smoke.result["checked"] == 5  # tgk.example x alerts, ops, billing, support, noreply


def test_a_wrong_route_fails_the_step_and_moves_no_traffic(world):
    bridge = _to_canary(world)
    world.emulator.front.fail_smoke(scope="billing")
    before = world.production().live

    with pytest.raises(TgkError) as raised:
        advance(world.context(), 1)

    assert raised.value.exit_code == ExitCode.FAILED
    assert "billing@tgk.example" in raised.value.message
    assert "smoke check" in raised.value.message and "failed" in raised.value.message
    production = world.production()
    candidate = next(v for v in production.live.shares if v != bridge)
    assert production.live.shares == {candidate: 0.0, bridge: 100.0}  # staged, no traffic
    assert max(_shares_over_history(world, candidate)) == 0
    assert production.live.mark.kind is not MarkKind.STEP  # canary-10 was never stamped
    assert before.mark.step == "bridge"
    rows = world.journal._db.execute(
        "SELECT verdict FROM verdicts WHERE name = 'smoke' ORDER BY rowid DESC LIMIT 1"
    ).fetchall()
    assert rows == [("fail",)]


def test_after_the_fix_a_rerun_smokes_the_staged_candidate_again_and_then_moves_traffic(world):
    bridge = _to_canary(world)
    world.emulator.front.fail_smoke()
    with pytest.raises(TgkError):
        advance(world.context(), 1)
    world.emulator.front.reset()

    report = advance(world.context(), 1)

    assert report.status is AdvanceStatus.APPLIED
    assert [o.kind for o in report.outcomes] == ["smoke", "set_traffic", "stamp"]  # no re-stage
    candidate = next(v for v in world.production().live.shares if v != bridge)
    assert world.production().live.shares == {candidate: 10.0, bridge: 90.0}


def test_a_token_the_worker_refuses_is_inconclusive_and_moves_nothing(world, monkeypatch):
    bridge = _to_canary(world)
    monkeypatch.setenv("TGK_SMOKE_TOKEN", SECRET_VALUES["TGK_SMOKE_TOKEN"] + "-rotated")

    with pytest.raises(TgkError) as raised:
        advance(world.context(), 1)

    assert raised.value.exit_code == ExitCode.INCONCLUSIVE
    assert "401" in raised.value.message
    assert SECRET_VALUES["TGK_SMOKE_TOKEN"] not in raised.value.message
    assert world.emulator.front.requests()[-1]["status"] == 401
    shares = world.production().live.shares
    assert shares[bridge] == 100.0 and sum(shares.values()) == 100.0


def test_a_missing_token_is_bad_input_before_any_change(world, monkeypatch):
    _to_canary(world)
    monkeypatch.delenv("TGK_SMOKE_TOKEN")
    posts = world.emulator.calls("POST")

    with pytest.raises(TgkError) as raised:
        advance(world.context(), 1)

    assert raised.value.exit_code == ExitCode.BAD_INPUT
    assert "TGK_SMOKE_TOKEN" in raised.value.message
    assert world.emulator.calls("POST") == posts


def test_a_worker_that_does_not_answer_is_inconclusive(world):
    _to_canary(world)
    ctx = world.context(worker_urls={"production": "http://127.0.0.1:9/unreachable"})

    with pytest.raises(TgkError) as raised:
        advance(ctx, 1)

    assert raised.value.exit_code == ExitCode.INCONCLUSIVE
    assert "did not answer" in raised.value.message


def test_another_version_answering_is_never_a_pass(world):
    """An override Cloudflare has not applied yet routes by the split: the stable version answers."""
    _to_canary(world)
    (bridge,) = world.production().live.versions
    not_deployed = "00000000-0000-4000-8000-000000000000"
    slept: list[float] = []

    with httpx.Client() as http:
        report = run_smoke(
            http,
            environment="production",
            script="tgk-email-orchestrator",
            url=world.context().worker_url("production"),
            version_id=not_deployed,
            token=smoke_token(world.spec),
            attempts=3,
            interval=timedelta(seconds=2),
            sleep=slept.append,
        )

    assert report.outcome is Outcome.INCONCLUSIVE and report.exit_code == ExitCode.INCONCLUSIVE
    assert report.answered_by == bridge.version_id and report.attempts == 3
    assert slept == [2.0, 2.0]  # on the caller's clock, never the wall's
    sent = [r["override"] for r in world.emulator.front.requests()]
    assert sent == [f'tgk-email-orchestrator="{not_deployed}"'] * 3
