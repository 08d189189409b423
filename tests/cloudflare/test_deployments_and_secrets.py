"""Deployments, secrets and the split rules Cloudflare enforces (10215, 10220), over HTTP."""

from __future__ import annotations

import pytest

from tgk_deploy.emulator import DEFAULT_ACCOUNT_ID
from tgk_deploy.errors import CloudflareError, ConfigError
from tgk_deploy.secret_values import SecretValue

SCRIPT = "tgk-email-orchestrator"


def split(deployment):
    return {s.version_id: s.percentage for s in deployment.versions}


@pytest.fixture
def two_versions(cloudflare):
    """A stable version live at 100 % and an undeployed candidate."""
    state = cloudflare.emulator.state
    stable = state.seed_script(
        SCRIPT, vars={"DYNAMIC_ROUTING": "true"}, secrets={"TELEGRAM_BOT_TOKEN": "123:abc"}
    )
    candidate = state.seed_version(SCRIPT, vars={"DYNAMIC_ROUTING": "true"}, tag="tgk-p3-c")
    return stable.id, candidate.id


def test_deploy_a_split_then_read_it_back_as_the_live_deployment(cloudflare, two_versions):
    stable, candidate = two_versions

    made = cloudflare.api.deploy(SCRIPT, {candidate: 10, stable: 90}, message="tgk p=3 s=canary-10")

    live = cloudflare.api.live_deployment(SCRIPT)
    assert live.id == made.id
    assert split(live) == {candidate: 10.0, stable: 90.0}
    assert live.message == "tgk p=3 s=canary-10"
    assert live.mark.step == "canary-10"
    history = cloudflare.api.deployments(SCRIPT)
    assert history[0].id == made.id  # newest first
    assert len(history) == 2
    assert history[0].created_on >= history[1].created_on


def test_live_deployment_of_an_unknown_script_is_a_404(cloudflare):
    # a script with no deployment does not exist on Cloudflare; the observer maps 404 to "missing"
    with pytest.raises(CloudflareError) as caught:
        cloudflare.api.live_deployment("no-such-script")
    assert caught.value.status == 404


@pytest.mark.parametrize(
    "shares",
    [
        {"a": 50, "b": 30, "c": 20},  # three versions
        {"a": 50, "b": 30},  # sum 80
        {"a": 110, "b": -10},  # a negative share (0 % is allowed: a smoke check's candidate)
        {},
    ],
)
def test_deploy_refuses_a_bad_split_before_any_call(cloudflare, shares):
    with pytest.raises(ConfigError):
        cloudflare.api.deploy(SCRIPT, shares)
    assert cloudflare.emulator.calls() == 0


def test_going_back_to_a_version_whose_secrets_changed_needs_force(cloudflare):
    stable = cloudflare.emulator.state.seed_script(SCRIPT, secrets={"TELEGRAM_BOT_TOKEN": "1:a"}).id
    cloudflare.api.put_secret(SCRIPT, SecretValue("TELEGRAM_BOT_TOKEN", "rotated-token-value"))

    with pytest.raises(CloudflareError) as caught:
        cloudflare.api.deploy(SCRIPT, {stable: 100})

    assert 10220 in caught.value.codes
    assert "--force" in (caught.value.hint or "")
    assert "TELEGRAM_BOT_TOKEN" in caught.value.message  # the names, never the values
    assert "rotated-token-value" not in caught.value.message


def test_allow_force_deploys_after_10220(cloudflare):
    stable = cloudflare.emulator.state.seed_script(SCRIPT, secrets={"TELEGRAM_BOT_TOKEN": "1:a"}).id
    cloudflare.api.put_secret(SCRIPT, SecretValue("TELEGRAM_BOT_TOKEN", "rotated-token-value"))

    made = cloudflare.api.deploy(SCRIPT, {stable: 100}, allow_force=True, message="tgk p=3 rb=x")

    assert split(made) == {stable: 100.0}
    forced = [r.path for r in cloudflare.emulator.requests if r.method == "POST"]
    assert forced[-2:] == [
        f"/client/v4/accounts/{DEFAULT_ACCOUNT_ID}/workers/scripts/{SCRIPT}/deployments",
        f"/client/v4/accounts/{DEFAULT_ACCOUNT_ID}/workers/scripts/{SCRIPT}/deployments?force=true",
    ]


def test_secrets_put_list_and_delete_at_100_percent(cloudflare):
    cloudflare.emulator.state.seed_script(SCRIPT, secrets={"TELEGRAM_BOT_TOKEN": "123:abc"})

    cloudflare.api.put_secret(SCRIPT, SecretValue("OPENAI_API_KEY", "sk-put-secret-value"))
    assert cloudflare.api.list_secrets(SCRIPT) == ["OPENAI_API_KEY", "TELEGRAM_BOT_TOKEN"]

    cloudflare.api.delete_secret(SCRIPT, "OPENAI_API_KEY")
    assert cloudflare.api.list_secrets(SCRIPT) == ["TELEGRAM_BOT_TOKEN"]

    cloudflare.api.delete_secret(SCRIPT, "OPENAI_API_KEY")  # already gone: nothing to do
    assert cloudflare.api.list_secrets(SCRIPT) == ["TELEGRAM_BOT_TOKEN"]


def test_a_secret_change_during_a_split_gets_10215(cloudflare, two_versions):
    stable, candidate = two_versions
    cloudflare.api.deploy(SCRIPT, {candidate: 10, stable: 90})

    with pytest.raises(CloudflareError) as caught:
        cloudflare.api.put_secret(SCRIPT, SecretValue("OPENAI_API_KEY", "sk-during-split"))

    assert caught.value.codes == [10215]
    assert caught.value.status == 400
    assert "sk-during-split" not in str(caught.value)
    assert split(cloudflare.api.live_deployment(SCRIPT)) == {candidate: 10.0, stable: 90.0}
    with pytest.raises(CloudflareError) as deleting:
        cloudflare.api.delete_secret(SCRIPT, "TELEGRAM_BOT_TOKEN")
    assert deleting.value.codes == [10215]


def test_a_var_change_during_a_split_goes_through_an_inheriting_version(cloudflare, two_versions):
    """CLOUDFLARE-API.md trap 2: flip DYNAMIC_ROUTING mid-canary without touching the split."""
    stable, candidate = two_versions
    cloudflare.api.deploy(SCRIPT, {candidate: 10, stable: 90}, message="tgk p=3 s=canary-10")

    flipped = cloudflare.api.derive_version(
        SCRIPT, candidate, vars={"DYNAMIC_ROUTING": "false"}, tag="tgk-p3-off", message="off"
    )
    cloudflare.api.deploy(SCRIPT, {flipped.id: 10, stable: 90}, message="tgk p=3 s=canary-10")

    live = cloudflare.api.live_deployment(SCRIPT)
    assert split(live) == {flipped.id: 10.0, stable: 90.0}
    assert cloudflare.api.get_version(SCRIPT, flipped.id).vars["DYNAMIC_ROUTING"] == "false"
    assert cloudflare.api.get_version(SCRIPT, flipped.id).secret_names == ["TELEGRAM_BOT_TOKEN"]
