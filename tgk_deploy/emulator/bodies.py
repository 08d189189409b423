"""The emulator's own models of the request bodies it accepts.

They are written from Cloudflare's documentation and the OpenAPI subset, not
from the client code, so that a request the tool gets wrong is refused here
the way Cloudflare would refuse it (400 and a message that names the field).
Unknown fields are refused where Cloudflare's schema is closed enough to make
that safe; a refusal here is a bug in the sender, not something to loosen.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Cloudflare's schema (the 2024 OpenAPI subset) limits workers/message to 50 characters
# and workers/tag to 20; today's SDK docs speak of truncating messages at 1000 bytes and
# tags of up to 100 bytes. The emulator holds to the stricter limits, so that what passes
# here passes on either reading of the API.
MESSAGE_MAX_CHARS = 50
TAG_MAX_CHARS = 20


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
    tag: str | None = Field(default=None, alias="workers/tag", max_length=TAG_MAX_CHARS)


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

    _names = field_validator("bindings")(_unique_binding_names)


class SettingsPatch(_Closed):
    """The ``settings`` part of PATCH .../settings: only what is given changes."""

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


# --- deployments and secrets -------------------------------------------------------------------


class DeploymentVersion(_Closed):
    version_id: str = Field(min_length=1, max_length=36)
    percentage: float = Field(ge=0.01, le=100)


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
