"""Email Routing rules and the catch-all, the D1 export, and the guarded deletes, over HTTP."""

from __future__ import annotations

import pytest

from tgk_deploy.emulator import DEFAULT_ACCOUNT_ID
from tgk_deploy.errors import CloudflareError, ConfigError
from tgk_deploy.spec.models import D1Spec, EmailRoutingSpec

ROUTING = EmailRoutingSpec(
    zone_id="${CLOUDFLARE_ZONE_ID}",
    worker_rule="tgk-email-orchestrator",
    legacy_rule="legacy-email-router",
)


@pytest.fixture
def demo(cloudflare):
    return cloudflare.emulator.state.seed_demo()


def by_name(rules):
    return {rule.name: rule for rule in rules}


def test_email_rules_lists_every_rule_with_its_matchers_and_actions(cloudflare, demo):
    rules = by_name(cloudflare.api.email_rules())

    worker = rules["tgk-email-orchestrator"]
    assert (worker.id, worker.enabled) == (demo["worker_rule"], False)
    assert worker.actions == [{"type": "worker", "value": ["tgk-email-orchestrator"]}]
    assert worker.matchers[0]["type"] == "literal"
    assert rules["legacy-email-router"].enabled is True


def test_email_rules_reads_every_page(cloudflare):
    state = cloudflare.emulator.state
    for number in range(120):
        state.seed_email_rule(f"rule-{number:03}", to=f"a{number}@tgk.invalid")

    rules = cloudflare.api.email_rules()

    assert sorted(r.name for r in rules) == [f"rule-{n:03}" for n in range(120)]
    assert cloudflare.emulator.calls("GET", "/rules") == 3  # 50 a page


def test_get_email_rule_returns_the_whole_rule(cloudflare, demo):
    rule = cloudflare.api.get_email_rule(demo["legacy_rule"])
    assert rule.name == "legacy-email-router"
    assert rule.actions[0]["type"] == "forward"


def test_update_email_rule_puts_the_whole_rule(cloudflare, demo):
    rule = cloudflare.api.get_email_rule(demo["worker_rule"])

    updated = cloudflare.api.update_email_rule(rule.model_copy(update={"enabled": True}))

    assert updated.enabled is True
    assert updated.matchers == rule.matchers and updated.actions == rule.actions
    assert cloudflare.api.get_email_rule(rule.id).enabled is True


def test_set_email_rule_enabled_fetches_a_partial_rule_and_skips_a_no_op(cloudflare, demo):
    partial = by_name(cloudflare.api.email_rules())["legacy-email-router"].model_copy(
        update={"matchers": [], "actions": []}
    )

    off = cloudflare.api.set_email_rule_enabled(ROUTING, partial, False)
    puts = cloudflare.emulator.calls("PUT", demo["legacy_rule"])
    again = cloudflare.api.set_email_rule_enabled(ROUTING, off, False)

    assert off.enabled is False and again.enabled is False
    assert off.actions[0]["type"] == "forward"  # the PUT carried the actions again
    assert puts == 1
    assert cloudflare.emulator.calls("PUT", demo["legacy_rule"]) == 1  # no second PUT


def test_catch_all_read_and_update(cloudflare, demo):
    rule = cloudflare.api.catch_all()
    assert rule["matchers"] == [{"type": "all"}]

    updated = cloudflare.api.update_catch_all(
        {**rule, "enabled": True, "actions": [{"type": "forward", "value": ["ops@tgk.invalid"]}]}
    )

    assert updated["enabled"] is True
    assert cloudflare.api.catch_all()["actions"] == [
        {"type": "forward", "value": ["ops@tgk.invalid"]}
    ]


def test_email_calls_without_a_zone_id_are_a_config_error(emulator):
    from tests.fixtures.cloudflare import make_api

    with make_api(emulator, [], zone_id=None) as api, pytest.raises(ConfigError):
        api.email_rules()
    assert emulator.calls() == 0


def test_export_d1_polls_until_complete_and_writes_the_sql_file(cloudflare, demo, tmp_path):
    cloudflare.emulator.state.export_polls = 3
    database = D1Spec(name="tgk-email-db", database_id="${TGK_D1_DATABASE_ID}")
    cloudflare.api.refs = {"TGK_D1_DATABASE_ID": demo["d1_database_id"]}

    written = cloudflare.api.export_d1(database, tmp_path / "backups" / "p1.sql", poll_interval=2)

    assert written == tmp_path / "backups" / "p1.sql"
    assert "CREATE TABLE emails" in written.read_text()
    assert cloudflare.emulator.calls("POST", "/export") == 4  # start + 3 polls
    assert cloudflare.slept == [2, 2, 2]  # the injected sleep, never the wall clock
    assert not (tmp_path / "backups" / "p1.partial").exists()


def test_export_d1_gives_up_at_the_deadline_and_says_the_export_was_abandoned(emulator, tmp_path):
    from tests.fixtures.cloudflare import make_api

    ids = emulator.state.seed_demo()
    emulator.state.export_polls = 1000
    database = D1Spec(name="tgk-email-db", database_id="${TGK_D1_DATABASE_ID}")
    with make_api(
        emulator, [], timeout=5, refs={"TGK_D1_DATABASE_ID": ids["d1_database_id"]}
    ) as api:
        moments = iter([0.0])  # the export's deadline starts at 0 ...
        api.monotonic = lambda: next(
            moments, 4.5
        )  # ... then 4.5 s have gone: 0.5 s left, polls every 1 s
        with pytest.raises(CloudflareError) as caught:
            api.export_d1(database, tmp_path / "x.sql")
    assert "abandoned" in caught.value.state_left
    assert not (tmp_path / "x.sql").exists()


@pytest.mark.parametrize("confirm", [None, "wrong-name", "TGK-EMAIL-ORCHESTRATOR"])
def test_deleting_a_script_needs_its_exact_name(cloudflare, demo, confirm):
    with pytest.raises(ConfigError, match="cannot be undone"):
        cloudflare.api.delete_script("tgk-email-orchestrator", confirm=confirm)
    assert cloudflare.emulator.calls() == 0


def test_guarded_deletes_go_through_with_the_name_typed(cloudflare, demo):
    api, state = cloudflare.api, cloudflare.emulator.state
    api.refs = {"TGK_D1_DATABASE_ID": demo["d1_database_id"]}
    database = D1Spec(name="tgk-email-db", database_id="${TGK_D1_DATABASE_ID}")

    with pytest.raises(ConfigError):
        api.delete_d1(database, confirm="tgk-email")
    with pytest.raises(ConfigError):
        api.delete_r2_bucket("tgk-email-attachments", confirm=None)
    assert cloudflare.emulator.calls() == 0

    api.delete_script("tgk-email-orchestrator", confirm="tgk-email-orchestrator")
    api.delete_d1(database, confirm="tgk-email-db")
    api.delete_r2_bucket("tgk-email-attachments", confirm="tgk-email-attachments")

    assert (DEFAULT_ACCOUNT_ID, "tgk-email-orchestrator") not in state.scripts
    assert not state.databases and not state.buckets
    assert cloudflare.emulator.calls("DELETE") == 3


def test_deleting_a_bucket_that_is_not_empty_says_so(cloudflare):
    cloudflare.emulator.state.seed_r2("full", objects={"a.eml": b"x"})
    with pytest.raises(CloudflareError) as caught:
        cloudflare.api.delete_r2_bucket("full", confirm="full")
    assert (caught.value.status, caught.value.codes) == (409, [10008])
    assert "not empty" in caught.value.message
