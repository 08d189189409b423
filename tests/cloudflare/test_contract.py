"""Every request the tool sends, and every answer it gets, fits the OpenAPI subset.

One run exercises every operation of ``CloudflareAPI`` (successes and the
refusals it must read: 10215, 10220, 404) through the real SDK; an httpx
event hook on the client handed to the layer records each exchange, and the
contract helper (tests/contract.py) validates JSON request bodies, the
multipart ``metadata`` of version uploads and each JSON response, on the
paths the subset holds (tests/cloudflare/schema/openapi-subset.json).
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.contract import (
    SUBSET,
    check_multipart_part,
    check_request,
    check_response,
    template_for,
)
from tests.fixtures.cloudflare import make_api
from tgk_deploy.bundle import read_bundle
from tgk_deploy.cloudflare.api import parse_multipart
from tgk_deploy.emulator import Emulator
from tgk_deploy.errors import CloudflareError
from tgk_deploy.secret_values import SecretValue
from tgk_deploy.spec.models import D1Spec, EmailRoutingSpec

WRANGLER = Path(__file__).resolve().parents[2] / "wrangler"
SCRIPT = "tgk-email-orchestrator"
ROUTING = EmailRoutingSpec(
    zone_id="${CLOUDFLARE_ZONE_ID}", worker_rule=SCRIPT, legacy_rule="legacy-email-router"
)


class Exchange:
    def __init__(self, request: httpx.Request, response: httpx.Response) -> None:
        self.method = request.method
        self.path = request.url.path
        self.request_type = request.headers.get("content-type", "")
        self.request_body = request.content
        self.status = response.status_code
        self.response_type = response.headers.get("content-type", "")
        self.response_body = response.content


def run_every_operation(emulator: Emulator, http: httpx.Client, tmp_path: Path) -> None:
    """The whole CloudflareAPI surface once, the way the engine uses it."""
    ids = emulator.state.seed_demo()
    emulator.state.export_polls = 2
    api = make_api(
        emulator, [], http_client=http, refs={"TGK_D1_DATABASE_ID": ids["d1_database_id"]}
    )
    stable = ids[SCRIPT]
    api.verify_token()
    bundle = read_bundle(WRANGLER, "production")
    candidate = api.upload_version(
        SCRIPT, bundle, vars={"AI_ANALYSIS": "true"}, tag="tgk-p2-c", message="p2"
    )
    api.list_versions(SCRIPT)
    api.get_version(SCRIPT, candidate.id)
    api.version_content(SCRIPT, candidate.id)
    # the smoke check's stage: the candidate in the deployment at 0 % (adaptation 6)
    api.deploy(SCRIPT, {candidate.id: 0, stable: 100}, message="tgk p=2 g=canary-10")
    api.deploy(SCRIPT, {candidate.id: 10, stable: 90}, message="tgk p=2 s=canary-10")
    api.deployments(SCRIPT)
    with pytest.raises(CloudflareError):  # 10215 during the split
        api.put_secret(SCRIPT, SecretValue("OPENAI_API_KEY", "sk-contract-secret"))
    flipped = api.derive_version(
        SCRIPT,
        candidate.id,
        vars={"AI_ANALYSIS": "false"},
        add_secrets=[SecretValue("OPENAI_API_KEY", "sk-contract-secret")],
        remove_secrets=["TELEGRAM_BOT_TOKEN"],
        tag="tgk-p2-off",
    )
    api.deploy(SCRIPT, {flipped.id: 10, stable: 90}, message="tgk p=2 s=canary-10")
    api.deploy(SCRIPT, {flipped.id: 100}, message="tgk p=2 s=full")
    api.put_secret(SCRIPT, SecretValue("OPENAI_API_KEY", "sk-contract-secret"))
    api.list_secrets(SCRIPT)
    api.delete_secret(SCRIPT, "OPENAI_API_KEY")
    with pytest.raises(CloudflareError):  # 10220: the secrets changed since the stable version
        api.deploy(SCRIPT, {stable: 100})
    api.deploy(SCRIPT, {stable: 100}, allow_force=True, message="tgk p=2 rb=immediate")
    with pytest.raises(CloudflareError):  # 404
        api.get_version(SCRIPT, "00000000-0000-4000-8000-000000000000")

    rules = {rule.name: rule for rule in api.email_rules()}
    api.get_email_rule(rules[SCRIPT].id)
    api.update_email_rule(rules[SCRIPT].model_copy(update={"enabled": True}))
    api.set_email_rule_enabled(ROUTING, rules["legacy-email-router"], False)
    catch_all = api.catch_all()
    api.update_catch_all({**catch_all, "enabled": True})

    database = D1Spec(name="tgk-email-db", database_id="${TGK_D1_DATABASE_ID}")
    api.export_d1(database, tmp_path / "backup.sql", poll_interval=0)
    api.delete_d1(database, confirm="tgk-email-db")
    api.delete_r2_bucket("tgk-email-attachments", confirm="tgk-email-attachments")
    api.delete_script(SCRIPT, confirm=SCRIPT)


@pytest.fixture
def exchanges(emulator: Emulator, tmp_path: Path) -> list[Exchange]:
    recorded: list[Exchange] = []

    def record(response: httpx.Response) -> None:
        response.read()
        response.request.read()
        recorded.append(Exchange(response.request, response))

    with httpx.Client(event_hooks={"response": [record]}, timeout=10) as http:
        run_every_operation(emulator, http, tmp_path)
    return recorded


def test_the_subset_is_found_and_says_which_revision_it_is(exchanges):
    assert SUBSET.is_file(), f"{SUBSET} is missing"
    source = json.loads(SUBSET.read_text())["x-source"]
    assert source["repository"] == "https://github.com/cloudflare/api-schemas"
    assert source["refreshed_from"]["commit_date"] == "2026-08-14T19:35:57Z"


def test_every_request_and_response_on_a_subset_path_fits_the_subset(exchanges):
    sent: set[tuple[str, str]] = set()
    checked: set[tuple[str, str]] = set()
    bodies: set[tuple[str, str]] = set()
    for exchange in exchanges:
        template = template_for(exchange.path)
        if template is None:
            continue
        kind = (exchange.method, template)
        sent.add(kind)
        if exchange.request_body and exchange.request_type.startswith("application/json"):
            assert check_request(exchange.method, template, json.loads(exchange.request_body))
            bodies.add(kind)
        elif exchange.request_type.startswith("multipart/form-data"):
            parts = {
                name: content
                for name, content, _ in parse_multipart(
                    exchange.request_type, exchange.request_body
                )
            }
            assert check_multipart_part(
                exchange.method, template, "metadata", json.loads(parts["metadata"])
            )
            bodies.add(kind)
        if exchange.response_type.startswith("application/json"):
            assert check_response(
                exchange.method, template, exchange.status, json.loads(exchange.response_body)
            )
            checked.add(kind)
        elif exchange.response_type.startswith("multipart/form-data"):
            checked.add(kind)  # content/v2: the subset documents no JSON schema for it
    assert checked == sent
    assert bodies == {  # every request kind that carries a body had it validated
        ("POST", "/accounts/{account_id}/workers/scripts/{script_name}/versions"),
        ("POST", "/accounts/{account_id}/workers/scripts/{script_name}/deployments"),
        ("PUT", "/zones/{zone_identifier}/email/routing/rules/{rule_identifier}"),
        ("PUT", "/zones/{zone_identifier}/email/routing/rules/catch_all"),
        ("POST", "/accounts/{account_id}/d1/database/{database_id}/export"),
    }
    assert sent == {
        ("GET", "/accounts/{account_id}/workers/scripts/{script_name}/versions"),
        ("POST", "/accounts/{account_id}/workers/scripts/{script_name}/versions"),
        ("GET", "/accounts/{account_id}/workers/scripts/{script_name}/versions/{version_id}"),
        ("GET", "/accounts/{account_id}/workers/scripts/{script_name}/content/v2"),
        ("GET", "/accounts/{account_id}/workers/scripts/{script_name}/deployments"),
        ("POST", "/accounts/{account_id}/workers/scripts/{script_name}/deployments"),
        ("DELETE", "/accounts/{account_id}/workers/scripts/{script_name}"),
        ("GET", "/zones/{zone_identifier}/email/routing/rules"),
        ("GET", "/zones/{zone_identifier}/email/routing/rules/{rule_identifier}"),
        ("PUT", "/zones/{zone_identifier}/email/routing/rules/{rule_identifier}"),
        ("GET", "/zones/{zone_identifier}/email/routing/rules/catch_all"),
        ("PUT", "/zones/{zone_identifier}/email/routing/rules/catch_all"),
        ("POST", "/accounts/{account_id}/d1/database/{database_id}/export"),
        ("DELETE", "/accounts/{account_id}/d1/database/{database_id}"),
        ("DELETE", "/accounts/{account_id}/r2/buckets/{bucket_name}"),
    }


def test_the_requests_outside_the_subset_are_the_ones_it_lacks(exchanges):
    """Script secrets and the token check are absent from the 2024 subset; D1's signed URL is
    not an API path."""
    outside = {(e.method, _shape(e.path)) for e in exchanges if template_for(e.path) is None}
    assert outside == {
        ("GET", "/user/tokens/verify"),
        ("GET", "/accounts/*/workers/scripts/*/secrets"),
        ("PUT", "/accounts/*/workers/scripts/*/secrets"),
        ("DELETE", "/accounts/*/workers/scripts/*/secrets/*"),
        ("GET", "/__emulator/d1-exports/*"),
    }


def test_statuses_seen_include_the_refusals_the_layer_reads(exchanges):
    statuses = {(e.method, e.status) for e in exchanges}
    assert {("POST", 400), ("PUT", 400), ("GET", 404), ("POST", 202)} <= statuses


def _shape(path: str) -> str:
    path = path.removeprefix("/client/v4")
    parts = path.split("/")
    named = {"accounts", "scripts", "secrets", "d1-exports"}
    return "/".join("*" if i > 0 and parts[i - 1] in named else p for i, p in enumerate(parts))
