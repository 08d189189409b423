"""Token, versions and version uploads: the real SDK over HTTP against the emulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.cloudflare import make_api
from tgk_deploy.bundle import read_bundle
from tgk_deploy.errors import CloudflareError
from tgk_deploy.secret_values import SecretValue

WRANGLER = Path(__file__).resolve().parents[2] / "wrangler"
SCRIPT = "tgk-email-orchestrator"
TAG = "tgk-p1-0123456789ab"


def production_bundle():
    return read_bundle(WRANGLER, "production")


def test_verify_token_answers_active_for_an_accepted_token(cloudflare):
    assert cloudflare.api.verify_token()["status"] == "active"


def test_a_bad_token_is_a_401_error_naming_the_operation(cloudflare):
    cloudflare.emulator.state.set_tokens(["the-right-token"])

    with pytest.raises(CloudflareError) as caught:
        cloudflare.api.verify_token()

    error = caught.value
    assert (error.operation, error.status, error.codes) == ("verify the API token", 401, [10000])
    assert "Authentication error" in error.message
    assert error.state_left.startswith("unchanged")
    assert cloudflare.emulator.calls() == 1  # a 401 is not retried


def test_list_versions_reads_every_page_past_the_100_deployable_ones(cloudflare):
    state = cloudflare.emulator.state
    state.seed_script(SCRIPT)
    for number in range(2, 131):
        state.seed_version(SCRIPT, message=f"v{number}")

    versions = cloudflare.api.list_versions(SCRIPT)

    assert [v.number for v in versions] == list(range(130, 0, -1))  # newest first, no gaps
    assert len({v.id for v in versions}) == 130
    assert cloudflare.emulator.calls("GET", "/versions") == 2  # per_page 100: two pages
    assert versions[0].message == "v130"


def test_get_version_carries_vars_secret_names_and_annotations(cloudflare):
    seeded = cloudflare.emulator.state.seed_script(
        SCRIPT,
        vars={"AI_ANALYSIS": "false"},
        secrets={"TELEGRAM_BOT_TOKEN": "t0ps3cret"},
        message="initial",
        tag="tgk-seed",
    )

    version = cloudflare.api.get_version(SCRIPT, seeded.id)

    assert (version.id, version.number, version.tag, version.message) == (
        seeded.id,
        1,
        "tgk-seed",
        "initial",
    )
    assert version.vars == {"AI_ANALYSIS": "false"}
    assert version.secret_names == ["TELEGRAM_BOT_TOKEN"]
    assert "t0ps3cret" not in version.model_dump_json()


def test_get_version_of_an_unknown_id_is_a_404_with_cloudflare_codes(cloudflare):
    cloudflare.emulator.state.seed_script(SCRIPT)

    with pytest.raises(CloudflareError) as caught:
        cloudflare.api.get_version(SCRIPT, "00000000-0000-4000-8000-000000000000")

    assert caught.value.status == 404
    assert caught.value.codes == [10007]


def test_upload_version_sends_the_real_bundle_and_deploys_nothing(cloudflare):
    state = cloudflare.emulator.state
    seeded = state.seed_script(SCRIPT, secrets={"TELEGRAM_BOT_TOKEN": "123:abc"})
    bundle = production_bundle()

    version = cloudflare.api.upload_version(
        SCRIPT, bundle, vars={"AI_ANALYSIS": "true"}, tag=TAG, message="phase 1"
    )

    assert (version.number, version.tag, version.message) == (2, TAG, "phase 1")
    assert version.vars["AI_ANALYSIS"] == "true"
    assert version.secret_names == ["TELEGRAM_BOT_TOKEN"]  # kept by keep_bindings
    live = cloudflare.api.live_deployment(SCRIPT)
    assert [(s.version_id, s.percentage) for s in live.versions] == [(seeded.id, 100.0)]


def test_upload_version_is_idempotent_by_tag(cloudflare):
    cloudflare.emulator.state.seed_script(SCRIPT)
    bundle = production_bundle()
    first = cloudflare.api.upload_version(SCRIPT, bundle, vars={}, tag=TAG, message="one")

    again = cloudflare.api.upload_version(SCRIPT, bundle, vars={}, tag=TAG, message="one")

    assert again.id == first.id
    assert cloudflare.emulator.calls("POST", "/versions") == 1
    assert len(cloudflare.api.list_versions(SCRIPT)) == 2


def test_version_content_round_trips_every_module_byte_for_byte(cloudflare):
    cloudflare.emulator.state.seed_script(SCRIPT)
    bundle = production_bundle()
    version = cloudflare.api.upload_version(SCRIPT, bundle, vars={}, tag=TAG, message="m")

    main, modules = cloudflare.api.version_content(SCRIPT, version.id)

    assert main == bundle.main_module
    assert sorted((name, content) for name, content, _ in modules) == sorted(
        (m.name, m.content) for m in bundle.modules
    )
    assert {ctype for _, _, ctype in modules} == {"application/javascript+module"}


def test_derive_version_changes_a_var_and_inherits_everything_else(cloudflare):
    state = cloudflare.emulator.state
    state.seed_script(SCRIPT, secrets={"TELEGRAM_BOT_TOKEN": "123:abc"})
    bundle = production_bundle()
    base = cloudflare.api.upload_version(
        SCRIPT, bundle, vars={"DYNAMIC_ROUTING": "true"}, tag=TAG, message="base"
    )

    derived = cloudflare.api.derive_version(
        SCRIPT, base.id, vars={"DYNAMIC_ROUTING": "false"}, tag="tgk-p3-off", message="flag off"
    )

    assert derived.vars == {**base.vars, "DYNAMIC_ROUTING": "false"}
    assert derived.secret_names == base.secret_names == ["TELEGRAM_BOT_TOKEN"]
    emulated = state.get_script("023e105f4ecef8ad9ca31a8372d0c353", SCRIPT)
    base_bindings = {b["name"]: b for b in emulated.version(base.id).bindings}
    new_bindings = {b["name"]: b for b in emulated.version(derived.id).bindings}
    assert set(new_bindings) == set(base_bindings)
    for name, binding in base_bindings.items():
        if name != "DYNAMIC_ROUTING":
            assert new_bindings[name] == binding  # inherited unchanged, secrets included
    _, base_modules = cloudflare.api.version_content(SCRIPT, base.id)
    _, new_modules = cloudflare.api.version_content(SCRIPT, derived.id)
    assert new_modules == base_modules


def test_derive_version_adds_and_removes_secrets(cloudflare):
    state = cloudflare.emulator.state
    base = state.seed_script(SCRIPT, secrets={"TELEGRAM_BOT_TOKEN": "123:abc"})
    key = SecretValue("OPENAI_API_KEY", "sk-derived-secret-value")

    with_key = cloudflare.api.derive_version(SCRIPT, base.id, add_secrets=[key], tag="tgk-add")
    without_telegram = cloudflare.api.derive_version(
        SCRIPT, with_key.id, remove_secrets=["TELEGRAM_BOT_TOKEN"], tag="tgk-remove"
    )

    assert with_key.secret_names == ["OPENAI_API_KEY", "TELEGRAM_BOT_TOKEN"]
    assert without_telegram.secret_names == ["OPENAI_API_KEY"]
    emulated = state.get_script("023e105f4ecef8ad9ca31a8372d0c353", SCRIPT)
    assert emulated.version(without_telegram.id).secrets == {
        "OPENAI_API_KEY": "sk-derived-secret-value"
    }


def test_derive_version_with_a_known_tag_makes_nothing_new(cloudflare):
    base = cloudflare.emulator.state.seed_script(SCRIPT)
    first = cloudflare.api.derive_version(SCRIPT, base.id, vars={"X": "1"}, tag="tgk-x")

    again = cloudflare.api.derive_version(SCRIPT, base.id, vars={"X": "1"}, tag="tgk-x")

    assert again.id == first.id
    assert cloudflare.emulator.calls("POST", "/versions") == 1


def test_every_layer_call_goes_through_one_client_without_sdk_retries(emulator):
    api = make_api(emulator, [])
    assert api.client.max_retries == 0


def test_version_content_keeps_line_endings_binary_and_boundary_like_bytes(cloudflare):
    modules = {
        "index.js": b"export default {\r\n  email() {}\r\n}",
        "lone-cr.js": b"a\rb\n\nc\r\n\r\n",
        "table.wasm": bytes(range(256)) * 3,
        "trailing.js": b"x\n\n\n",
        "dashes.js": b"--emulator-looks-like-a-boundary\r\n--\r\n",
        "utf8.js": "const s = 'héllo — ✓';\n".encode(),
    }
    seeded = cloudflare.emulator.state.seed_script(SCRIPT, modules=modules, main_module="index.js")

    main, got = cloudflare.api.version_content(SCRIPT, seeded.id)

    assert main == "index.js"
    assert {name: content for name, content, _ in got} == modules
