"""The receiver runs a fired trigger's declared response, once, and only for what is live.

Alerts are posted over HTTP to a receiver whose engine talks to the emulator
(simulated clock): what it did is read back from Cloudflare (the emulator),
the journal and the receiver's own log.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from tests.engine.test_advance import run_to
from tests.receiver.conftest import alert, webhook
from tgk_deploy.planner.observed import MarkKind


def mutations(world) -> dict[str, int]:
    return {
        "deployments": world.emulator.calls("POST", "/deployments"),
        "versions": world.emulator.calls("POST", "/versions"),
        "email rules": world.emulator.calls("PUT"),
    }


def stable_only(world) -> bool:
    """All traffic on phase 1's bridge (the existing system's path): a phase-1 rollback's stable."""
    production = world.production()
    (share, *others) = production.live.versions
    bridge = (production.versions[share.version_id].tag or "").startswith("tgk-p1b-")
    return not others and share.percentage == 100.0 and bridge


def test_a_firing_trigger_rolls_the_canary_back_as_declared(world, alert_receivers):
    run_to(world, 1, "canary-10")
    receiver = alert_receivers.start()

    answer = receiver.post(webhook(alert(1, "delivery-rate-low", starts_at=world.clock.now())))

    assert answer.status_code == 200 and answer.json() == {"queued": 1}
    [handled] = receiver.wait()
    assert (handled.outcome, handled.response) == ("acted", "immediate-rollback")
    assert stable_only(world)
    assert world.production().live.mark.kind is MarkKind.ROLLBACK
    rules = world.observe().email_rules
    assert rules["legacy"].enabled and not rules["worker"].enabled
    runs = {run.id: run for run in world.journal.runs()}
    assert runs[handled.run_id].command == "rollback"
    assert runs[handled.run_id].status == "succeeded"


def test_ten_deliveries_to_two_receivers_at_once_make_one_rollback(world, alert_receivers):
    run_to(world, 1, "canary-10")
    before = mutations(world)
    pair = [alert_receivers.start(), alert_receivers.start()]  # an HA pair sharing the run lock
    body = webhook(alert(1, "delivery-rate-low", starts_at=world.clock.now()))

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda i: pair[i % 2].post(body), range(20)))

    assert {a.status_code for a in answers} == {200}
    handled = [h for receiver in pair for h in receiver.wait()]
    assert len(handled) == 20
    assert [h.outcome for h in handled].count("acted") == 1
    assert {h.reason for h in handled if h.outcome != "acted"} == {"already-done"}
    after = mutations(world)
    # one rollback: one deployment (all traffic to stable), the Worker rule off (legacy
    # routing stayed on through canary-10), no version
    assert after["deployments"] - before["deployments"] == 1
    assert after["versions"] == before["versions"]
    assert after["email rules"] - before["email rules"] == 1
    assert stable_only(world)


def test_an_ha_pair_on_two_hosts_makes_one_rollback_when_one_is_the_standby(
    world, alert_receivers, tmp_path
):
    from tgk_deploy.journal.store import Journal

    run_to(world, 1, "canary-10")
    before = mutations(world)
    other_host = Journal(tmp_path / "other-host" / "journal.sqlite")  # its own run lock
    primary = alert_receivers.start()
    standby = alert_receivers.start(
        context={"journal": other_host}, standby=timedelta(milliseconds=500)
    )
    body = webhook(alert(1, "delivery-rate-low", starts_at=world.clock.now()))

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda receiver: receiver.post(body), (standby, primary)))

    [first], [second] = primary.wait(), standby.wait()
    assert (first.outcome, second.outcome, second.reason) == ("acted", "ignored", "already-done")
    assert mutations(world)["deployments"] - before["deployments"] == 1
    other_host.close()


def test_a_feature_rollback_switches_the_feature_off_once(world, alert_receivers):
    run_to(world, 2, "canary-25")
    receiver = alert_receivers.start()
    body = webhook(alert(2, "ai-timeouts", starts_at=world.clock.now()))

    receiver.post(body)
    receiver.wait()
    versions = world.emulator.calls("POST", "/versions")
    receiver.post(body)
    first, second = receiver.wait()

    assert (first.outcome, first.response) == ("acted", "feature-rollback")
    assert (second.outcome, second.reason) == ("ignored", "already-done")
    assert world.emulator.calls("POST", "/versions") == versions
    production = world.production()
    for share in production.live.versions:
        version = world.api.get_version(production.script, share.version_id)
        assert version.vars["AI_ANALYSIS"] == "false"
        assert "OPENAI_API_KEY" not in version.secret_names


def test_a_gradual_rollback_steps_down_then_rolls_back_fully(world, alert_receivers):
    run_to(world, 1, "full")
    receiver = alert_receivers.start()
    started = world.clock.now()

    receiver.post(webhook(alert(1, "routing-errors", starts_at=started)))

    [handled] = receiver.wait()
    assert (handled.outcome, handled.response) == ("acted", "gradual-rollback")
    assert [p["next_share"] for p in handled.result["plans"]] == [75, 50, 25, 0]
    assert world.clock.now() - started == timedelta(minutes=90)  # the simulated clock's intervals
    assert stable_only(world)


def test_a_resolved_alert_changes_nothing(world, alert_receivers):
    run_to(world, 1, "canary-10")
    receiver = alert_receivers.start()
    before = mutations(world)

    receiver.post(
        webhook(alert(1, "delivery-rate-low", starts_at=world.clock.now(), status="resolved"))
    )

    [handled] = receiver.wait()
    assert (handled.outcome, handled.reason) == ("ignored", "resolved")
    assert mutations(world) == before


def test_only_what_is_live_is_acted_on(world, alert_receivers):
    run_to(world, 1, "canary-10")
    receiver = alert_receivers.start(max_age=timedelta(minutes=30))
    now = world.clock.now()
    before = mutations(world)

    receiver.post(
        webhook(
            alert(3, "external-api-failures", starts_at=now),  # phase 3 has not started
            alert(1, "delivery-rate-low", starts_at=now, candidate="0ld-version"),
            alert(1, "delivery-rate-low", starts_at=now, environment="staging"),
            alert(1, "delivery-rate-low", starts_at=now - timedelta(hours=2)),
            alert(1, "no-such-trigger", starts_at=now),
            {**alert(1, "delivery-rate-low", starts_at=now), "labels": {"alertname": "Other"}},
        )
    )

    reasons = [(h.outcome, h.reason) for h in receiver.wait()]
    assert reasons == [
        ("ignored", "phase-not-live"),
        ("ignored", "not-candidate"),
        ("ignored", "environment-not-owned"),
        ("ignored", "stale"),
        ("ignored", "not-ours"),
        ("ignored", "not-ours"),
    ]
    assert mutations(world) == before


def test_the_candidate_label_of_the_live_candidate_is_acted_on(world, alert_receivers):
    run_to(world, 1, "canary-10")
    production = world.production()
    candidate = next(
        s.version_id
        for s in production.live.versions
        if s.version_id != world.seeded["tgk-email-orchestrator"]
    )
    receiver = alert_receivers.start()

    receiver.post(
        webhook(alert(1, "delivery-rate-low", starts_at=world.clock.now(), candidate=candidate))
    )

    [handled] = receiver.wait()
    assert handled.outcome == "acted"
    assert stable_only(world)


def test_dry_run_journals_what_it_would_do_and_changes_nothing(world, alert_receivers):
    run_to(world, 1, "canary-10")
    receiver = alert_receivers.start(dry_run=True)
    before = mutations(world)

    receiver.post(webhook(alert(1, "delivery-rate-low", starts_at=world.clock.now())))

    [handled] = receiver.wait()
    assert handled.outcome == "planned"
    assert handled.result["plans"][0]["mode"] == "immediate"
    assert mutations(world) == before
    [serve] = [run for run in world.journal.runs() if run.command == "serve"]
    [entry] = [a for a in serve.actions if a["kind"] == "alert"]
    assert entry["status"] == "planned" and "immediate-rollback" in entry["description"]


def test_stopping_finishes_the_rollback_in_progress(world, alert_receivers):
    run_to(world, 1, "canary-10")
    receiver = alert_receivers.start()
    world.emulator.faults.set_latency(50)

    receiver.post(webhook(alert(1, "delivery-rate-low", starts_at=world.clock.now())))
    assert receiver.server.stop(timeout=60)

    [handled] = receiver.responder.handled
    assert handled.outcome == "acted"
    assert stable_only(world)


def test_people_are_told_as_advance_tells_them_and_a_repeat_tells_nobody(
    world, alert_receivers, receivers
):
    from tests.engine.test_notify import notifier_for

    run_to(world, 1, "canary-10")
    slack, pagerduty = receivers("ok"), receivers("ok")
    receiver = alert_receivers.start(context={"notifier": notifier_for(slack.url, pagerduty.url)})
    body = webhook(
        alert(1, "delivery-rate-low", starts_at=world.clock.now(), name="EmailDeliveryFailing")
    )

    receiver.post(body)
    receiver.wait()
    sent = len(slack.requests)
    receiver.post(body)
    receiver.wait()

    texts = [r.body["text"] for r in slack.requests]
    assert any("EmailDeliveryFailing fired" in t for t in texts)
    assert any("started" in t for t in texts) and any("rolled back" in t for t in texts)
    assert [r.body["event_action"] for r in pagerduty.requests].count("resolve") == 1
    assert len(slack.requests) == sent  # the repeat found it done: nobody is paged again
