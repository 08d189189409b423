"""The emulated Workers' HTTP side: version overrides routed as Cloudflare routes them."""

from __future__ import annotations

import httpx
import pytest

from tests.emulator.helpers import client, deploy
from tgk_deploy.emulator.worker_http import parse_overrides

SCRIPT = "tgk-email-orchestrator"
TOKEN = "smoke-emulator-token-1a2b3c"
TABLE = '{"domains": ["tgk.example"], "routes": {"alerts": {"chat_id": "-1001"}}}'


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        (f'{SCRIPT}="v-1"', {SCRIPT: "v-1"}),
        (f'other="x", {SCRIPT}="v-2";param=1', {"other": "x", SCRIPT: "v-2"}),
        (f'{SCRIPT}="a\\"b"', {SCRIPT: 'a"b'}),
        (f"{SCRIPT}=v-1", None),  # a Token, not a String
        (f'{SCRIPT}="v-1" junk', None),
        ('Upper="v"', None),
    ],
)
def test_the_override_header_is_an_rfc_8941_dictionary_of_strings(header, parsed):
    assert parse_overrides(header) == parsed


@pytest.fixture
def split(emulator):
    """Stable (no table) at 100 %, a candidate with a table at 0 %."""
    stable = emulator.state.seed_script(SCRIPT, secrets={"SMOKE_TOKEN": TOKEN}).id
    candidate = emulator.state.seed_version(SCRIPT, vars={"ROUTING_TABLE": TABLE}).id
    with client(emulator) as http:
        answer = deploy(http, (candidate, 0), (stable, 100))
    assert answer.status_code == 200, answer.text
    return emulator, stable, candidate


def selftest(emulator, version: str | None, token: str = TOKEN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    if version is not None:
        headers["Cloudflare-Workers-Version-Overrides"] = f'{SCRIPT}="{version}"'
    return httpx.post(emulator.worker_url(SCRIPT) + "/selftest", headers=headers)


def test_an_override_reaches_a_version_at_zero_percent(split):
    emulator, _, candidate = split
    answer = selftest(emulator, candidate)
    assert answer.status_code == 200
    body = answer.json()
    assert body["version"]["id"] == candidate and body["ok"] is True
    assert "-1001" not in answer.text


def test_without_an_applicable_override_the_split_decides(split):
    emulator, stable, _ = split
    for version in (None, "not-in-the-deployment"):
        body = selftest(emulator, version).json()
        assert body["version"]["id"] == stable and body["ok"] is False  # no table there
    log = emulator.front.requests()
    assert [r["answered_by"] for r in log] == [stable, stable]
    assert log[1]["target"] == "not-in-the-deployment"


def test_a_wrong_token_is_refused_and_an_injected_fault_fails_a_route(split):
    emulator, _, candidate = split
    assert selftest(emulator, candidate, token="wrong").status_code == 401
    httpx.post(
        f"{emulator.origin}/__emulator/faults/fail-smoke",
        json={"version_id": candidate, "scope": "alerts"},
    )
    body = selftest(emulator, candidate).json()
    assert body["ok"] is False and body["routes"][0]["reason"].endswith(
        "(injected by the emulator)"
    )
    listed = httpx.get(f"{emulator.origin}/__emulator/worker-requests").json()["result"]
    assert [r["status"] for r in listed] == [401, 200]
    assert all(TOKEN not in str(r) for r in listed)
    assert not any("/__workers" in r.path for r in emulator.requests)  # not API calls
