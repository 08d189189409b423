"""One retry policy: dropped connections, 429 with Retry-After, 5xx, the --timeout deadline.

The emulator injects the faults; the layer's sleep is injected, so a 3 s
Retry-After is asserted, never slept.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.cloudflare import make_api
from tgk_deploy.bundle import read_bundle
from tgk_deploy.errors import CloudflareError, CloudflareUnreachable, RateLimited
from tgk_deploy.secret_values import SecretValue

WRANGLER = Path(__file__).resolve().parents[2] / "wrangler"
SCRIPT = "tgk-email-orchestrator"
VERSIONS = ".../workers/scripts/tgk-email-orchestrator/versions"
DEPLOYMENTS = ".../workers/scripts/tgk-email-orchestrator/deployments"
SECRETS = ".../workers/scripts/tgk-email-orchestrator/secrets"


def test_a_version_post_applied_then_dropped_and_retried_makes_exactly_one_version(cloudflare):
    emulator = cloudflare.emulator
    emulator.state.seed_script(SCRIPT)
    emulator.faults.drop_next("POST", VERSIONS, after=True)

    version = cloudflare.api.upload_version(
        SCRIPT, read_bundle(WRANGLER, "production"), vars={}, tag="tgk-p1-once", message="m"
    )

    versions = cloudflare.api.list_versions(SCRIPT)
    assert [v.tag for v in versions].count("tgk-p1-once") == 1
    assert len(versions) == 2
    assert version.tag == "tgk-p1-once" and version.number == 2
    assert emulator.calls("POST", "/versions") == 1  # found by its tag, not posted again
    assert [r.status for r in emulator.requests if r.method == "POST"] == [None]


def test_a_version_post_dropped_before_it_applied_is_posted_again_once(cloudflare):
    emulator = cloudflare.emulator
    emulator.state.seed_script(SCRIPT)
    emulator.faults.drop_next("POST", VERSIONS, times=2)

    cloudflare.api.upload_version(
        SCRIPT, read_bundle(WRANGLER, "production"), vars={}, tag="tgk-p1-twice", message="m"
    )

    assert [v.tag for v in cloudflare.api.list_versions(SCRIPT)].count("tgk-p1-twice") == 1
    assert emulator.calls("POST", "/versions") == 3
    assert len(cloudflare.slept) == 2  # backoff between the attempts


def test_a_derived_version_survives_a_dropped_response_too(cloudflare):
    emulator = cloudflare.emulator
    base = emulator.state.seed_script(SCRIPT, vars={"DYNAMIC_ROUTING": "true"})
    emulator.faults.drop_next("POST", VERSIONS, after=True)

    derived = cloudflare.api.derive_version(
        SCRIPT, base.id, vars={"DYNAMIC_ROUTING": "false"}, tag="tgk-p3-off"
    )

    assert derived.vars == {"DYNAMIC_ROUTING": "false"}
    assert len(cloudflare.api.list_versions(SCRIPT)) == 2


def test_a_deployment_post_applied_then_dropped_is_not_made_twice(cloudflare):
    emulator = cloudflare.emulator
    stable = emulator.state.seed_script(SCRIPT)
    candidate = emulator.state.seed_version(SCRIPT, tag="tgk-p1-c")
    emulator.faults.drop_next("POST", DEPLOYMENTS, after=True)

    made = cloudflare.api.deploy(
        SCRIPT, {candidate.id: 10, stable.id: 90}, message="tgk p=1 s=canary-10"
    )

    assert made.message == "tgk p=1 s=canary-10"
    assert len(cloudflare.api.deployments(SCRIPT)) == 2  # the seed's and exactly one more
    assert emulator.calls("POST", "/deployments") == 1


def test_429_with_retry_after_3_s_is_waited_out_and_succeeds(cloudflare):
    emulator = cloudflare.emulator
    emulator.state.seed_script(SCRIPT, secrets={"TELEGRAM_BOT_TOKEN": "1:a"})
    emulator.faults.fail_next("GET", SECRETS, status=429, retry_after=3)

    names = cloudflare.api.list_secrets(SCRIPT)

    assert names == ["TELEGRAM_BOT_TOKEN"]
    assert cloudflare.slept == [3.0]
    assert cloudflare.api.last_policy.waits == [3.0]
    assert [r.status for r in emulator.requests] == [429, 200]


def test_429_on_a_deployment_is_waited_out_and_the_policy_reports_the_wait(cloudflare):
    emulator = cloudflare.emulator
    stable = emulator.state.seed_script(SCRIPT)
    candidate = emulator.state.seed_version(SCRIPT)
    emulator.faults.fail_next("POST", DEPLOYMENTS, status=429, retry_after=3)

    cloudflare.api.deploy(SCRIPT, {candidate.id: 25, stable.id: 75})

    assert cloudflare.api.last_policy.waits == [3.0]  # the deploy's policy, not its re-read's
    assert cloudflare.slept == [3.0]
    assert emulator.calls("POST", "/deployments") == 2


def test_a_retry_after_longer_than_the_timeout_is_a_rate_limited_error_that_says_so(emulator):
    emulator.state.seed_script(SCRIPT)
    emulator.faults.fail_next("GET", SECRETS, status=429, retry_after=300)
    slept: list[float] = []

    with make_api(emulator, slept, timeout=30) as api, pytest.raises(RateLimited) as caught:
        api.list_secrets(SCRIPT)

    error = caught.value
    assert slept == []  # it did not wait for nothing
    assert error.status == 429
    assert error.codes == [971]
    assert "300 s" in error.message and "--timeout" in error.message
    assert error.operation == f"list secrets of {SCRIPT}"
    assert error.exit_code == 6


def test_5xx_is_retried_with_growing_backoff_and_then_succeeds(cloudflare):
    emulator = cloudflare.emulator
    emulator.state.seed_script(SCRIPT)
    emulator.faults.fail_next("GET", DEPLOYMENTS, status=503, times=3)

    live = cloudflare.api.live_deployment(SCRIPT)

    assert live is not None
    assert [r.status for r in emulator.requests] == [503, 503, 503, 200]
    waits = cloudflare.api.last_policy.waits
    assert len(waits) == 3
    policy = cloudflare.api.last_policy
    for attempt, wait in enumerate(waits, 1):  # full jitter under a doubling ceiling
        assert 0 <= wait <= min(policy.cap, policy.base * 2**attempt)


def test_5xx_that_never_ends_gives_up_after_the_attempts_and_says_what_failed(cloudflare):
    emulator = cloudflare.emulator
    emulator.state.seed_script(SCRIPT)
    emulator.faults.fail_next("GET", DEPLOYMENTS, status=500, times=100)

    with pytest.raises(CloudflareUnreachable) as caught:
        cloudflare.api.deployments(SCRIPT)

    error = caught.value
    assert error.status == 500
    assert error.codes == [10002]
    assert "gave up after 8 attempts" in error.message
    assert emulator.calls() == 8


def test_dropped_connections_on_reads_are_retried(cloudflare):
    emulator = cloudflare.emulator
    emulator.state.seed_script(SCRIPT)
    emulator.faults.drop_next("GET", DEPLOYMENTS, times=2)

    assert cloudflare.api.live_deployment(SCRIPT) is not None
    assert emulator.calls("GET", "/deployments") == 3


def test_a_rejected_mutation_is_not_retried_and_says_what_state_it_left(cloudflare):
    emulator = cloudflare.emulator
    stable = emulator.state.seed_script(SCRIPT)
    candidate = emulator.state.seed_version(SCRIPT)

    emulator.faults.fail_nth_mutation(1, status=400)
    with pytest.raises(CloudflareError) as caught:
        cloudflare.api.deploy(SCRIPT, {candidate.id: 10, stable.id: 90})

    error = caught.value
    assert error.status == 400
    assert error.state_left == f"traffic on {SCRIPT} unchanged"
    assert error.operation.startswith("deploy ")
    assert emulator.calls("POST", "/deployments") == 1
    as_json = error.to_dict()
    assert as_json["cloudflare_errors"] == [
        {"code": 10002, "message": "Internal server error (injected by the emulator)"}
    ]
    assert as_json["state_left"] == error.state_left


def test_secret_values_never_appear_in_any_error_text_or_repr(cloudflare):
    """Every failure path of every call that carries a secret value, grepped for the value."""
    emulator = cloudflare.emulator
    value = "sk-never-print-this-0123456789"
    secret = SecretValue("OPENAI_API_KEY", value)
    base = emulator.state.seed_script(SCRIPT)
    candidate = emulator.state.seed_version(SCRIPT)
    api = cloudflare.api
    errors: list[BaseException] = []

    def collect(call, *setup) -> None:
        for arrange in setup:
            arrange()
        try:
            call()
        except Exception as error:  # every kind is grepped
            errors.append(error)

    faults = emulator.faults
    collect(
        lambda: api.put_secret(SCRIPT, secret),
        lambda: faults.fail_next("PUT", SECRETS, status=400, times=1),
    )
    collect(
        lambda: api.put_secret(SCRIPT, secret),
        lambda: faults.fail_next("PUT", SECRETS, status=500, times=20),
    )
    collect(
        lambda: api.put_secret(SCRIPT, secret), lambda: faults.drop_next("PUT", SECRETS, times=20)
    )
    faults.clear()
    api.deploy(SCRIPT, {candidate.id: 50, base.id: 50})
    collect(lambda: api.put_secret(SCRIPT, secret))  # 10215 during the split
    collect(
        lambda: api.derive_version(SCRIPT, base.id, add_secrets=[secret], tag="tgk-s1"),
        lambda: faults.fail_next("POST", VERSIONS, status=400),
    )
    collect(
        lambda: api.derive_version(SCRIPT, base.id, add_secrets=[secret], tag="tgk-s2"),
        lambda: faults.drop_next("POST", VERSIONS, times=20),
    )
    collect(
        lambda: api.derive_version(SCRIPT, "0000-no-such-version", add_secrets=[secret]),
    )

    assert len(errors) == 7
    for error in errors:
        texts = [
            str(error),
            repr(error),
            repr(error.__dict__),
            repr(getattr(error, "to_dict", dict)()),
        ]
        chain = error.__cause__ or error.__context__
        while chain is not None:
            texts += [str(chain), repr(chain)]
            chain = chain.__cause__ or chain.__context__
        assert all(value not in text for text in texts), type(error).__name__
    assert value not in repr(secret) and value not in str(secret)


def test_a_retry_after_beyond_the_sdks_60_s_is_still_honoured_within_the_timeout(emulator):
    emulator.state.seed_script(SCRIPT)
    emulator.faults.fail_next("GET", DEPLOYMENTS, status=429, retry_after=120)
    slept: list[float] = []

    with make_api(emulator, slept, timeout=300) as api:
        assert api.live_deployment(SCRIPT) is not None

    assert slept == [120.0]


def test_idempotent_puts_are_retried_on_5xx_and_429(cloudflare):
    emulator = cloudflare.emulator
    ids = emulator.state.seed_demo()
    emulator.faults.fail_next("PUT", SECRETS, status=502)
    emulator.faults.fail_next("PUT", f"...{ids['worker_rule']}", status=429, retry_after=1)

    cloudflare.api.put_secret(SCRIPT, SecretValue("OPENAI_API_KEY", "sk-put-retried-value"))
    rule = cloudflare.api.get_email_rule(ids["worker_rule"])
    cloudflare.api.update_email_rule(rule.model_copy(update={"enabled": True}))

    assert cloudflare.api.list_secrets(SCRIPT) == ["OPENAI_API_KEY", "TELEGRAM_BOT_TOKEN"]
    assert cloudflare.api.get_email_rule(ids["worker_rule"]).enabled is True
    assert emulator.calls("PUT") == 4
    assert 1.0 in cloudflare.slept


def test_a_version_upload_that_never_gets_through_says_what_state_it_left(cloudflare):
    emulator = cloudflare.emulator
    emulator.state.seed_script(SCRIPT)
    emulator.faults.drop_next("POST", VERSIONS, times=100)

    with pytest.raises(CloudflareUnreachable) as caught:
        cloudflare.api.upload_version(
            SCRIPT, read_bundle(WRANGLER, "production"), vars={}, tag="tgk-p1-lost", message="m"
        )

    error = caught.value
    assert error.operation == f"upload a version of {SCRIPT}"
    assert error.status is None  # no answer at all
    assert "tgk-p1-lost" in error.state_left
    assert "gave up after 8 attempts" in error.message
    assert len(cloudflare.api.list_versions(SCRIPT)) == 1  # and indeed nothing was made


def test_a_dropped_deployment_with_a_message_past_50_characters_is_not_made_twice(cloudflare):
    """Cloudflare keeps 50 characters of workers/message; the re-read must compare those."""
    emulator = cloudflare.emulator
    stable = emulator.state.seed_script(SCRIPT)
    candidate = emulator.state.seed_version(SCRIPT)
    emulator.faults.drop_next("POST", DEPLOYMENTS, after=True)
    message = "tgk p=1 s=canary-10 r=r1a2b3c4 and then some more words"  # 55 characters

    made = cloudflare.api.deploy(SCRIPT, {candidate.id: 10, stable.id: 90}, message=message)

    assert made.message == message[:50]
    assert len(cloudflare.api.deployments(SCRIPT)) == 2
    assert emulator.calls("POST", "/deployments") == 1


def test_a_version_post_applied_then_answered_500_makes_exactly_one_version(cloudflare):
    emulator = cloudflare.emulator
    emulator.state.seed_script(SCRIPT)
    emulator.faults.fail_nth_mutation(1, status=500, after=True)

    version = cloudflare.api.upload_version(
        SCRIPT, read_bundle(WRANGLER, "production"), vars={}, tag="tgk-p1-500", message="m"
    )

    assert [v.tag for v in cloudflare.api.list_versions(SCRIPT)].count("tgk-p1-500") == 1
    assert version.number == 2
    assert emulator.calls("POST", "/versions") == 1


def test_a_secret_put_applied_then_dropped_is_not_put_again(cloudflare):
    """Each script-level secret PUT makes a version and a deployment: a lost answer is looked up."""
    emulator = cloudflare.emulator
    emulator.state.seed_script(SCRIPT)
    versions_before = len(cloudflare.api.list_versions(SCRIPT))
    deployments_before = len(cloudflare.api.deployments(SCRIPT))
    emulator.faults.drop_next("PUT", SECRETS, after=True)

    cloudflare.api.put_secret(SCRIPT, SecretValue("OPENAI_API_KEY", "sk-dropped-answer-value"))

    assert cloudflare.api.list_secrets(SCRIPT) == ["OPENAI_API_KEY"]
    assert emulator.calls("PUT", "/secrets") == 1
    assert len(cloudflare.api.list_versions(SCRIPT)) == versions_before + 1
    assert len(cloudflare.api.deployments(SCRIPT)) == deployments_before + 1


def test_a_secret_put_dropped_before_it_applied_is_put_again(cloudflare):
    emulator = cloudflare.emulator
    emulator.state.seed_script(SCRIPT)
    emulator.faults.drop_next("PUT", SECRETS)

    cloudflare.api.put_secret(SCRIPT, SecretValue("OPENAI_API_KEY", "sk-dropped-before-value"))

    assert cloudflare.api.list_secrets(SCRIPT) == ["OPENAI_API_KEY"]
    assert emulator.calls("PUT", "/secrets") == 2
