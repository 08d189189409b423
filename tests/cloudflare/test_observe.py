"""The observer: Cloudflare's reads as the planner's ObservedState, in two concurrent rounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.fixtures.cloudflare import seed_canary
from tgk_deploy.cloudflare.observe import observe, observe_environment
from tgk_deploy.emulator import DEFAULT_ZONE_ID
from tgk_deploy.errors import MissingResource

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


ZONE = DEFAULT_ZONE_ID


def test_observe_reads_splits_versions_secrets_and_rules_of_every_environment(cloudflare, spec):
    ids = seed_canary(cloudflare.emulator)

    observed = observe(cloudflare.api, spec.project, now=NOW)

    production = observed.environments["production"]
    assert production.live.mark.step == "canary-10"
    assert production.live.share_of(ids["candidate"]) == 10.0
    assert set(production.versions) == {ids["candidate"], ids["stable"]}
    candidate = production.versions[ids["candidate"]]
    assert (candidate.number, candidate.tag) == (2, "tgk-p1-cand")
    assert candidate.vars["DYNAMIC_ROUTING"] == "true"  # details of live versions: vars too
    assert production.secret_names == ["TELEGRAM_BOT_TOKEN"]
    staging = observed.environments["staging"]
    assert staging.live.mark.step == "staging"
    assert len(staging.versions) == 2  # the list: every version, live or not
    assert observed.email_rules["worker"].enabled is True
    assert observed.email_rules["legacy"].name == "legacy-email-router"
    assert observed.observed_at == NOW
    # round 1: 2 deployments + 2 version lists + rules; round 2: 3 live versions
    assert len(cloudflare.emulator.requests) == 8


def test_observe_issues_independent_reads_at_once(cloudflare, spec):
    seed_canary(cloudflare.emulator)
    cloudflare.emulator.faults.set_latency(60)

    observe(cloudflare.api, spec.project, now=NOW)

    spans = sorted(
        (datetime.fromisoformat(r.timestamp) - timedelta(milliseconds=r.duration_ms), r)
        for r in cloudflare.emulator.requests
    )
    first, second = spans[:5], spans[5:]
    first_end = max(datetime.fromisoformat(r.timestamp) for _, r in first)
    assert all(start < first_end for start, _ in first)  # the five overlap
    assert all("/versions/" in r.path for _, r in second)
    second_end = max(datetime.fromisoformat(r.timestamp) for _, r in second)
    assert all(start < second_end for start, _ in second)


def test_observe_marks_a_missing_script_and_a_missing_rule(cloudflare, spec):
    cloudflare.emulator.state.seed_script("tgk-email-orchestrator")

    observed = observe(cloudflare.api, spec.project, now=NOW, require=False)

    assert observed.environments["production"].exists is True
    assert observed.environments["staging"].exists is False
    assert observed.email_rules == {"worker": None, "legacy": None}


def test_a_missing_script_or_rule_is_an_error_naming_each(cloudflare, spec):
    cloudflare.emulator.state.seed_script("tgk-email-orchestrator")

    with pytest.raises(MissingResource) as missing:
        observe(cloudflare.api, spec.project, now=NOW)

    assert missing.value.exit_code == 6
    assert missing.value.missing == [
        "Worker script 'tgk-email-orchestrator-staging' (environments.staging.script)",
        f"email routing rule 'tgk-email-orchestrator' (email_routing.worker_rule) on zone {ZONE}",
        f"email routing rule 'legacy-email-router' (email_routing.legacy_rule) on zone {ZONE}",
    ]


def test_observe_environment_re_reads_one_script(cloudflare):
    ids = seed_canary(cloudflare.emulator)

    env = observe_environment(cloudflare.api, "tgk-email-orchestrator")

    assert env.live.share_of(ids["stable"]) == 90.0
    assert set(env.versions) == {ids["candidate"], ids["stable"]}
    assert len(cloudflare.emulator.requests) == 2


def test_get_versions_reads_several_at_once(cloudflare):
    ids = seed_canary(cloudflare.emulator)

    versions = cloudflare.api.get_versions(
        "tgk-email-orchestrator", [ids["stable"], ids["candidate"]]
    )

    assert [v.number for v in versions] == [1, 2]


def test_an_unknown_zone_is_an_error_naming_it(cloudflare, spec):
    from tests.fixtures.cloudflare import make_api

    cloudflare.emulator.state.seed_demo()
    with (
        make_api(cloudflare.emulator, [], zone_id="0" * 32) as api,
        pytest.raises(MissingResource) as missing,
    ):
        observe(api, spec.project, now=NOW)

    assert all("0" * 32 in text for text in missing.value.missing), missing.value.missing
