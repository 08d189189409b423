"""The official SDK (cloudflare 5.x) speaks to the emulator as it would to Cloudflare.

This is the emulator's side of the bargain: what the SDK sends (its
multipart encoding, its JSON) is understood, and what the emulator answers
parses into the SDK's models, defects included (CLOUDFLARE-API.md, trap 4).
"""

from __future__ import annotations

import json

import pytest

from tests.emulator.helpers import ACCOUNT, SCRIPT_NAME, ZONE
from tgk_deploy.emulator import Emulator

cloudflare = pytest.importorskip("cloudflare")
MODULE = "application/javascript+module"
WORKER = b"export default { async email(message, env) {} };\n"


@pytest.fixture
def cf(emulator: Emulator):
    with cloudflare.Cloudflare(api_token="t", base_url=emulator.url, max_retries=0) as client:
        yield client


def _create_version(cf, **metadata) -> dict:
    raw = cf.workers.scripts.versions.with_raw_response.create(
        SCRIPT_NAME,
        account_id=ACCOUNT,
        metadata={"main_module": "worker.js", "compatibility_date": "2024-09-23", **metadata},
        files=[("worker.js", WORKER, MODULE)],
    )
    return json.loads(raw.http_response.text)["result"]


def test_token_verify_and_a_bad_token(cf, emulator):
    assert cf.user.tokens.verify().status == "active"
    emulator.state.set_tokens(["only-this"])
    with pytest.raises(cloudflare.AuthenticationError):
        cf.user.tokens.verify()


def test_upload_split_and_read_back_through_the_sdk(cf, emulator):
    stable = emulator.state.seed_script(SCRIPT_NAME, secrets={"OPENAI_API_KEY": "sk"})
    version = _create_version(
        cf, annotations={"workers/tag": "k1"}, keep_bindings=["secret_text", "secret_key"]
    )
    deployment = cf.workers.scripts.deployments.create(
        SCRIPT_NAME,
        account_id=ACCOUNT,
        strategy="percentage",
        versions=[
            {"version_id": version["id"], "percentage": 25},
            {"version_id": stable.id, "percentage": 75},
        ],
        annotations={"workers/message": "tgk-deploy phase=2 step=canary-25"},
    )
    listed = cf.workers.scripts.deployments.with_raw_response.list(SCRIPT_NAME, account_id=ACCOUNT)
    newest = json.loads(listed.http_response.text)["result"]["deployments"][0]

    assert deployment.annotations.workers_message == "tgk-deploy phase=2 step=canary-25"
    assert newest["id"] == deployment.id
    versions = cf.workers.scripts.versions.list(SCRIPT_NAME, account_id=ACCOUNT)
    assert [v.number for v in versions.result.items] == [2, 1]
    content = cf.workers.scripts.content.get(
        SCRIPT_NAME, account_id=ACCOUNT, extra_query={"version": version["id"]}
    )
    assert WORKER in content.read()


def test_secret_put_during_a_split_raises_the_sdk_bad_request_with_10215(cf, emulator):
    stable = emulator.state.seed_script(SCRIPT_NAME)
    candidate = _create_version(cf)
    cf.workers.scripts.deployments.create(
        SCRIPT_NAME,
        account_id=ACCOUNT,
        strategy="percentage",
        versions=[
            {"version_id": candidate["id"], "percentage": 10},
            {"version_id": stable.id, "percentage": 90},
        ],
    )
    with pytest.raises(cloudflare.BadRequestError) as raised:
        cf.workers.scripts.secrets.update(
            SCRIPT_NAME, account_id=ACCOUNT, name="K", text="v", type="secret_text"
        )
    assert raised.value.body["errors"][0]["code"] == 10215


def test_secrets_and_settings_through_the_sdk(cf, emulator):
    emulator.state.seed_script(SCRIPT_NAME, vars={"AI_ANALYSIS": "true"})
    cf.workers.scripts.secrets.update(
        SCRIPT_NAME, account_id=ACCOUNT, name="K", text="v", type="secret_text"
    )
    names = [s.name for s in cf.workers.scripts.secrets.list(SCRIPT_NAME, account_id=ACCOUNT)]
    settings = cf.workers.scripts.script_and_version_settings.edit(
        SCRIPT_NAME,
        account_id=ACCOUNT,
        settings={
            "bindings": [
                {"type": "plain_text", "name": "AI_ANALYSIS", "text": "false"},
                {"type": "inherit", "name": "K"},
            ]
        },
    )
    cf.workers.scripts.secrets.delete("K", script_name=SCRIPT_NAME, account_id=ACCOUNT)

    assert names == ["K"]
    assert {b.name for b in settings.bindings} == {"AI_ANALYSIS", "K"}
    assert list(cf.workers.scripts.secrets.list(SCRIPT_NAME, account_id=ACCOUNT)) == []


def test_email_rules_through_the_sdk(cf):
    rule = cf.email_routing.rules.create(
        zone_id=ZONE,
        name="tgk-email-orchestrator",
        enabled=False,
        matchers=[{"type": "literal", "field": "to", "value": "alerts@tgk.example"}],
        actions=[{"type": "worker", "value": ["tgk-email-orchestrator"]}],
    )
    updated = cf.email_routing.rules.update(
        rule.id,
        zone_id=ZONE,
        name=rule.name,
        enabled=True,
        matchers=[{"type": "literal", "field": "to", "value": "alerts@tgk.example"}],
        actions=[{"type": "worker", "value": ["tgk-email-orchestrator"]}],
    )
    catch_all = cf.email_routing.rules.catch_alls.get(zone_id=ZONE)

    assert updated.enabled is True
    assert [r.name for r in cf.email_routing.rules.list(zone_id=ZONE)] == ["tgk-email-orchestrator"]
    assert catch_all.matchers[0].type == "all"


def test_d1_export_and_r2_delete_through_the_sdk(cf, emulator):
    database = emulator.state.seed_d1("tgk-email-db")
    emulator.state.seed_r2("tgk-email-attachments")
    first = cf.d1.database.export(database.uuid, account_id=ACCOUNT, output_format="polling")
    result = first
    while result.status != "complete":
        result = cf.d1.database.export(
            database.uuid,
            account_id=ACCOUNT,
            output_format="polling",
            current_bookmark=first.at_bookmark,
        )
    assert result.result.signed_url.startswith(emulator.origin)
    cf.r2.buckets.delete("tgk-email-attachments", account_id=ACCOUNT)
    assert emulator.state.buckets == {}


def test_the_sdks_own_retry_makes_a_second_version_when_the_answer_is_lost(emulator):
    """Why the client layer retries with its own tag lookup, never the SDK's blind retry."""
    emulator.state.seed_script(SCRIPT_NAME)
    emulator.faults.drop_next("POST", ".../versions", after=True)
    with cloudflare.Cloudflare(api_token="t", base_url=emulator.url, max_retries=1) as cf:
        _create_version(cf, annotations={"workers/tag": "upload-1"})
    items = cf_versions(emulator)
    assert [v["annotations"].get("workers/tag") for v in items[:2]] == ["upload-1", "upload-1"]


def cf_versions(emulator: Emulator) -> list[dict]:
    page = emulator.state.list_versions(ACCOUNT, SCRIPT_NAME)
    return page.items
