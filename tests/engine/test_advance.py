"""advance over HTTP against the emulator: steps, bakes, approvals, triggers and their responses."""

from __future__ import annotations

import threading
import traceback
from datetime import timedelta

import pytest

from tests.fixtures.spec import T0
from tgk_deploy.engine.advance import AdvanceStatus, advance, approve, halt, resume
from tgk_deploy.errors import CloudflareError, ConflictError
from tgk_deploy.planner.observed import MarkKind
from tgk_deploy.planner.plan import RefusalReason, find_position


def run_to(world, target_phase: int, step: str) -> None:
    """Advance from phase 1 (waiting out bakes, approving) until ``step`` of ``target_phase``."""
    phase = 1
    for _ in range(60):
        ctx = world.context()
        report = advance(ctx, phase, wait=True, interval=timedelta(hours=6))
        if report.status is AdvanceStatus.APPLIED and (phase, report.step) == (target_phase, step):
            return
        if (
            report.status is AdvanceStatus.REFUSED
            and report.plan
            and any(r.reason is RefusalReason.APPROVAL_PENDING for r in report.plan.refusals)
        ):
            approve(world.context(), phase, report.step)
            continue
        if (
            report.status is AdvanceStatus.REFUSED
            and report.plan
            and any(r.reason is RefusalReason.PHASE_COMPLETE for r in report.plan.refusals)
        ):
            phase += 1
            continue
        assert report.status is AdvanceStatus.APPLIED, report.message
    raise AssertionError(f"never reached {phase}/{step}")


def test_the_first_step_uploads_deploys_on_staging_and_stamps_the_deployment(world):
    report = advance(world.context(), 1)
    assert (report.status, report.step) == (AdvanceStatus.APPLIED, "staging")
    assert [o.kind for o in report.outcomes] == ["upload_version", "set_traffic", "stamp"]
    staging = world.observe().environments["staging"]
    live = staging.live
    assert live.mark.kind is MarkKind.STEP and live.mark.step == "staging" and live.mark.run_id
    version = staging.versions[live.versions[0].version_id]
    assert version.tag.startswith("tgk-p1-") and live.versions[0].percentage == 100


def test_a_rerun_during_the_bake_refuses_with_the_time_left_and_changes_nothing(world):
    advance(world.context(), 1)
    calls = world.emulator.calls("POST")
    world.clock.advance(timedelta(hours=3))
    again = advance(world.context(), 1)
    assert again.status is AdvanceStatus.REFUSED and again.exit_code == 4
    assert "21h left of 1d" in again.message
    assert world.emulator.calls("POST") == calls


def test_wait_watches_the_bake_rechecking_triggers_then_advances(world):
    advance(world.context(), 1)
    approve(world.context(), 1, "bridge")
    report = advance(world.context(), 1, wait=True, interval=timedelta(hours=6))
    assert (report.status, report.step) == (AdvanceStatus.APPLIED, "bridge")
    assert world.clock.now() - T0 >= timedelta(hours=24)
    waits = [e for e in world.events if e.kind == "wait"]
    assert len(waits) >= 4 and "left of 1d" in waits[0].message
    production = world.production()
    (bridge,) = production.live.versions
    assert bridge.percentage == 100.0
    assert world.api.get_version(production.script, bridge.version_id).vars["LEGACY_BRIDGE"] == (
        "true"
    )
    assert (world.tmp / "backups" / "p1-bridge-main.sql").read_text().startswith("PRAGMA")
    rules = world.observe().email_rules
    assert rules["worker"].enabled and rules["legacy"].enabled

    report = advance(world.context(), 1, wait=True, interval=timedelta(hours=6))
    assert (report.status, report.step) == (AdvanceStatus.APPLIED, "canary-10")
    shares = dict(world.production().live.split)
    assert shares[bridge.version_id] == 90.0 and sorted(shares.values()) == [10.0, 90.0]


def test_dry_run_plans_and_changes_nothing(world):
    before = world.emulator.calls("POST")
    report = advance(world.context(), 1, dry_run=True)
    assert report.status is AdvanceStatus.PLANNED and report.plan.step == "staging"
    assert world.emulator.calls("POST") == before


def test_a_declined_confirmation_changes_nothing(world):
    report = advance(world.context(), 1, confirm=lambda plan: False)
    assert report.status is AdvanceStatus.DECLINED
    assert find_position(world.spec, world.observe()) is None


def test_a_later_phase_is_refused_until_the_earlier_one_is_done(world):
    report = advance(world.context(), 2)
    assert report.status is AdvanceStatus.REFUSED
    assert report.plan.refusals[0].reason is RefusalReason.EARLIER_PHASE_INCOMPLETE


def test_approval_is_recorded_on_cloudflare_and_lets_the_step_go(world):
    run_to(world, 1, "full")
    world.clock.advance(timedelta(days=4))
    pending = advance(world.context(), 1)
    assert pending.plan.refusals[0].reason is RefusalReason.APPROVAL_PENDING
    assert pending.plan.checklist == world.spec.phase(1).steps[-1].approval.checklist
    result = approve(world.context(), 1, "retire-legacy")
    assert result["by"] == "tester"
    assert result["checklist"] and all(item.startswith("[x] ") for item in result["checklist"])
    (run,) = [
        r
        for r in world.journal.runs(phase=1)
        if (r.command, r.step) == ("approve", "retire-legacy")
    ]
    assert run.actions[0]["result"]["checklist"] == result["checklist"]
    done = advance(world.context(), 1)
    assert (done.status, done.step) == (AdvanceStatus.APPLIED, "retire-legacy")
    assert not world.observe().email_rules["legacy"].enabled


def test_a_firing_trigger_rolls_back_immediately_as_phase_one_declares(world):
    run_to(world, 1, "canary-10")
    world.set_metric("delivery-rate-low", {"value": 0.01})  # 1 % fell back or failed
    report = advance(world.context(), 1)
    assert report.status is AdvanceStatus.TRIGGERED and report.exit_code == 1
    assert report.response.action == "immediate-rollback"
    assert "delivery-rate-low" in report.message
    production = world.production()
    (stable,) = production.live.versions
    assert stable.percentage == 100.0
    stable_vars = world.api.get_version(production.script, stable.version_id).vars
    assert stable_vars["LEGACY_BRIDGE"] == "true"  # the bridge: the existing system's path
    rules = world.observe().email_rules
    assert rules["legacy"].enabled and not rules["worker"].enabled
    assert production.live.mark.kind is MarkKind.ROLLBACK


def test_routing_errors_roll_back_gradually(world):
    run_to(world, 1, "canary-50")
    world.set_metric("routing-errors", {"value": 9})
    report = advance(world.context(), 1)
    assert report.response.action == "gradual-rollback"
    production = world.production()
    (stable,) = production.live.versions
    assert world.api.get_version(production.script, stable.version_id).vars["LEGACY_BRIDGE"] == (
        "true"
    )
    notes = [
        d.mark.detail for d in production.deployments if d.mark and d.mark.kind is MarkKind.ADVISORY
    ]
    assert notes[::-1] == ["gradual:25"]  # from 50 %: 25, then 0 and the full rollback


def test_ai_latency_switches_the_ai_feature_off_without_moving_traffic(world):
    run_to(world, 2, "canary-25")
    before = sorted(v.percentage for v in world.production().live.versions)
    world.set_metric("ai-timeouts", {"value": 0.4})  # 40 % of AI calls time out
    report = advance(world.context(), 2)
    assert report.response.action == "feature-rollback" and report.response.feature == "ai"
    production = world.production()
    assert sorted(v.percentage for v in production.live.versions) == before
    for share in production.live.versions:
        version = world.api.get_version(production.script, share.version_id)
        assert (
            version.vars.get("AI_ANALYSIS") == "false"
            and "OPENAI_API_KEY" not in version.secret_names
        )


def test_a_pii_redaction_miss_halts_without_rolling_anything_back(world):
    # the second look caught it and nothing was sent: proportionate is a halt, not a rollback
    run_to(world, 2, "canary-25")
    world.set_metric("pii-redaction-miss", {"value": 1})
    posts = world.emulator.calls("POST")
    report = advance(world.context(), 2)
    assert report.response.action == "halt" and report.status is AdvanceStatus.TRIGGERED
    assert world.emulator.calls("POST") == posts


def test_phase_five_halts_without_touching_anything(world):
    run_to(world, 4, "threading-validation")
    world.clock.advance(timedelta(days=4))
    world.set_metric("routing-p95-slow", {"value": 7})
    posts = world.emulator.calls("POST")
    report = advance(world.context(), 5)
    assert report.response.action == "halt" and report.status is AdvanceStatus.TRIGGERED
    assert world.emulator.calls("POST") == posts


def test_no_data_is_inconclusive_and_halts(world):
    run_to(world, 1, "staging")
    world.clock.advance(timedelta(days=1))
    world.set_metric("delivery-rate-low", {"value": 0.0001, "missing": True})
    report = advance(world.context(), 1)
    assert report.status is AdvanceStatus.INCONCLUSIVE and report.exit_code == 3
    assert "delivery-rate-low" in report.message or "no data" in report.message.lower()


def test_a_change_underneath_stops_the_run_before_it_moves_traffic(world):
    advance(world.context(), 1)
    approve(world.context(), 1, "bridge")
    world.clock.advance(timedelta(days=1))

    def someone_else_deploys(plan) -> bool:
        production = world.production()
        world.api.deploy(
            production.script,
            {production.live.versions[0].version_id: 100.0},
            message="hotfix by hand",
        )
        return True

    with pytest.raises(ConflictError) as stopped:
        advance(world.context(), 1, confirm=someone_else_deploys)
    assert "changed underneath you" in stopped.value.message


def test_two_concurrent_advances_apply_exactly_once(world):
    advance(world.context(), 1)
    approve(world.context(), 1, "bridge")
    world.clock.advance(timedelta(days=1))
    barrier = threading.Barrier(2)
    results, errors = [], []

    def wait_for_the_other(plan) -> bool:
        barrier.wait(timeout=10)
        return True

    def run() -> None:
        ctx = world.context(api=world.api_for())
        try:
            results.append(advance(ctx, 1, confirm=wait_for_the_other))
        except ConflictError as error:
            errors.append(error)
        except Exception:  # reported by the assertion below: only a conflict is acceptable
            results.append(traceback.format_exc())
        finally:
            ctx.api.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [getattr(r, "status", r) for r in results] == [AdvanceStatus.APPLIED], (results, errors)
    assert len(errors) == 1, [e.message for e in errors]
    production = world.production()
    stamps = [
        d
        for d in production.deployments
        if d.mark and d.mark.kind is MarkKind.STEP and d.mark.step == "bridge"
    ]
    assert len(stamps) == 1
    tags = [v.tag for v in production.versions.values() if v.tag]
    assert len(tags) == len(set(tags))


def test_every_action_and_verdict_is_journaled(world):
    advance(world.context(), 1)
    (run,) = world.journal.runs(phase=1)
    assert run.status == "applied" and run.step == "staging"
    assert [a["kind"] for a in run.actions] == ["upload_version", "set_traffic", "stamp"]
    assert {v["name"] for v in run.verdicts} == {
        "delivery-rate-low",
        "delivery-stopped",
        "routing-errors",
    }


def test_a_step_failing_part_way_says_what_it_did_and_how_to_finish_or_undo(world):
    advance(world.context(), 1)
    approve(world.context(), 1, "bridge")
    world.clock.advance(timedelta(days=1))
    world.emulator.faults.fail_nth_mutation(
        6, status=400
    )  # after the claim, the D1 export and the upload
    with pytest.raises(CloudflareError) as stopped:
        advance(world.context(), 1)
    error = stopped.value
    assert "stopped part-way. Done: export D1 database" in error.state_left
    assert "upload the bundle" in error.state_left and "Not done:" in error.state_left
    assert "tgk-deploy advance --phase 1 finishes the step" in error.hint
    assert "tgk-deploy rollback --immediate undoes it" in error.hint


def test_a_halt_stops_every_later_advance_until_resume(world):
    """What no metric sees (buttons that confuse users): a person halts, CI honours it."""
    run_to(world, 1, "canary-10")
    halted = halt(world.context(), "users confused by the buttons")
    assert halted["halt"] is True
    assert world.production().live.mark.detail == "halt:users-confused-b"
    world.clock.advance(timedelta(days=5))
    posts = world.emulator.calls("POST")
    refused = advance(world.context(), 1)
    assert refused.status is AdvanceStatus.REFUSED and refused.exit_code == 4
    (stop,) = [r for r in refused.plan.refusals if r.reason is RefusalReason.HALTED]
    assert "halted" in stop.message and "users confused b" in stop.message
    assert stop.command.startswith("tgk-deploy resume")
    assert world.emulator.calls("POST") == posts  # nothing moved
    assert halt(world.context(), "again")["already"] is True
    resume(world.context())
    go = advance(world.context(), 1)
    assert (go.status, go.step) == (AdvanceStatus.APPLIED, "canary-50")


def test_a_dry_run_approval_records_nothing(world):
    advance(world.context(), 1)  # staging; the bridge waits for a person
    posts = world.emulator.calls("POST")
    dry = approve(world.context(), 1, "bridge", dry_run=True)
    assert dry["dry_run"] is True and "bridge" in str(dry["would_record"])
    assert world.emulator.calls("POST") == posts
    assert approve(world.context(), 1, "bridge")["approved"] is True
    assert world.emulator.calls("POST") == posts + 1
