"""Hold requests and responses to tests/cloudflare/schema/openapi-subset.json.

    check_response("GET", "/accounts/{account_id}/workers/scripts/{script_name}/versions",
                   200, body)                      # raises ContractViolation, or returns
    check_request("POST", ".../deployments", json_body)
    check_multipart_part("POST", ".../versions", "metadata", metadata_dict)

Each returns True when the subset documents that operation (and the check
ran), False when it does not (e.g. script-level secrets, absent upstream in
the 2024 revision), so a caller can count what the contract covered.

The subset is Cloudflare's OpenAPI 3.0 document of 2024-08-06 with the
annotation limits of the 2026-08-14 revision (its ``x-source`` says exactly
what comes from which commit of cloudflare/api-schemas), kept in the project
so CI needs nothing beside the clone. Some of its habits would make every
check fail for reasons that are not ours; each adaptation below is narrow and
says why:

1. OpenAPI 3.0 ``nullable: true`` is not JSON Schema: it becomes a ``null``
   member of ``type`` (and of ``enum``).
2. Workers' 4XX schemas are ``allOf`` [success response, failure response]:
   ``success`` must then be both ``true`` and ``false``. A failure is held to
   the failure part alone (``*-failure`` component); where an operation
   documents no failure schema, to the common failure envelope.
3. ``workers_binding`` lists only resource bindings (KV, R2, D1 as
   {binding, id, name}, ...); the ``plain_text``, ``secret_text``, ``json``,
   ``inherit``, ``version_metadata``, ``send_email`` and ``ai`` bindings that
   Cloudflare documents for the same upload metadata, and D1 as the current
   API shows it ({name, id}), are added as extra ``oneOf`` branches.
4. ``workers_usage_model`` allows ``bundled`` and ``unbound`` only; the
   ``standard`` usage model (2024, the one new Workers get, and the only
   value the same document allows in a version upload) is added.
5. ``d1_api-response-common`` types ``result`` as an object, while the D1
   delete response built on it says ``result`` is ``null``: null is allowed.
6. ``workers_deployments-strategy-percentage`` gives a version's ``percentage``
   a minimum of 0.01, while Cloudflare documents a version deployed at 0 % for
   smoke tests through version overrides ("Version overrides", Workers docs) and
   wrangler's ``versions deploy`` sends 0: the minimum is 0.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SUBSET = Path(__file__).resolve().parent / "cloudflare" / "schema" / "openapi-subset.json"


FAILURE_ENVELOPE = {
    "type": "object",
    "required": ["success", "errors", "messages", "result"],
    "properties": {
        "success": {"enum": [False]},
        "errors": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "integer", "minimum": 1000},
                    "message": {"type": "string"},
                },
            },
        },
        "messages": {"type": "array"},
        "result": {"type": "null"},
    },
}


def _named(type_name: str, **properties: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["name", "type", *properties],
        "properties": {
            "name": {"type": "string"},
            "type": {"enum": [type_name]},
            **{k: v for k, v in properties.items()},
        },
    }


EXTRA_BINDINGS = [
    _named("plain_text", text={"type": "string"}),
    # secret values are write-only: responses show the name and type alone
    {
        "type": "object",
        "required": ["name", "type"],
        "properties": {"name": {"type": "string"}, "type": {"enum": ["secret_text"]}},
    },
    _named("json", json={}),
    {
        "type": "object",
        "required": ["name", "type"],
        "properties": {
            "name": {"type": "string"},
            "type": {"enum": ["inherit"]},
            "old_name": {"type": "string"},
            "version_id": {"type": "string"},
        },
    },
    _named("version_metadata"),
    _named("send_email"),
    _named("ai"),
    _named("d1", id={"type": "string"}),
]


class ContractViolation(AssertionError):
    pass


@functools.cache
def _document() -> dict[str, Any]:
    document = json.loads(SUBSET.read_text())
    components = _json_schema(document["components"])
    binding = components["schemas"]["workers_binding"]
    binding["oneOf"] = [*binding["oneOf"], *EXTRA_BINDINGS]
    binding.pop("type", None)
    usage = components["schemas"]["workers_usage_model"]
    usage["pattern"] = "^(bundled|unbound|standard)$"
    components["schemas"]["d1_api-response-common"]["properties"]["result"]["type"] = [
        "object",
        "null",
    ]
    strategy = components["schemas"]["workers_deployments-strategy-percentage"]
    strategy["properties"]["versions"]["items"]["properties"]["percentage"]["minimum"] = 0
    return {"paths": _json_schema(document["paths"]), "components": components}


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema objects -> JSON Schema (``nullable`` only; see the docstring)."""
    if isinstance(node, list):
        return [_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _json_schema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable"):
        if "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = [*types, "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


def _operation(method: str, template: str) -> dict[str, Any] | None:
    item = _document()["paths"].get(template)
    return None if item is None else item.get(method.lower())


def _validate(schema: dict[str, Any], instance: Any, what: str) -> None:
    root = {**copy.deepcopy(schema), "components": _document()["components"]}
    errors = sorted(Draft202012Validator(root).iter_errors(instance), key=lambda e: e.path)
    if errors:
        details = "\n".join(
            f"  at {'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message[:300]}"
            for e in errors[:8]
        )
        raise ContractViolation(f"{what} breaks the OpenAPI subset:\n{details}")


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _json_content(entry: dict[str, Any] | None) -> dict[str, Any] | None:
    if not entry:
        return None
    if "$ref" in entry:
        entry = _resolve(entry["$ref"])
    return (entry.get("content") or {}).get("application/json", {}).get("schema")


def _resolve(ref: str) -> dict[str, Any]:
    node: Any = {"components": _document()["components"]}
    for key in ref.removeprefix("#/").split("/"):
        node = node[key]
    return node


def check_response(method: str, template: str, status: int, body: Any) -> bool:
    """Validate one JSON response body; False when the subset lacks the operation."""
    operation = _operation(method, template)
    if operation is None:
        return False
    responses = operation.get("responses", {})
    entry = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX")
    what = f"{method} {template} -> {status}"
    if status >= 400:
        documented = _json_content(entry)
        failures = [r for r in _refs(documented) if r.endswith("failure")]
        schema = {"$ref": failures[0]} if failures else FAILURE_ENVELOPE
        _validate(schema, body, what)
        return True
    if entry is None:
        raise ContractViolation(f"{what}: status {status} is not documented")
    schema = _json_content(entry)
    if schema is not None:
        _validate(schema, body, what)
    return True


def check_request(method: str, template: str, body: Any) -> bool:
    """Validate a JSON request body; False when the subset lacks the operation."""
    operation = _operation(method, template)
    if operation is None:
        return False
    schema = _json_content(operation.get("requestBody"))
    if schema is not None:
        _validate(schema, body, f"{method} {template} request body")
    return True


def check_multipart_part(method: str, template: str, part: str, value: Any) -> bool:
    """Validate one JSON part (``metadata``, ``settings``) of a multipart request."""
    operation = _operation(method, template)
    if operation is None:
        return False
    body = operation.get("requestBody") or {}
    if "$ref" in body:
        body = _resolve(body["$ref"])
    schema = (body.get("content") or {}).get("multipart/form-data", {}).get("schema")
    if schema is None:
        return True
    branches = schema.get("oneOf", [schema])
    candidates = [b["properties"][part] for b in branches if part in b.get("properties", {})]
    if not candidates:
        raise ContractViolation(f"{method} {template}: no multipart part {part!r} documented")
    _validate(candidates[0], value, f"{method} {template} part {part!r}")
    return True


def template_for(path: str) -> str | None:
    """The subset's template for a concrete API path (``/client/v4`` optional)."""
    path = path.split("?", 1)[0].removeprefix("/client/v4")
    for template in _document()["paths"]:
        pattern = "^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and not (
            template.endswith("{rule_identifier}") and path.endswith("/catch_all")
        ):
            return template
    return None
