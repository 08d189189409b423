"""Speaking to the emulator the way Cloudflare clients do: bearer token, multipart uploads."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from tgk_deploy.emulator import DEFAULT_ACCOUNT_ID, DEFAULT_ZONE_ID, Emulator

ACCOUNT = DEFAULT_ACCOUNT_ID
ZONE = DEFAULT_ZONE_ID
SCRIPT_NAME = "tgk-email-orchestrator"
SCRIPT = f"/accounts/{ACCOUNT}/workers/scripts/{SCRIPT_NAME}"
RULES = f"/zones/{ZONE}/email/routing/rules"
MODULE = "application/javascript+module"


def client(emulator: Emulator, token: str = "any-token") -> httpx.Client:
    """A plain-HTTP client (no TLS context to build: loading CA certificates costs 0.2 s)."""
    return httpx.Client(
        base_url=emulator.url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
        verify=False,
    )


def upload_files(
    metadata: Mapping[str, Any], modules: Mapping[str, bytes | str]
) -> list[tuple[str, tuple[str | None, bytes | str, str]]]:
    """Multipart parts as wrangler sends them: ``metadata`` JSON, then one part per module."""
    files: list[tuple[str, tuple[str | None, bytes | str, str]]] = [
        ("metadata", (None, json.dumps(metadata), "application/json"))
    ]
    files += [(name, (name, content, MODULE)) for name, content in modules.items()]
    return files


def version_metadata(
    *,
    main_module: str = "worker.js",
    bindings: Sequence[Mapping[str, Any]] = (),
    message: str | None = None,
    tag: str | None = None,
    keep_bindings: Sequence[str] | None = None,
) -> dict[str, Any]:
    annotations = {}
    if message is not None:
        annotations["workers/message"] = message
    if tag is not None:
        annotations["workers/tag"] = tag
    metadata: dict[str, Any] = {
        "main_module": main_module,
        "compatibility_date": "2024-09-23",
        "compatibility_flags": ["nodejs_compat"],
        "bindings": list(bindings),
    }
    if annotations:
        metadata["annotations"] = annotations
    if keep_bindings is not None:
        metadata["keep_bindings"] = list(keep_bindings)
    return metadata


WORKER_JS = b"export default { async email(message, env) { await env.T.send(message); } };\n"


def create_version(
    http: httpx.Client,
    *,
    modules: Mapping[str, bytes | str] | None = None,
    **metadata: Any,
) -> httpx.Response:
    return http.post(
        f"{SCRIPT}/versions",
        files=upload_files(version_metadata(**metadata), modules or {"worker.js": WORKER_JS}),
    )


def deploy(
    http: httpx.Client, *shares: tuple[str, float], message: str | None = None, force: bool = False
) -> httpx.Response:
    body: dict[str, Any] = {
        "strategy": "percentage",
        "versions": [{"version_id": v, "percentage": p} for v, p in shares],
    }
    if message is not None:
        body["annotations"] = {"workers/message": message}
    return http.post(
        f"{SCRIPT}/deployments", params={"force": "true"} if force else None, json=body
    )


def live(http: httpx.Client) -> dict[str, Any]:
    return http.get(f"{SCRIPT}/deployments").json()["result"]["deployments"][0]


def codes(response: httpx.Response) -> list[int]:
    return [e["code"] for e in response.json()["errors"]]
