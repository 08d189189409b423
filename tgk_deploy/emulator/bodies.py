"""The emulator's own models of the request bodies it accepts.

They are written from Cloudflare's documentation and the OpenAPI subset, not
from the client code, so that a request the tool gets wrong is refused here
the way Cloudflare would refuse it (400 and a message that names the field).
Unknown fields are refused where Cloudflare's schema is closed enough to make
that safe; a refusal here is a bug in the sender, not something to loosen.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Cloudflare's current schema (cloudflare/api-schemas openapi.yaml, revision 004e306 of
# 2026-08-14, components workers_deployment and the version annotations) gives
# workers/message "maxLength: 1000" and describes it as "Truncated to 1000 bytes if
# longer"; workers/tag "Maximum 100 bytes". The emulator does both halves: more than
# 1000 characters is refused (10021, as a schema validator would), and what is kept is
# cut to 1000 UTF-8 bytes. The 2024 revision said 50 and 20: tgk-deploy's own marks stay
# within 50 ASCII characters, so they pass and are kept whole under either revision.
MESSAGE_MAX_CHARS = 1000
MESSAGE_KEPT_BYTES = 1000
TAG_MAX_BYTES = 100


def kept_message(message: str) -> str:
    """What Cloudflare stores of a ``workers/message``: its first 1000 UTF-8 bytes."""
    return message.encode()[:MESSAGE_KEPT_BYTES].decode(errors="ignore")


def _tag_bytes(tag: str | None) -> str | None:
    if tag is not None and len(tag.encode()) > TAG_MAX_BYTES:
        raise ValueError(f"workers/tag is longer than {TAG_MAX_BYTES} bytes")
    return tag


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)


# --- bindings --------------------------------------------------------------------------------


class PlainTextBinding(_Closed):
    type: Literal["plain_text"]
    name: str = Field(min_length=1)
    text: str


class SecretTextBinding(_Closed):
    type: Literal["secret_text"]
    name: str = Field(min_length=1)
    text: str


class JsonBinding(_Closed):
    type: Literal["json"]
    name: str = Field(min_length=1)
    json_value: object = Field(alias="json")


class InheritBinding(_Closed):
    """Take the binding of this name (or ``old_name``) from ``version_id`` (default: latest)."""

    type: Literal["inherit"]
    name: str = Field(min_length=1)
    old_name: str | None = None
    version_id: str | None = None
    keep_type: str | None = Field(default=None, exclude=True)  # set for a settings ``{type, name}``


class VersionMetadataBinding(_Closed):
    type: Literal["version_metadata"]
    name: str = Field(min_length=1)


class KvNamespaceBinding(_Closed):
    type: Literal["kv_namespace"]
    name: str = Field(min_length=1)
    namespace_id: str = Field(min_length=1)


class D1Binding(_Closed):
    type: Literal["d1"]
    name: str = Field(min_length=1)
    id: str | None = None
    database_id: str | None = None


class R2Binding(_Closed):
    type: Literal["r2_bucket"]
    name: str = Field(min_length=1)
    bucket_name: str = Field(min_length=1)
    jurisdiction: str | None = None


class ServiceBinding(_Closed):
    type: Literal["service"]
    name: str = Field(min_length=1)
    service: str = Field(min_length=1)
    environment: str | None = None


class SendEmailBinding(_Open):
    type: Literal["send_email"]
    name: str = Field(min_length=1)


class AiBinding(_Closed):
    type: Literal["ai"]
    name: str = Field(min_length=1)


Binding = Annotated[
    PlainTextBinding
    | SecretTextBinding
    | JsonBinding
    | InheritBinding
    | VersionMetadataBinding
    | KvNamespaceBinding
    | D1Binding
    | R2Binding
    | ServiceBinding
    | SendEmailBinding
    | AiBinding,
    Field(discriminator="type"),
]


def _unique_binding_names(bindings: list[Binding]) -> list[Binding]:
    seen: set[str] = set()
    for binding in bindings:
        if binding.name in seen:
            raise ValueError(f"binding name {binding.name!r} is used more than once")
        seen.add(binding.name)
    return bindings


# --- Workers uploads ---------------------------------------------------------------------------


class VersionAnnotations(_Closed):
    message: str | None = Field(default=None, alias="workers/message", max_length=MESSAGE_MAX_CHARS)
    tag: str | None = Field(default=None, alias="workers/tag")

    _tag = field_validator("tag")(_tag_bytes)


class UploadMetadata(_Closed):
    """The ``metadata`` part of a script PUT or a version POST."""

    main_module: str | None = None
    body_part: str | None = None
    compatibility_date: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    compatibility_flags: list[str] = Field(default_factory=list)
    bindings: list[Binding] = Field(default_factory=list)
    keep_bindings: list[str] = Field(default_factory=list)
    annotations: VersionAnnotations | None = None
    usage_model: Literal["standard", "bundled", "unbound"] | None = None
    logpush: bool | None = None
    placement: dict[str, object] | None = None
    tail_consumers: list[dict[str, object]] | None = None
    limits: dict[str, object] | None = None
    observability: dict[str, object] | None = None
    tags: list[str] | None = None
    migrations: dict[str, object] | None = None
    # Documented in the multipart upload metadata; the emulator has no assets, containers
    # or cache, so it accepts and ignores them (wrangler's `versions secret put` sends
    # keep_assets: true on every upload).
    keep_assets: bool | None = None
    assets: dict[str, object] | None = None
    containers: list[dict[str, object]] | None = None
    streaming_tail_consumers: list[dict[str, object]] | None = None
    cache_options: dict[str, object] | None = None

    _names = field_validator("bindings")(_unique_binding_names)


KEEP_AS_IS = frozenset({"version_metadata", "ai", "inherit"})  # complete with type and name


def _keep_means_inherit(raw: object) -> object:
    """``{type, name}`` alone names an existing binding to keep, as wrangler's
    ``secret bulk`` sends every binding it does not change; it is the latest
    version's binding of that name, as an ``inherit`` binding would be."""
    if not isinstance(raw, dict) or not isinstance(raw.get("bindings"), list):
        return raw
    bindings = [
        {"type": "inherit", "name": b["name"], "keep_type": b["type"]}
        if isinstance(b, dict) and set(b) == {"type", "name"} and b["type"] not in KEEP_AS_IS
        else b
        for b in raw["bindings"]
    ]
    return {**raw, "bindings": bindings}


class SettingsPatch(_Closed):
    """The ``settings`` part of PATCH .../settings: only what is given changes.

    ``bindings``, when given, is the whole list: a binding left out is removed,
    one given as ``{type, name}`` is kept as it is.
    """

    _keep = model_validator(mode="before")(_keep_means_inherit)

    bindings: list[Binding] | None = None
    compatibility_date: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    compatibility_flags: list[str] | None = None
    keep_bindings: list[str] | None = None
    annotations: VersionAnnotations | None = None
    usage_model: Literal["standard", "bundled", "unbound"] | None = None
    logpush: bool | None = None
    placement: dict[str, object] | None = None
    tail_consumers: list[dict[str, object]] | None = None
    limits: dict[str, object] | None = None
    observability: dict[str, object] | None = None
    tags: list[str] | None = None

    @field_validator("bindings")
    @classmethod
    def _names(cls, bindings: list[Binding] | None) -> list[Binding] | None:
        return None if bindings is None else _unique_binding_names(bindings)


class ScriptSettingsPatch(_Closed):
    logpush: bool | None = None
    tail_consumers: list[dict[str, object]] | None = None
    observability: dict[str, object] | None = None
    tags: list[str] | None = None


class SubdomainBody(_Closed):
    """POST .../subdomain: the script's workers.dev route (and its preview URLs)."""

    enabled: bool
    previews_enabled: bool | None = None


# --- deployments and secrets -------------------------------------------------------------------


class DeploymentVersion(_Closed):
    version_id: str = Field(min_length=1, max_length=36)
    # The 2024 OpenAPI subset says minimum 0.01, but Cloudflare documents a version
    # deployed at 0 % for smoke tests through version overrides, and wrangler's
    # `versions deploy` sends 0: the emulator takes 0.
    percentage: float = Field(ge=0, le=100)


class DeploymentAnnotations(_Closed):
    message: str | None = Field(default=None, alias="workers/message", max_length=MESSAGE_MAX_CHARS)


class DeploymentCreate(_Closed):
    strategy: Literal["percentage"]
    versions: list[DeploymentVersion] = Field(min_length=1)
    annotations: DeploymentAnnotations | None = None


class SecretPut(_Closed):
    name: str = Field(min_length=1)
    text: str
    type: Literal["secret_text"]


# --- email routing -----------------------------------------------------------------------------


class RuleMatcher(_Closed):
    type: Literal["literal", "all"]
    field: Literal["to"] | None = None
    value: str | None = Field(default=None, max_length=90)


class RuleAction(_Closed):
    type: Literal["forward", "worker", "drop"]
    value: list[Annotated[str, Field(max_length=90)]] | None = None


class RuleBody(_Closed):
    """POST rules and PUT rules/{id}: the whole rule, every time."""

    actions: list[RuleAction] = Field(min_length=1)
    matchers: list[RuleMatcher] = Field(min_length=1)
    enabled: bool = True
    name: str = Field(default="", max_length=256)
    priority: float = Field(default=0, ge=0)


class CatchAllBody(_Closed):
    actions: list[RuleAction] = Field(min_length=1)
    matchers: list[RuleMatcher] = Field(min_length=1)
    enabled: bool = True
    name: str = Field(default="", max_length=256)


# --- D1 ----------------------------------------------------------------------------------------


class DumpOptions(_Closed):
    no_data: bool = False
    no_schema: bool = False
    tables: list[str] = Field(default_factory=list)


class D1ExportBody(_Closed):
    output_format: Literal["polling"]
    current_bookmark: str | None = None
    dump_options: DumpOptions | None = None
