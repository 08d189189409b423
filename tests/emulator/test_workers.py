"""Workers scripts, versions, deployments, secrets and settings, over real HTTP."""

from __future__ import annotations

import json

import pytest

from tests.emulator.helpers import (
    ACCOUNT,
    SCRIPT,
    SCRIPT_NAME,
    WORKER_JS,
    client,
    codes,
    create_version,
    deploy,
    live,
    upload_files,
    version_metadata,
)
from tgk_deploy.emulator import Emulator
from tgk_deploy.emulator.routes import parse_multipart


@pytest.fixture
def http(emulator: Emulator):
    with client(emulator) as c:
        yield c


@pytest.fixture
def stable(emulator: Emulator):
    """tgk-email-orchestrator with one version live at 100 %, a var and a secret."""
    return emulator.state.seed_script(
        SCRIPT_NAME, vars={"DYNAMIC_ROUTING": "true"}, secrets={"OPENAI_API_KEY": "sk-1"}
    )


def test_every_response_is_the_cloudflare_envelope(http, stable):
    body = http.get(f"{SCRIPT}/deployments").json()
    assert set(body) >= {"success", "errors", "messages", "result"}
    assert body["success"] is True and body["errors"] == []


def test_script_put_uploads_and_deploys_at_100_percent_ending_a_split(http, stable, emulator):
    candidate = create_version(http).json()["result"]["id"]
    assert deploy(http, (candidate, 25), (stable.id, 75)).status_code == 200

    metadata = version_metadata(message="hotfix")
    response = http.put(SCRIPT, files=upload_files(metadata, {"worker.js": WORKER_JS}))

    assert response.status_code == 200
    assert response.json()["result"]["id"] == SCRIPT_NAME
    newest = http.get(f"{SCRIPT}/versions").json()["result"]["items"][0]
    assert live(http)["versions"] == [{"version_id": newest["id"], "percentage": 100.0}]
    assert newest["number"] == 3


def test_script_put_creates_a_missing_script(http):
    path = f"/accounts/{ACCOUNT}/workers/scripts/brand-new"
    response = http.put(path, files=upload_files(version_metadata(), {"worker.js": WORKER_JS}))
    assert response.status_code == 200
    assert (
        http.get(f"{path}/deployments").json()["result"]["deployments"][0]["versions"][0][
            "percentage"
        ]
        == 100.0
    )


def test_unknown_script_is_10007_not_found(http):
    response = http.get(f"/accounts/{ACCOUNT}/workers/scripts/nope/versions")
    assert response.status_code == 404
    assert codes(response) == [10007]


def test_delete_script(http, stable):
    assert http.delete(SCRIPT, params={"force": "true"}).status_code == 200
    assert http.get(f"{SCRIPT}/versions").status_code == 404
    assert codes(http.delete(SCRIPT)) == [10007]


def test_a_version_upload_numbers_the_version_and_deploys_nothing(http, stable):
    response = create_version(http, message="phase 2 candidate", tag="c0ffee")

    assert response.status_code == 200
    version = response.json()["result"]
    assert version["number"] == 2
    assert version["annotations"] == {
        "workers/message": "phase 2 candidate",
        "workers/tag": "c0ffee",
        "workers/triggered_by": "version_upload",
    }
    assert version["metadata"]["created_on"].endswith("Z")
    assert live(http)["versions"] == [{"version_id": stable.id, "percentage": 100.0}]


def test_versions_are_listed_newest_first_and_paginated(http, stable):
    for _ in range(4):
        create_version(http)
    first = http.get(f"{SCRIPT}/versions", params={"per_page": 2}).json()
    second = http.get(f"{SCRIPT}/versions", params={"per_page": 2, "page": 2}).json()
    third = http.get(f"{SCRIPT}/versions", params={"per_page": 2, "page": 3}).json()

    numbers = [v["number"] for page in (first, second, third) for v in page["result"]["items"]]
    assert numbers == [5, 4, 3, 2, 1]
    assert first["result_info"] == {
        "page": 1,
        "per_page": 2,
        "count": 2,
        "total_count": 5,
        "total_pages": 3,
    }


def test_deployable_versions_ignore_pagination(http, stable):
    for _ in range(3):
        create_version(http)
    body = http.get(f"{SCRIPT}/versions", params={"deployable": "true", "per_page": 1}).json()
    assert len(body["result"]["items"]) == 4


def test_get_one_version_shows_bindings_but_never_secret_values(http, stable):
    version = http.get(f"{SCRIPT}/versions/{stable.id}").json()["result"]
    bindings = {b["name"]: b for b in version["resources"]["bindings"]}
    assert bindings["DYNAMIC_ROUTING"] == {
        "type": "plain_text",
        "name": "DYNAMIC_ROUTING",
        "text": "true",
    }
    assert bindings["OPENAI_API_KEY"] == {"type": "secret_text", "name": "OPENAI_API_KEY"}
    assert "sk-1" not in json.dumps(version)
    assert version["resources"]["script"]["handlers"] == ["email"]
    assert http.get(f"{SCRIPT}/versions/00000000-0000-4000-8000-000000000000").status_code == 404


def test_modules_round_trip_byte_exact(http, stable):
    odd = b"// \xc3\xa9t\xc3\xa9\r\nexport const x = '\\r\\n';\n\n\r\n--boundary-lookalike\r\n"
    modules = {"worker.js": WORKER_JS, "lib/odd.js": odd}
    version = create_version(http, modules=modules).json()["result"]["id"]

    response = http.get(f"{SCRIPT}/content/v2", params={"version": version})

    assert response.status_code == 200
    assert response.headers["cf-entrypoint"] == "worker.js"
    parts = parse_multipart(response.headers["content-type"], response.content)
    assert {p.filename: p.content for p in parts} == modules
    assert {p.content_type for p in parts} == {"application/javascript+module"}


def test_upload_refuses_a_main_module_that_was_not_sent(http, stable):
    response = create_version(http, main_module="index.js")
    assert response.status_code == 400
    assert codes(response) == [10021]


def test_upload_refuses_bad_metadata_with_a_clear_message(http, stable):
    metadata = version_metadata(bindings=[{"type": "plain_text", "name": "X"}])
    response = http.post(f"{SCRIPT}/versions", files=upload_files(metadata, {"worker.js": b"x"}))
    assert response.status_code == 400
    assert "bindings.0.plain_text.text" in response.json()["errors"][0]["message"]


def test_inherit_resolves_against_the_named_version(http, stable):
    newer = create_version(
        http,
        bindings=[{"type": "plain_text", "name": "DYNAMIC_ROUTING", "text": "x"}],
        keep_bindings=[],
    )
    assert newer.status_code == 200

    response = create_version(
        http,
        bindings=[
            {"type": "inherit", "name": "DYNAMIC_ROUTING", "version_id": stable.id},
            {"type": "plain_text", "name": "AI_ANALYSIS", "text": "false"},
        ],
        keep_bindings=["secret_text", "secret_key"],
    )

    assert response.status_code == 200
    bindings = {b["name"]: b for b in response.json()["result"]["resources"]["bindings"]}
    assert bindings["DYNAMIC_ROUTING"]["text"] == "true"
    assert bindings["AI_ANALYSIS"]["text"] == "false"
    assert "OPENAI_API_KEY" not in bindings  # the latest version (newer) had no secret


def test_keep_bindings_carries_secrets_over_from_the_latest_version(http, stable):
    response = create_version(http, keep_bindings=["secret_text", "secret_key"])
    bindings = {b["name"] for b in response.json()["result"]["resources"]["bindings"]}
    assert bindings == {"OPENAI_API_KEY"}


def test_inherit_from_a_missing_version_is_refused(http, stable):
    response = create_version(
        http,
        bindings=[
            {
                "type": "inherit",
                "name": "DYNAMIC_ROUTING",
                "version_id": "00000000-0000-4000-8000-000000000000",
            }
        ],
    )
    assert response.status_code == 400


def test_strict_inherit_refuses_a_binding_the_version_lacks(http, stable):
    metadata = version_metadata(bindings=[{"type": "inherit", "name": "NOPE"}], keep_bindings=[])
    files = upload_files(metadata, {"worker.js": WORKER_JS})
    lax = http.post(f"{SCRIPT}/versions", files=files)
    strict = http.post(f"{SCRIPT}/versions", params={"bindings_inherit": "strict"}, files=files)
    assert lax.status_code == 200
    assert lax.json()["result"]["resources"]["bindings"] == []
    assert strict.status_code == 400


# --- deployments --------------------------------------------------------------------------------


def test_a_split_deployment_is_live_and_listed_newest_first(http, stable):
    candidate = create_version(http).json()["result"]["id"]

    response = deploy(http, (candidate, 10), (stable.id, 90), message="tgk-deploy phase=1 step=c10")

    assert response.status_code == 200
    deployments = http.get(f"{SCRIPT}/deployments").json()["result"]["deployments"]
    assert len(deployments) == 2
    newest = deployments[0]
    assert newest == response.json()["result"]
    assert newest["versions"] == [
        {"version_id": candidate, "percentage": 10.0},
        {"version_id": stable.id, "percentage": 90.0},
    ]
    assert newest["annotations"] == {
        "workers/message": "tgk-deploy phase=1 step=c10",
        "workers/triggered_by": "deployment",
    }
    assert newest["strategy"] == "percentage" and newest["source"] == "api"
    assert newest["author_email"]
    assert newest["created_on"] >= deployments[1]["created_on"]


@pytest.mark.parametrize(
    "shares",
    [
        [("A", 50), ("B", 30)],  # does not sum to 100
        [("A", 50), ("B", 25), ("C", 25)],  # three versions
        [("A", 50), ("A", 50)],  # the same version twice
    ],
)
def test_deployments_refuse_bad_splits(http, stable, shares):
    ids = {"A": stable.id}
    ids["B"] = create_version(http).json()["result"]["id"]
    ids["C"] = create_version(http).json()["result"]["id"]
    response = deploy(http, *[(ids[k], p) for k, p in shares])
    assert response.status_code == 400
    assert response.json()["success"] is False
    assert live(http)["versions"] == [{"version_id": stable.id, "percentage": 100.0}]


def test_deploying_an_unknown_version_is_refused(http, stable):
    response = deploy(http, ("00000000-0000-4000-8000-000000000000", 100))
    assert response.status_code == 404
    assert codes(response) == [10007]


def test_deployment_body_is_validated(http, stable):
    response = http.post(f"{SCRIPT}/deployments", json={"strategy": "all-at-once", "versions": []})
    assert response.status_code == 400
    assert "strategy" in response.json()["errors"][0]["message"]


def test_messages_over_1000_characters_and_tags_over_100_bytes_are_refused(http, stable):
    """Cloudflare's schema of 2026-08-14: message maxLength 1000, tag at most 100 bytes."""
    long_message = deploy(http, (stable.id, 100), message="m" * 1001)
    long_tag = create_version(http, tag="é" * 51)  # 102 bytes in 51 characters
    fits = deploy(http, (stable.id, 100), message="m" * 1000)
    tag_fits = create_version(http, tag="t" * 100)
    assert long_message.status_code == 400
    assert "workers/message" in long_message.json()["errors"][0]["message"]
    assert long_tag.status_code == 400
    assert fits.status_code == 200 and tag_fits.status_code == 200


def test_a_message_is_kept_to_its_first_1000_bytes(http, stable):
    """The schema's own words: "Truncated to 1000 bytes if longer"."""
    made = deploy(http, (stable.id, 100), message="é" * 600)  # 1200 bytes, 600 characters
    version = create_version(http, message="ü" * 700)

    assert made.json()["result"]["annotations"]["workers/message"] == "é" * 500
    assert version.json()["result"]["annotations"]["workers/message"] == "ü" * 500


def test_wrangler_rollback_message_of_120_characters_is_accepted_whole(http, stable):
    message = "r" * 120  # what wrangler's rollback prompt allows
    made = deploy(http, (stable.id, 100), message=message)
    assert made.status_code == 200
    assert live(http)["annotations"]["workers/message"] == message


def test_rolling_back_past_a_secret_change_needs_force_10220(http, stable):
    put = http.put(
        f"{SCRIPT}/secrets", json={"name": "OPENAI_API_KEY", "text": "sk-2", "type": "secret_text"}
    )
    assert put.status_code == 200

    refused = deploy(http, (stable.id, 100))
    forced = deploy(http, (stable.id, 100), force=True)

    assert refused.status_code == 400
    assert codes(refused) == [10220]
    assert "OPENAI_API_KEY" in refused.json()["errors"][0]["message"]
    assert "sk-" not in refused.text
    assert forced.status_code == 200
    assert live(http)["versions"] == [{"version_id": stable.id, "percentage": 100.0}]


def test_a_version_made_after_the_secret_change_deploys_without_force(http, stable):
    http.put(
        f"{SCRIPT}/secrets", json={"name": "OPENAI_API_KEY", "text": "sk-2", "type": "secret_text"}
    )
    candidate = create_version(http, keep_bindings=["secret_text"]).json()["result"]["id"]
    secret_version = http.get(f"{SCRIPT}/versions").json()["result"]["items"][1]["id"]
    assert deploy(http, (candidate, 25), (secret_version, 75)).status_code == 200


# --- secrets and settings ----------------------------------------------------------------------


def test_secret_put_makes_a_copy_of_the_latest_version_and_deploys_it(http, stable):
    response = http.put(
        f"{SCRIPT}/secrets", json={"name": "NEW_SECRET", "text": "v", "type": "secret_text"}
    )

    assert response.status_code == 200
    assert response.json()["result"] == {"name": "NEW_SECRET", "type": "secret_text"}
    newest = http.get(f"{SCRIPT}/versions").json()["result"]["items"][0]
    assert newest["number"] == 2
    assert newest["annotations"]["workers/triggered_by"] == "secret"
    assert live(http)["versions"] == [{"version_id": newest["id"], "percentage": 100.0}]
    names = [s["name"] for s in http.get(f"{SCRIPT}/secrets").json()["result"]]
    assert names == ["NEW_SECRET", "OPENAI_API_KEY"]
    full = http.get(f"{SCRIPT}/versions/{newest['id']}").json()["result"]
    assert {b["name"] for b in full["resources"]["bindings"]} == {
        "DYNAMIC_ROUTING",
        "OPENAI_API_KEY",
        "NEW_SECRET",
    }


def test_secret_change_during_a_split_is_refused_with_10215(http, stable):
    candidate = create_version(http, keep_bindings=["secret_text"]).json()["result"]["id"]
    deploy(http, (candidate, 25), (stable.id, 75))

    put = http.put(f"{SCRIPT}/secrets", json={"name": "K", "text": "v", "type": "secret_text"})
    delete = http.delete(f"{SCRIPT}/secrets/OPENAI_API_KEY")

    assert (put.status_code, codes(put)) == (400, [10215])
    assert (delete.status_code, codes(delete)) == (400, [10215])
    assert len(http.get(f"{SCRIPT}/versions").json()["result"]["items"]) == 2


def test_secret_change_with_a_newer_undeployed_version_is_refused_with_10215(http, stable):
    create_version(http)
    put = http.put(f"{SCRIPT}/secrets", json={"name": "K", "text": "v", "type": "secret_text"})
    assert codes(put) == [10215]


def test_secret_delete_makes_and_deploys_a_version_without_it(http, stable):
    assert http.delete(f"{SCRIPT}/secrets/OPENAI_API_KEY").status_code == 200
    assert http.get(f"{SCRIPT}/secrets").json()["result"] == []
    assert codes(http.delete(f"{SCRIPT}/secrets/OPENAI_API_KEY")) == [10056]


def test_get_one_secret_gives_its_name_never_its_value(http, stable):
    response = http.get(f"{SCRIPT}/secrets/OPENAI_API_KEY")
    assert response.json()["result"] == {"name": "OPENAI_API_KEY", "type": "secret_text"}


def test_secret_body_is_validated(http, stable):
    response = http.put(f"{SCRIPT}/secrets", json={"name": "K", "text": "v"})
    assert response.status_code == 400
    assert "type" in response.json()["errors"][0]["message"]


def _settings_files(settings: dict) -> list:
    return [("settings", (None, json.dumps(settings), "application/json"))]


def test_settings_patch_makes_and_deploys_a_new_version(http, stable):
    response = http.patch(
        f"{SCRIPT}/settings",
        files=_settings_files(
            {
                "bindings": [
                    {"type": "plain_text", "name": "DYNAMIC_ROUTING", "text": "false"},
                    {"type": "inherit", "name": "OPENAI_API_KEY"},
                ]
            }
        ),
    )

    assert response.status_code == 200
    bindings = {b["name"]: b for b in response.json()["result"]["bindings"]}
    assert bindings["DYNAMIC_ROUTING"]["text"] == "false"
    assert bindings["OPENAI_API_KEY"] == {"type": "secret_text", "name": "OPENAI_API_KEY"}
    newest = http.get(f"{SCRIPT}/versions").json()["result"]["items"][0]
    assert live(http)["versions"] == [{"version_id": newest["id"], "percentage": 100.0}]
    assert http.get(f"{SCRIPT}/settings").json()["result"] == response.json()["result"]


def test_settings_patch_during_a_split_is_refused_with_10214(http, stable):
    candidate = create_version(http).json()["result"]["id"]
    deploy(http, (candidate, 50), (stable.id, 50))
    response = http.patch(f"{SCRIPT}/settings", files=_settings_files({"logpush": True}))
    assert (response.status_code, codes(response)) == (400, [10214])


def test_the_var_change_path_mid_split_goes_through_an_inheriting_version(http, stable):
    """Trap 2: flip a var mid-canary without 10214/10215."""
    candidate = create_version(
        http,
        bindings=[{"type": "inherit", "name": "DYNAMIC_ROUTING", "version_id": stable.id}],
        keep_bindings=["secret_text"],
    ).json()["result"]
    deploy(http, (candidate["id"], 25), (stable.id, 75))

    content = http.get(f"{SCRIPT}/content/v2", params={"version": candidate["id"]})
    parts = parse_multipart(content.headers["content-type"], content.content)
    modules = {p.filename: p.content for p in parts}
    flipped = create_version(
        http,
        modules=modules,
        main_module=content.headers["cf-entrypoint"],
        bindings=[
            {"type": "inherit", "name": "DYNAMIC_ROUTING", "version_id": candidate["id"]},
            {"type": "plain_text", "name": "AI_ANALYSIS", "text": "false"},
        ],
        keep_bindings=["secret_text", "secret_key"],
    ).json()["result"]
    response = deploy(http, (flipped["id"], 25), (stable.id, 75))

    assert response.status_code == 200
    bindings = {b["name"] for b in flipped["resources"]["bindings"]}
    assert bindings == {"DYNAMIC_ROUTING", "AI_ANALYSIS", "OPENAI_API_KEY"}


def test_script_settings_are_not_versioned(http, stable):
    candidate = create_version(http).json()["result"]["id"]
    deploy(http, (candidate, 50), (stable.id, 50))
    response = http.patch(f"{SCRIPT}/script-settings", json={"logpush": True})
    assert response.status_code == 200
    assert http.get(f"{SCRIPT}/script-settings").json()["result"]["logpush"] is True
    assert len(http.get(f"{SCRIPT}/versions").json()["result"]["items"]) == 2


def test_only_the_last_100_versions_can_be_deployed(http, stable, emulator):
    for _ in range(100):
        emulator.state.seed_version(SCRIPT_NAME)
    too_old = deploy(http, (stable.id, 100))
    recent = http.get(f"{SCRIPT}/versions", params={"per_page": 1}).json()["result"]["items"][0]
    assert too_old.status_code == 400
    assert "last 100" in too_old.json()["errors"][0]["message"]
    assert deploy(http, (recent["id"], 100)).status_code == 200
    assert (
        len(http.get(f"{SCRIPT}/versions", params={"deployable": "true"}).json()["result"]["items"])
        == 100
    )


def test_download_gives_the_live_main_module_raw(http, stable):
    response = http.get(SCRIPT)
    assert response.status_code == 200
    assert response.content == stable.modules["worker.js"].content
