"""The real bundle, uploaded through the Cloudflare layer to the emulator, arrives intact.

What the Miniflare tests run is what Cloudflare gets: the same module bytes
(downloaded again through ``content/v2``), the same bindings, the same
compatibility settings.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulator.helpers import ACCOUNT, client
from tgk_deploy.bundle import MODULE_CONTENT_TYPE, Bundle, read_bundle
from tgk_deploy.cloudflare.api import CloudflareAPI
from tgk_deploy.emulator import Emulator

WRANGLER = Path(__file__).resolve().parents[1] / "wrangler"
PHASE_2_VARS = {"AI_ANALYSIS": "true"}


@pytest.fixture
def api(emulator: Emulator) -> Iterator[CloudflareAPI]:
    with CloudflareAPI(
        token="emulator-test-token", account_id=ACCOUNT, base_url=emulator.url
    ) as cf:
        yield cf


def uploaded(emulator: Emulator, api: CloudflareAPI, environment: str) -> tuple[Bundle, str]:
    bundle = read_bundle(WRANGLER, environment)
    emulator.state.seed_script(bundle.script_name, secrets={"TELEGRAM_BOT_TOKEN": "123:abc"})
    version = api.upload_version(
        bundle.script_name, bundle, vars=PHASE_2_VARS, tag="tgk-p2-0123456789ab", message="test"
    )
    return bundle, version.id


@pytest.mark.parametrize("environment", ["production", "staging"])
def test_modules_come_back_byte_for_byte_through_content_v2(emulator, api, environment):
    bundle, version_id = uploaded(emulator, api, environment)

    main, modules = api.version_content(bundle.script_name, version_id)

    assert main == bundle.main_module == "index.js"
    assert {name: content for name, content, _ in modules} == {
        m.name: m.content for m in bundle.modules
    }
    assert {ctype for _, _, ctype in modules} == {MODULE_CONTENT_TYPE}


@pytest.mark.parametrize("environment", ["production", "staging"])
def test_bindings_and_settings_arrive_as_declared_with_the_phase_vars_and_kept_secrets(
    emulator, api, environment
):
    bundle, version_id = uploaded(emulator, api, environment)
    path = f"/accounts/{ACCOUNT}/workers/scripts/{bundle.script_name}/versions/{version_id}"

    with client(emulator) as http:
        detail = http.get(path).json()["result"]

    expected = bundle.with_vars(PHASE_2_VARS).metadata()["bindings"]
    expected.append({"type": "secret_text", "name": "TELEGRAM_BOT_TOKEN"})
    key = lambda b: b["name"]  # noqa: E731
    assert sorted(detail["resources"]["bindings"], key=key) == sorted(expected, key=key)
    runtime = detail["resources"]["script_runtime"]
    assert runtime["compatibility_date"] == bundle.compatibility_date
    assert runtime["compatibility_flags"] == list(bundle.compatibility_flags)
    assert detail["annotations"]["workers/tag"] == "tgk-p2-0123456789ab"
    assert detail["resources"]["script"]["handlers"] == ["email", "fetch"]


def test_uploading_the_same_tag_again_makes_no_second_version(emulator, api):
    bundle, version_id = uploaded(emulator, api, "production")
    again = api.upload_version(
        bundle.script_name, bundle, vars=PHASE_2_VARS, tag="tgk-p2-0123456789ab", message="test"
    )
    assert again.id == version_id
    assert len(api.list_versions(bundle.script_name)) == 2  # the seeded one and ours
