"""The calls wrangler 4.86 makes that tgk-deploy does not: services, references, keep
semantics, discovery by name. Each rule is Cloudflare's, as its docs or schema say it."""

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
    upload_files,
    version_metadata,
)
from tgk_deploy.emulator import DEFAULT_ZONE_ID, Emulator
from tgk_deploy.emulator.context import DEFAULT_ZONE_NAME

SERVICE = f"/accounts/{ACCOUNT}/workers/services/{SCRIPT_NAME}"


@pytest.fixture
def http(emulator: Emulator):
    with client(emulator) as c:
        yield c


@pytest.fixture
def stable(emulator: Emulator):
    return emulator.state.seed_script(
        SCRIPT_NAME, vars={"DYNAMIC_ROUTING": "true"}, secrets={"OPENAI_API_KEY": "sk-1"}
    )


def secret_names(http, version_id: str) -> list[str]:
    bindings = http.get(f"{SCRIPT}/versions/{version_id}").json()["result"]["resources"]
    return sorted(b["name"] for b in bindings["bindings"] if b["type"] == "secret_text")


def test_the_service_view_names_the_script_tag_and_where_it_was_last_deployed_from(http, stable):
    result = http.get(SERVICE).json()["result"]

    script = result["default_environment"]["script"]
    assert result["id"] == SCRIPT_NAME
    assert result["default_environment"]["environment"] == "production"
    assert len(script["tag"]) == 32 and script["last_deployed_from"] == "api"


def test_a_missing_service_is_10090_which_wrangler_reads_as_a_new_worker(http):
    response = http.get(SERVICE)
    assert response.status_code == 404 and codes(response) == [10090]


def test_an_upload_by_wrangler_is_marked_as_coming_from_wrangler(http, stable):
    http.headers["User-Agent"] = "wrangler/4.86.0"
    made = create_version(http).json()["result"]

    assert made["metadata"]["source"] == "wrangler"
    assert http.get(SERVICE).json()["result"]["default_environment"]["script"][
        "last_deployed_from"
    ] == ("wrangler")


def test_delete_through_the_service_path_removes_the_script(http, stable):
    references = http.get(f"{SCRIPT}/references").json()["result"]
    deleted = http.delete(SERVICE, params={"force": "false"})

    assert references["services"]["incoming"] == [] and references["durable_objects"] == []
    assert deleted.status_code == 200
    assert codes(http.get(f"{SCRIPT}/settings")) == [10007]


def test_a_script_upload_without_keep_bindings_keeps_the_secrets(http, stable):
    """`wrangler deploy` sends no keep_bindings, and secrets outlive it."""
    response = http.put(SCRIPT, files=upload_files(version_metadata(), {"worker.js": WORKER_JS}))
    live = http.get(f"{SCRIPT}/deployments").json()["result"]["deployments"][0]

    assert response.status_code == 200
    assert secret_names(http, live["versions"][0]["version_id"]) == ["OPENAI_API_KEY"]


def test_keep_bindings_given_keeps_exactly_those_types(http, stable):
    kept = create_version(http, keep_bindings=["secret_text", "secret_key"]).json()["result"]
    dropped = create_version(http, keep_bindings=["secret_key"]).json()["result"]

    assert secret_names(http, kept["id"]) == ["OPENAI_API_KEY"]
    assert secret_names(http, dropped["id"]) == []  # `wrangler versions secret delete`


def test_a_version_upload_without_keep_bindings_keeps_the_secrets(http, stable):
    """`wrangler deploy` of an existing Worker: a version POST with no keep_bindings."""
    made = create_version(http).json()["result"]
    assert secret_names(http, made["id"]) == ["OPENAI_API_KEY"]


def test_keep_assets_and_the_other_documented_metadata_fields_are_accepted(http, stable):
    metadata = {
        **version_metadata(keep_bindings=["secret_text"]),
        "keep_assets": True,
        "containers": [],
        "cache_options": {"enabled": False},
    }
    response = http.post(f"{SCRIPT}/versions", files=upload_files(metadata, {"w.js": WORKER_JS}))
    assert response.status_code == 400  # main_module worker.js was not sent: the fields passed
    assert "main_module" in response.json()["errors"][0]["message"]
    fine = http.post(f"{SCRIPT}/versions", files=upload_files(metadata, {"worker.js": WORKER_JS}))
    assert fine.status_code == 200, fine.text


def test_an_unknown_metadata_field_is_still_refused(http, stable):
    metadata = {**version_metadata(), "keep_everything": True}
    response = http.post(f"{SCRIPT}/versions", files=upload_files(metadata, {"w.js": WORKER_JS}))
    assert response.status_code == 400 and "keep_everything" in response.text


def test_settings_bindings_given_as_type_and_name_are_kept(http, stable):
    """What `wrangler secret bulk` sends for every binding it leaves alone."""
    settings = {
        "bindings": [
            {"type": "plain_text", "name": "DYNAMIC_ROUTING"},
            {"type": "secret_text", "name": "OPENAI_API_KEY"},
            {"type": "secret_text", "name": "TELEGRAM_BOT_TOKEN", "text": "123:abc"},
        ]
    }
    response = http.patch(
        f"{SCRIPT}/settings",
        files=[("settings", (None, json.dumps(settings), "application/json"))],
    )

    assert response.status_code == 200, response.text
    bindings = {b["name"]: b for b in response.json()["result"]["bindings"]}
    assert bindings["DYNAMIC_ROUTING"] == {
        "type": "plain_text",
        "name": "DYNAMIC_ROUTING",
        "text": "true",
    }
    assert set(bindings) == {"DYNAMIC_ROUTING", "OPENAI_API_KEY", "TELEGRAM_BOT_TOKEN"}


def test_keeping_a_binding_that_does_not_exist_is_refused(http, stable):
    settings = {"bindings": [{"type": "secret_text", "name": "NOT_THERE"}]}
    response = http.patch(
        f"{SCRIPT}/settings",
        files=[("settings", (None, json.dumps(settings), "application/json"))],
    )
    assert response.status_code == 400 and codes(response) == [10056]


def test_d1_databases_are_found_by_name(http, emulator):
    database = emulator.state.seed_d1("tgk-email-db")
    emulator.state.seed_d1("other-db")

    found = http.get(f"/accounts/{ACCOUNT}/d1/database", params={"name": "tgk-email-db"})
    every = http.get(f"/accounts/{ACCOUNT}/d1/database")

    assert [d["uuid"] for d in found.json()["result"]] == [database.uuid]
    assert [d["name"] for d in every.json()["result"]] == ["other-db", "tgk-email-db"]


def test_zones_are_found_by_name(http):
    found = http.get("/zones", params={"name": DEFAULT_ZONE_NAME}).json()
    missing = http.get("/zones", params={"name": "nowhere.example"}).json()

    assert [z["id"] for z in found["result"]] == [DEFAULT_ZONE_ID]
    assert missing["result"] == [] and missing["result_info"]["total_count"] == 0
    assert http.get(f"/zones/{DEFAULT_ZONE_ID}").json()["result"]["name"] == DEFAULT_ZONE_NAME
    assert codes(http.get("/zones/0000")) == [1001]
