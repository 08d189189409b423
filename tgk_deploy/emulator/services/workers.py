"""Workers: scripts, versions, deployments, secrets and settings, with Cloudflare's rules.

The rules modelled (see ../shared/CLOUDFLARE-API.md):
- a script PUT makes a version and deploys it at 100 %, ending any split;
- a version POST makes a version (numbered per script) and deploys nothing;
- a deployment holds one or two versions whose percentages sum to 100; each
  must be one of the last 100 versions; going back to a version whose secrets
  have changed since needs ``force`` (10220);
- a secret PUT/DELETE or a settings PATCH copies the *latest* version and
  deploys the copy at 100 %, and fails (10215 / 10214) unless the latest
  version alone takes all traffic;
- ``inherit`` bindings resolve against the named (or latest) version and
  ``keep_bindings`` carries bindings of the given types over from the latest.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tgk_deploy.emulator import bodies
from tgk_deploy.emulator.context import DEFAULT_ACCOUNT_ID, DEFAULT_AUTHOR, Shared, iso
from tgk_deploy.emulator.wire import (
    ApiError,
    Code,
    JsonDict,
    Page,
    Part,
    Request,
    Response,
    encode_multipart,
    envelope,
    json_body,
    paginate,
    parse_multipart,
    router,
    validate,
)

DEFAULT_COMPATIBILITY_DATE = "2024-09-23"
DEPLOYABLE_VERSIONS = 100
SECRET_TYPES = ("secret_text", "secret_key")
VERSIONS_PER_PAGE = 20

DEMO_WORKER = b"""export default {
  async email(message, env, ctx) {
    await env.TELEGRAM.send(message);
  },
};
"""


def _not_found_script(name: str) -> ApiError:
    return ApiError(404, Code.NOT_FOUND, f"workers.api.error.script_not_found: {name}")


# --- records -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Module:
    name: str
    content: bytes
    content_type: str = "application/javascript+module"


@dataclass(frozen=True)
class Upload:
    """A multipart upload as the routes parsed it: the metadata and the module parts."""

    metadata: bodies.UploadMetadata
    modules: tuple[Module, ...]
    source: str = "api"  # "wrangler" when wrangler sent it (its User-Agent says so)


@dataclass
class Version:
    id: str
    number: int
    created_on: datetime
    main_module: str
    modules: dict[str, Module]
    bindings: list[JsonDict]  # resolved; secret_text bindings keep their text here only
    compatibility_date: str
    compatibility_flags: list[str]
    annotations: JsonDict
    usage_model: str = "standard"
    author_email: str = DEFAULT_AUTHOR
    source: str = "api"

    @property
    def etag(self) -> str:
        digest = hashlib.sha256()
        for name in sorted(self.modules):
            digest.update(name.encode() + b"\0" + self.modules[name].content + b"\0")
        return digest.hexdigest()

    @property
    def secrets(self) -> dict[str, str]:
        return {b["name"]: b["text"] for b in self.bindings if b["type"] == "secret_text"}

    @property
    def handlers(self) -> list[str]:
        main = self.modules.get(self.main_module)
        text = main.content.decode(errors="replace") if main else ""
        found = re.findall(r"\b(fetch|email|scheduled|queue|tail|trace)\s*\(", text)
        return sorted(set(found))

    def public_bindings(self) -> list[JsonDict]:
        """Bindings as the API shows them: secret values never leave the emulator."""
        return [
            {k: v for k, v in b.items() if not (b["type"] == "secret_text" and k == "text")}
            for b in self.bindings
        ]

    def short(self) -> JsonDict:
        return {
            "id": self.id,
            "number": self.number,
            "metadata": {
                "author_email": self.author_email,
                "author_id": hashlib.md5(self.author_email.encode()).hexdigest(),
                "created_on": iso(self.created_on),
                "modified_on": iso(self.created_on),
                "source": self.source,
                "hasPreview": False,
            },
            "annotations": dict(self.annotations),
        }

    def full(self) -> JsonDict:
        return {
            **self.short(),
            "resources": {
                "bindings": self.public_bindings(),
                "script": {
                    "etag": self.etag,
                    "handlers": self.handlers,
                    "last_deployed_from": self.source,
                },
                "script_runtime": {
                    "compatibility_date": self.compatibility_date,
                    "compatibility_flags": list(self.compatibility_flags),
                    "usage_model": self.usage_model,
                    "limits": {},
                },
            },
        }


@dataclass
class Deployment:
    id: str
    created_on: datetime
    versions: list[tuple[str, float]]
    annotations: JsonDict
    source: str = "api"
    author_email: str = DEFAULT_AUTHOR
    strategy: str = "percentage"

    def to_api(self) -> JsonDict:
        return {
            "id": self.id,
            "created_on": iso(self.created_on),
            "source": self.source,
            "strategy": self.strategy,
            "versions": [{"version_id": v, "percentage": p} for v, p in self.versions],
            "annotations": dict(self.annotations),
            "author_email": self.author_email,
        }


@dataclass
class Script:
    account_id: str
    name: str
    created_on: datetime
    modified_on: datetime
    versions: list[Version] = field(default_factory=list)  # oldest first
    deployments: list[Deployment] = field(default_factory=list)  # oldest first
    secret_changes: list[int] = field(default_factory=list)  # version numbers made by secrets
    logpush: bool = False
    tail_consumers: list[JsonDict] = field(default_factory=list)
    observability: JsonDict | None = None
    tags: list[str] = field(default_factory=list)
    tag: str = ""  # the script's own id, as wrangler reads it from the service
    last_deployed_from: str = "api"
    subdomain: JsonDict = field(
        default_factory=lambda: {"enabled": False, "previews_enabled": False}
    )  # workers.dev: off, as tgk-email-orchestrator's wrangler.toml has it

    @property
    def latest(self) -> Version:
        return self.versions[-1]

    @property
    def live(self) -> Deployment | None:
        return self.deployments[-1] if self.deployments else None

    def version(self, version_id: str) -> Version | None:
        return next((v for v in self.versions if v.id == version_id), None)

    def latest_alone_is_live(self) -> bool:
        live = self.live
        return bool(live) and live.versions == [(self.latest.id, 100.0)]

    def to_api(self) -> JsonDict:
        latest = self.latest
        return {
            "id": self.name,
            "created_on": iso(self.created_on),
            "modified_on": iso(self.modified_on),
            "etag": latest.etag,
            "handlers": latest.handlers,
            "logpush": self.logpush,
            "tail_consumers": list(self.tail_consumers),
            "usage_model": latest.usage_model,
            "compatibility_date": latest.compatibility_date,
            "compatibility_flags": list(latest.compatibility_flags),
            "has_modules": True,
            "startup_time_ms": 7,
        }


# --- the service -------------------------------------------------------------------------------


class Workers:
    """Every Worker script of the emulated accounts, with its versions and deployments."""

    def __init__(self, shared: Shared) -> None:
        self._shared = shared
        self.scripts: dict[tuple[str, str], Script] = {}

    def _script(self, account_id: str, name: str) -> Script:
        script = self.scripts.get((account_id, name))
        if script is None:
            raise _not_found_script(name)
        return script

    def get_script(self, account_id: str, name: str) -> Script:
        with self._shared.lock:
            return self._script(account_id, name)

    def put_script(self, account_id: str, name: str, upload: Upload) -> JsonDict:
        """Upload and deploy at 100 % at once, whatever split was live (trap 1).

        Secrets carry over as for a version POST (see ``_kept_types``).
        """
        with self._shared.lock:
            script = self.scripts.get((account_id, name))
            now = self._shared.clock()
            created = script is None
            if script is None:
                script = Script(
                    account_id, name, created_on=now, modified_on=now, tag=self._shared.hex32()
                )
            version = self._build_version(script, upload, strict_inherit=False)
            script.last_deployed_from = upload.source
            version.source = upload.source
            version.annotations["workers/triggered_by"] = "upload"
            self.scripts[(account_id, name)] = script
            try:
                self._append_version(script, version)
            except ApiError:
                if created:
                    del self.scripts[(account_id, name)]
                raise
            if upload.metadata.logpush is not None:
                script.logpush = upload.metadata.logpush
            self._deploy(
                script, [(version.id, 100.0)], None, triggered_by="upload", source=upload.source
            )
            return script.to_api()

    def delete_script(self, account_id: str, name: str, *, force: bool = False) -> None:
        del force  # nothing binds to scripts in the emulator, so force changes nothing
        with self._shared.lock:
            self._script(account_id, name)
            del self.scripts[(account_id, name)]

    def service(self, account_id: str, name: str) -> JsonDict:
        """The Worker as a service with one ("production") environment: what wrangler
        reads before ``deploy`` and ``versions upload`` (its ``script.tag``,
        ``last_deployed_from``). A missing one is 10090, which wrangler tolerates."""
        with self._shared.lock:
            script = self.scripts.get((account_id, name))
            if script is None:
                raise ApiError(404, Code.SERVICE_NOT_FOUND, "workers.api.error.service_not_found")
            created, modified = iso(script.created_on), iso(script.modified_on)
            return {
                "id": name,
                "default_environment": {
                    "environment": "production",
                    "created_on": created,
                    "modified_on": modified,
                    "script": {
                        **script.to_api(),
                        "tag": script.tag,
                        "tags": list(script.tags),
                        "last_deployed_from": script.last_deployed_from,
                    },
                },
                "created_on": created,
                "modified_on": modified,
            }

    def get_subdomain(self, account_id: str, name: str) -> JsonDict:
        with self._shared.lock:
            return dict(self._script(account_id, name).subdomain)

    def set_subdomain(self, account_id: str, name: str, body: bodies.SubdomainBody) -> JsonDict:
        """Not versioned: no new version, allowed during a split."""
        with self._shared.lock:
            script = self._script(account_id, name)
            script.subdomain = {
                "enabled": body.enabled,
                "previews_enabled": body.enabled
                if body.previews_enabled is None
                else body.previews_enabled,
            }
            return dict(script.subdomain)

    def references(self, account_id: str, name: str) -> JsonDict:
        """Who depends on this Worker: nobody can, in the emulator (no service bindings
        between scripts are modelled, no Durable Objects, no dispatch namespaces)."""
        with self._shared.lock:
            self._script(account_id, name)
            return {
                "services": {"incoming": [], "outgoing": [], "pages_function": False},
                "durable_objects": [],
                "dispatch_outbounds": [],
            }

    def content(self, account_id: str, name: str, version_id: str | None) -> Version:
        """The version whose modules GET content/v2 returns (default: the live one)."""
        with self._shared.lock:
            script = self._script(account_id, name)
            if version_id is None:
                live = script.live
                version_id = max(live.versions, key=lambda v: v[1])[0] if live else script.latest.id
            return self._version_of(script, version_id)

    def _version_of(self, script: Script, version_id: str) -> Version:
        version = script.version(version_id)
        if version is None:
            raise ApiError(404, Code.NOT_FOUND, f"version {version_id} not found")
        return version

    # ---- versions

    def create_version(
        self, account_id: str, name: str, upload: Upload, *, strict_inherit: bool = False
    ) -> JsonDict:
        with self._shared.lock:
            script = self._script(account_id, name)
            version = self._build_version(script, upload, strict_inherit=strict_inherit)
            version.annotations["workers/triggered_by"] = "version_upload"
            version.source = upload.source
            script.last_deployed_from = upload.source
            self._append_version(script, version)
            return {**version.full(), "startup_time_ms": 7}

    def list_versions(
        self,
        account_id: str,
        name: str,
        *,
        page: int = 1,
        per_page: int = VERSIONS_PER_PAGE,
        deployable: bool = False,
    ) -> Page:
        """Newest first. ``deployable`` ignores pagination and returns the last 100."""
        with self._shared.lock:
            script = self._script(account_id, name)
            newest_first = [v.short() for v in reversed(script.versions)]
            if deployable:
                items = newest_first[:DEPLOYABLE_VERSIONS]
                return Page(items, 1, len(items) or 1, len(items))
            if page < 1 or not 1 <= per_page <= 100:
                raise ApiError(400, Code.VALIDATION, "page must be >= 1, per_page 1..100")
            return paginate(newest_first, page, per_page)

    def get_version(self, account_id: str, name: str, version_id: str) -> JsonDict:
        with self._shared.lock:
            return self._version_of(self._script(account_id, name), version_id).full()

    def _append_version(self, script: Script, version: Version) -> None:
        script.versions.append(version)
        script.modified_on = version.created_on

    def _build_version(self, script: Script, upload: Upload, *, strict_inherit: bool) -> Version:
        meta = upload.metadata
        if meta.body_part is not None:
            raise ApiError(400, Code.VALIDATION, "service-worker syntax is not supported")
        if not upload.modules:
            raise ApiError(400, Code.VALIDATION, "at least one module must be uploaded")
        modules = {m.name: m for m in upload.modules}
        if not meta.main_module:
            raise ApiError(400, Code.VALIDATION, "metadata.main_module is required")
        if meta.main_module not in modules:
            raise ApiError(
                400, Code.VALIDATION, f"main_module {meta.main_module!r} is not an uploaded module"
            )
        latest = script.versions[-1] if script.versions else None
        bindings = self._resolve_bindings(script, meta.bindings, strict_inherit=strict_inherit)
        bindings = self._keep(bindings, latest, _kept_types(meta))
        annotations: JsonDict = {}
        if meta.annotations is not None:
            annotations = _version_annotations(meta.annotations)
        return Version(
            id=self._shared.uuid(),
            number=(latest.number + 1) if latest else 1,
            created_on=self._shared.clock(),
            main_module=meta.main_module,
            modules=modules,
            bindings=bindings,
            compatibility_date=meta.compatibility_date or DEFAULT_COMPATIBILITY_DATE,
            compatibility_flags=list(meta.compatibility_flags),
            annotations=annotations,
            usage_model="standard",
            author_email=self._shared.author_email,
        )

    def _resolve_bindings(
        self, script: Script, given: Sequence[bodies.Binding], *, strict_inherit: bool
    ) -> list[JsonDict]:
        resolved: list[JsonDict] = []
        for binding in given:
            if isinstance(binding, bodies.InheritBinding):
                inherited = self._inherit(script, binding, strict=strict_inherit)
                if inherited is not None:
                    resolved.append(inherited)
            else:
                resolved.append(_binding_dict(binding))
        return resolved

    def _inherit(
        self, script: Script, binding: bodies.InheritBinding, *, strict: bool
    ) -> JsonDict | None:
        if binding.version_id is not None:
            source = script.version(binding.version_id)
            if source is None:
                raise ApiError(
                    400,
                    Code.VALIDATION,
                    f"binding {binding.name!r} inherits from version {binding.version_id}, "
                    "which does not exist",
                )
        elif script.versions:
            source = script.latest
        else:
            raise ApiError(400, Code.VALIDATION, f"binding {binding.name!r}: nothing to inherit")
        wanted = binding.old_name or binding.name
        found = next((b for b in source.bindings if b["name"] == wanted), None)
        if binding.keep_type is not None and (found is None or found["type"] != binding.keep_type):
            raise ApiError(
                400,
                Code.BINDING_NOT_FOUND,
                f"binding {wanted!r} of type {binding.keep_type} to keep does not exist",
            )
        if found is None:
            if strict:
                raise ApiError(
                    400,
                    Code.BINDING_NOT_FOUND,
                    f"binding {wanted!r} to inherit does not exist in version {source.id}",
                )
            return None  # Cloudflare silently drops an unresolvable inherit unless strict
        return {**found, "name": binding.name}

    @staticmethod
    def _keep(
        bindings: list[JsonDict], latest: Version | None, keep_types: Sequence[str]
    ) -> list[JsonDict]:
        if latest is None or not keep_types:
            return bindings
        named = {b["name"] for b in bindings}
        kept = [b for b in latest.bindings if b["type"] in keep_types and b["name"] not in named]
        return bindings + [dict(b) for b in kept]

    # ---- deployments

    def create_deployment(
        self,
        account_id: str,
        name: str,
        body: bodies.DeploymentCreate,
        *,
        force: bool = False,
        source: str = "api",
    ) -> JsonDict:
        with self._shared.lock:
            script = self._script(account_id, name)
            shares = [(v.version_id, float(v.percentage)) for v in body.versions]
            if len(shares) > 2:
                raise ApiError(400, Code.VALIDATION, "a deployment holds at most 2 versions")
            if len({v for v, _ in shares}) != len(shares):
                raise ApiError(400, Code.VALIDATION, "a version appears twice in the deployment")
            if abs(sum(p for _, p in shares) - 100.0) > 1e-6:
                raise ApiError(400, Code.VALIDATION, "version percentages must sum to 100")
            deployable = {v.id for v in script.versions[-DEPLOYABLE_VERSIONS:]}
            for version_id, _ in shares:
                self._version_of(script, version_id)
                if version_id not in deployable:
                    raise ApiError(
                        400,
                        Code.VALIDATION,
                        f"version {version_id} is not one of the last "
                        f"{DEPLOYABLE_VERSIONS} versions",
                    )
            if not force:
                self._refuse_changed_secrets(script, [v for v, _ in shares])
            message = body.annotations.message if body.annotations else None
            deployment = self._deploy(
                script, shares, message, triggered_by="deployment", source=source
            )
            return deployment.to_api()

    def _refuse_changed_secrets(self, script: Script, version_ids: Sequence[str]) -> None:
        """10220: a secret changed after this version, and its secrets differ from now."""
        current = script.latest.secrets
        for version_id in version_ids:
            version = self._version_of(script, version_id)
            changed_since = any(n > version.number for n in script.secret_changes)
            if not changed_since:
                continue
            differing = sorted(
                name
                for name in set(current) | set(version.secrets)
                if current.get(name) != version.secrets.get(name)
            )
            if differing:
                raise ApiError(
                    400,
                    Code.SECRETS_CHANGED,
                    "A secret has changed since this version was active. If you are sure this "
                    "is ok, add a ?force=true query parameter to allow the rollback. The "
                    f"following secrets have changed: {', '.join(differing)}",
                )

    def list_deployments(self, account_id: str, name: str) -> list[JsonDict]:
        with self._shared.lock:
            script = self._script(account_id, name)
            return [d.to_api() for d in reversed(script.deployments)]

    def _deploy(
        self,
        script: Script,
        shares: list[tuple[str, float]],
        message: str | None,
        *,
        triggered_by: str,
        source: str = "api",
    ) -> Deployment:
        annotations: JsonDict = {"workers/triggered_by": triggered_by}
        if message is not None:
            annotations["workers/message"] = bodies.kept_message(message)
        deployment = Deployment(
            id=self._shared.uuid(),
            created_on=self._shared.clock(),
            versions=shares,
            annotations=annotations,
            author_email=self._shared.author_email,
            source=source,
        )
        script.deployments.append(deployment)
        return deployment

    # ---- secrets and versioned settings (copy the latest version, deploy it)

    def _copy_latest(
        self,
        script: Script,
        *,
        bindings: list[JsonDict],
        triggered_by: str,
        annotations: JsonDict | None = None,
        compatibility_date: str | None = None,
        compatibility_flags: list[str] | None = None,
    ) -> Version:
        latest = script.latest
        version = Version(
            id=self._shared.uuid(),
            number=latest.number + 1,
            created_on=self._shared.clock(),
            main_module=latest.main_module,
            modules=dict(latest.modules),
            bindings=bindings,
            compatibility_date=compatibility_date or latest.compatibility_date,
            compatibility_flags=list(
                latest.compatibility_flags if compatibility_flags is None else compatibility_flags
            ),
            annotations={**(annotations or {}), "workers/triggered_by": triggered_by},
            usage_model=latest.usage_model,
            author_email=self._shared.author_email,
        )
        self._append_version(script, version)
        self._deploy(script, [(version.id, 100.0)], None, triggered_by=triggered_by)
        return version

    def _require_latest_live(self, script: Script, code: int, what: str) -> None:
        if not script.latest_alone_is_live():
            raise ApiError(
                400,
                code,
                f"{what} failed. The latest version of your Worker isn't currently deployed. "
                "Deploy the latest version at 100% before changing it this way, or create a "
                "new version and deploy it.",
            )

    def put_secret(self, account_id: str, name: str, body: bodies.SecretPut) -> JsonDict:
        with self._shared.lock:
            script = self._script(account_id, name)
            self._require_latest_live(script, Code.SECRET_LATEST_NOT_DEPLOYED, "Secret edit")
            bindings = [dict(b) for b in script.latest.bindings if b["name"] != body.name]
            bindings.append({"type": "secret_text", "name": body.name, "text": body.text})
            version = self._copy_latest(script, bindings=bindings, triggered_by="secret")
            script.secret_changes.append(version.number)
            return {"name": body.name, "type": "secret_text"}

    def delete_secret(self, account_id: str, name: str, secret_name: str) -> None:
        with self._shared.lock:
            script = self._script(account_id, name)
            if secret_name not in script.latest.secrets:
                raise ApiError(404, Code.BINDING_NOT_FOUND, f"secret {secret_name!r} not found")
            self._require_latest_live(script, Code.SECRET_LATEST_NOT_DEPLOYED, "Secret edit")
            bindings = [dict(b) for b in script.latest.bindings if b["name"] != secret_name]
            version = self._copy_latest(script, bindings=bindings, triggered_by="secret")
            script.secret_changes.append(version.number)

    def list_secrets(self, account_id: str, name: str) -> list[JsonDict]:
        """The latest version's secrets: the version the Secrets API edits (a PUT or
        DELETE copies it, and is refused with 10215 unless it alone is live), so
        the listing reads the same one. ``tgk-deploy status`` shows each live
        version's; both agree whenever the latest version alone takes traffic."""
        with self._shared.lock:
            script = self._script(account_id, name)
            return [{"name": n, "type": "secret_text"} for n in sorted(script.latest.secrets)]

    def get_secret(self, account_id: str, name: str, secret_name: str) -> JsonDict:
        with self._shared.lock:
            script = self._script(account_id, name)
            if secret_name not in script.latest.secrets:
                raise ApiError(404, Code.BINDING_NOT_FOUND, f"secret {secret_name!r} not found")
            return {"name": secret_name, "type": "secret_text"}

    def get_settings(self, account_id: str, name: str) -> JsonDict:
        with self._shared.lock:
            return self._settings(self._script(account_id, name))

    @staticmethod
    def _settings(script: Script) -> JsonDict:
        latest = script.latest
        return {
            "bindings": latest.public_bindings(),
            "compatibility_date": latest.compatibility_date,
            "compatibility_flags": list(latest.compatibility_flags),
            "usage_model": latest.usage_model,
            "logpush": script.logpush,
            "tail_consumers": list(script.tail_consumers),
            "placement": {},
            "limits": {},
            "tags": list(script.tags),
            "annotations": dict(latest.annotations),
        }

    def patch_settings(self, account_id: str, name: str, patch: bodies.SettingsPatch) -> JsonDict:
        with self._shared.lock:
            script = self._script(account_id, name)
            self._require_latest_live(script, Code.SETTINGS_LATEST_NOT_DEPLOYED, "Settings update")
            latest = script.latest
            if patch.bindings is None:
                bindings = [dict(b) for b in latest.bindings]
            else:
                bindings = self._resolve_bindings(script, patch.bindings, strict_inherit=False)
                bindings = self._keep(bindings, latest, patch.keep_bindings or [])
            if patch.logpush is not None:
                script.logpush = patch.logpush
            if patch.tail_consumers is not None:
                script.tail_consumers = list(patch.tail_consumers)
            if patch.tags is not None:
                script.tags = list(patch.tags)
            annotations = _version_annotations(patch.annotations) if patch.annotations else {}
            self._copy_latest(
                script,
                bindings=bindings,
                triggered_by="settings",
                annotations=annotations,
                compatibility_date=patch.compatibility_date,
                compatibility_flags=patch.compatibility_flags,
            )
            return self._settings(script)

    def get_script_settings(self, account_id: str, name: str) -> JsonDict:
        with self._shared.lock:
            script = self._script(account_id, name)
            return {
                "logpush": script.logpush,
                "tail_consumers": list(script.tail_consumers),
                "observability": script.observability,
                "tags": list(script.tags),
            }

    def patch_script_settings(
        self, account_id: str, name: str, patch: bodies.ScriptSettingsPatch
    ) -> JsonDict:
        """Not versioned: no new version, allowed during a split."""
        with self._shared.lock:
            script = self._script(account_id, name)
            if patch.logpush is not None:
                script.logpush = patch.logpush
            if patch.tail_consumers is not None:
                script.tail_consumers = list(patch.tail_consumers)
            if patch.observability is not None:
                script.observability = dict(patch.observability)
            if patch.tags is not None:
                script.tags = list(patch.tags)
        return self.get_script_settings(account_id, name)

    # ---- seeding

    def seed_script(
        self,
        name: str,
        *,
        account_id: str = DEFAULT_ACCOUNT_ID,
        modules: Mapping[str, str | bytes] | None = None,
        main_module: str | None = None,
        vars: Mapping[str, str] | None = None,
        secrets: Mapping[str, str] | None = None,
        bindings: Sequence[Mapping[str, Any]] = (),
        compatibility_date: str = DEFAULT_COMPATIBILITY_DATE,
        compatibility_flags: Sequence[str] = (),
        message: str | None = None,
        tag: str | None = None,
        deployment_message: str | None = None,
    ) -> Version:
        """A script with one version deployed at 100 %, as a script PUT would leave it."""
        modules = modules or {"worker.js": DEMO_WORKER}
        main_module = main_module or next(iter(modules))
        all_bindings: list[Mapping[str, Any]] = [
            *({"type": "plain_text", "name": k, "text": v} for k, v in (vars or {}).items()),
            *({"type": "secret_text", "name": k, "text": v} for k, v in (secrets or {}).items()),
            *bindings,
        ]
        annotations: JsonDict = {}
        if message is not None:
            annotations["workers/message"] = message
        if tag is not None:
            annotations["workers/tag"] = tag
        metadata = bodies.UploadMetadata.model_validate(
            {
                "main_module": main_module,
                "compatibility_date": compatibility_date,
                "compatibility_flags": list(compatibility_flags),
                "bindings": all_bindings,
                "annotations": annotations or None,
            }
        )
        upload = Upload(
            metadata,
            tuple(Module(n, c.encode() if isinstance(c, str) else c) for n, c in modules.items()),
        )
        with self._shared.lock:
            self.put_script(account_id, name, upload)
            script = self.scripts[(account_id, name)]
            if deployment_message is not None:
                script.deployments[-1].annotations["workers/message"] = deployment_message
            return script.latest

    def seed_version(
        self,
        name: str,
        *,
        account_id: str = DEFAULT_ACCOUNT_ID,
        modules: Mapping[str, str | bytes] | None = None,
        vars: Mapping[str, str] | None = None,
        keep_secrets: bool = True,
        message: str | None = None,
        tag: str | None = None,
    ) -> Version:
        """An undeployed version of an existing script (what ``versions upload`` makes)."""
        with self._shared.lock:
            script = self._script(account_id, name)
            latest = script.latest
            source = modules or {n: m.content for n, m in latest.modules.items()}
            annotations: JsonDict = {}
            if message is not None:
                annotations["workers/message"] = message
            if tag is not None:
                annotations["workers/tag"] = tag
            metadata = bodies.UploadMetadata.model_validate(
                {
                    "main_module": latest.main_module
                    if latest.main_module in source
                    else next(iter(source)),
                    "compatibility_date": latest.compatibility_date,
                    "bindings": [
                        {"type": "plain_text", "name": k, "text": v}
                        for k, v in (vars or {}).items()
                    ],
                    "keep_bindings": ["secret_text"] if keep_secrets else [],
                    "annotations": annotations or None,
                }
            )
            upload = Upload(
                metadata,
                tuple(
                    Module(n, c.encode() if isinstance(c, str) else c) for n, c in source.items()
                ),
            )
            self.create_version(account_id, name, upload)
            return script.latest


# --- helpers of the rules above ----------------------------------------------------------------


def _kept_types(meta: bodies.UploadMetadata) -> Sequence[str]:
    """The binding types a new version takes over from the latest one.

    ``keep_bindings`` given: exactly those types. Not given: the secrets.
    Cloudflare documents keep_bindings ("binding types to keep from the
    previous upload") but not its default; this is the one rule that fits
    what clients rely on: ``wrangler deploy`` uploads a version with no
    keep_bindings and the Worker's secrets survive it, while ``wrangler
    versions secret delete`` drops a secret by sending ``["secret_key"]``.
    """
    if "keep_bindings" in meta.model_fields_set:
        return meta.keep_bindings
    return SECRET_TYPES


def _version_annotations(annotations: bodies.VersionAnnotations) -> JsonDict:
    result: JsonDict = {}
    if annotations.message is not None:
        result["workers/message"] = bodies.kept_message(annotations.message)
    if annotations.tag is not None:
        result["workers/tag"] = annotations.tag
    return result


def _binding_dict(binding: bodies.Binding) -> JsonDict:
    data = binding.model_dump(by_alias=True, exclude_none=True)
    if isinstance(binding, bodies.D1Binding):
        data["id"] = binding.id or binding.database_id
        data.pop("database_id", None)
        if not data["id"]:
            raise ApiError(400, Code.VALIDATION, f"d1 binding {binding.name!r} needs an id")
    return data


_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SCRIPT_NAME = re.compile(r"^[a-z0-9_][a-z0-9-_]*$")


# --- HTTP --------------------------------------------------------------------------------------

route = router("workers")
SCRIPT = "/accounts/{account_id}/workers/scripts/{script_name}"


def upload_of(request: Request) -> Upload:
    """The ``metadata`` part and the module parts of a script PUT or a version POST."""
    parts = parse_multipart(request.headers.get("content-type", ""), request.body)
    metadata_part = next((p for p in parts if p.name == "metadata"), None)
    if metadata_part is None:
        raise ApiError(400, Code.VALIDATION, "multipart upload without a 'metadata' part")
    try:
        raw = json.loads(metadata_part.content)
    except ValueError as error:
        raise ApiError(400, Code.VALIDATION, f"metadata is not valid JSON: {error}") from None
    metadata = validate(bodies.UploadMetadata, raw)
    modules = tuple(
        Module(
            name=p.filename or p.name,
            content=p.content,
            content_type=p.content_type or "application/octet-stream",
        )
        for p in parts
        if p is not metadata_part
    )
    return Upload(metadata, modules, source_of(request))


def source_of(request: Request) -> str:
    """Where a change came from, as versions and deployments show it."""
    agent = request.headers.get("user-agent", "").lower()
    return "wrangler" if agent.startswith("wrangler") else "api"


SERVICE = "/accounts/{account_id}/workers/services/{service_name}"


@route("GET", SERVICE)
def _get_service(workers: Workers, request: Request, params: dict[str, str]) -> Response:
    return envelope(workers.service(params["account_id"], params["service_name"]))


@route("DELETE", SERVICE)
def _delete_service(workers: Workers, request: Request, params: dict[str, str]) -> Response:
    """``wrangler delete``: the script and its versions go, like DELETE .../scripts/{name}."""
    workers.delete_script(params["account_id"], params["service_name"], force=request.flag("force"))
    return envelope(None)


@route("GET", SCRIPT + "/subdomain")
def _get_subdomain(workers: Workers, request: Request, params: dict[str, str]) -> Response:
    return envelope(workers.get_subdomain(params["account_id"], params["script_name"]))


@route("POST", SCRIPT + "/subdomain")
def _set_subdomain(workers: Workers, request: Request, params: dict[str, str]) -> Response:
    body = validate(bodies.SubdomainBody, json_body(request))
    return envelope(workers.set_subdomain(params["account_id"], params["script_name"], body))


@route("GET", SCRIPT + "/references")
def _references(workers: Workers, request: Request, params: dict[str, str]) -> Response:
    return envelope(workers.references(params["account_id"], params["script_name"]))


@route("GET", "/accounts/{account_id}/workers/tails/by-consumer/{script_name}")
def _tail_producers(workers: Workers, request: Request, params: dict[str, str]) -> Response:
    """No script names another as its tail consumer in the emulator."""
    workers.get_script(params["account_id"], params["script_name"])
    return envelope([])


@route("PUT", SCRIPT)
def _put_script(workers: Workers, request: Request, params: dict[str, str]) -> Response:
    upload = upload_of(request)
    return envelope(workers.put_script(params["account_id"], params["script_name"], upload))


@route("GET", SCRIPT)
def _download_script(workers: Workers, request: Request, params: dict[str, str]) -> Response:
    """The live main module, raw (not JSON), as Cloudflare's "Download Worker" returns it."""
    version = workers.content(params["account_id"], params["script_name"], None)
    main = version.modules[version.main_module]
    return Response(200, main.content, {"Content-Type": main.content_type})


@route("DELETE", SCRIPT)
def _delete_script(workers: Workers, request: Request, params: dict[str, str]) -> Response:
    workers.delete_script(params["account_id"], params["script_name"], force=request.flag("force"))
    return envelope(None)


@route("GET", SCRIPT + "/content/v2")
def _content(workers: Workers, request: Request, params: dict[str, str]) -> Response:
    version = workers.content(params["account_id"], params["script_name"], request.param("version"))
    boundary = f"emulator-{version.id}"
    parts = [Part(m.name, m.name, m.content_type, m.content) for m in version.modules.values()]
    return Response(
        200,
        encode_multipart(parts, boundary),
        {
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "CF-Entrypoint": version.main_module,
        },
    )


@route("POST", SCRIPT + "/versions")
def _create_version(workers: Workers, request: Request, params: dict[str, str]) -> Response:
    upload = upload_of(request)
    strict = request.param("bindings_inherit") == "strict"
    result = workers.create_version(
        params["account_id"], params["script_name"], upload, strict_inherit=strict
    )
    return envelope(result)


@route("GET", SCRIPT + "/versions")
def _list_versions(workers: Workers, request: Request, params: dict[str, str]) -> Response:
    page = workers.list_versions(
        params["account_id"],
        params["script_name"],
        page=request.int_param("page", 1),
        per_page=request.int_param("per_page", 20),
        deployable=request.flag("deployable"),
    )
    return envelope({"items": page.items}, result_info=page.result_info)


@route("GET", SCRIPT + "/versions/{version_id}")
def _get_version(workers: Workers, request: Request, params: dict[str, str]) -> Response:
    return envelope(
        workers.get_version(params["account_id"], params["script_name"], params["version_id"])
    )


@route("POST", SCRIPT + "/deployments")
def _create_deployment(workers: Workers, request: Request, params: dict[str, str]) -> Response:
    body = validate(bodies.DeploymentCreate, json_body(request))
    result = workers.create_deployment(
        params["account_id"],
        params["script_name"],
        body,
        force=request.flag("force"),
        source=source_of(request),
    )
    return envelope(result)


@route("GET", SCRIPT + "/deployments")
def _list_deployments(workers: Workers, request: Request, params: dict[str, str]) -> Response:
    deployments = workers.list_deployments(params["account_id"], params["script_name"])
    return envelope({"deployments": deployments})


@route("PUT", SCRIPT + "/secrets")
def _put_secret(workers: Workers, request: Request, params: dict[str, str]) -> Response:
    body = validate(bodies.SecretPut, json_body(request))
    return envelope(workers.put_secret(params["account_id"], params["script_name"], body))


@route("GET", SCRIPT + "/secrets")
def _list_secrets(workers: Workers, request: Request, params: dict[str, str]) -> Response:
    return envelope(workers.list_secrets(params["account_id"], params["script_name"]))


@route("GET", SCRIPT + "/secrets/{secret_name}")
def _get_secret(workers: Workers, request: Request, params: dict[str, str]) -> Response:
    return envelope(
        workers.get_secret(params["account_id"], params["script_name"], params["secret_name"])
    )


@route("DELETE", SCRIPT + "/secrets/{secret_name}")
def _delete_secret(workers: Workers, request: Request, params: dict[str, str]) -> Response:
    workers.delete_secret(params["account_id"], params["script_name"], params["secret_name"])
    return envelope(None)


@route("GET", SCRIPT + "/settings")
def _get_settings(workers: Workers, request: Request, params: dict[str, str]) -> Response:
    return envelope(workers.get_settings(params["account_id"], params["script_name"]))


@route("PATCH", SCRIPT + "/settings")
def _patch_settings(workers: Workers, request: Request, params: dict[str, str]) -> Response:
    parts = parse_multipart(request.headers.get("content-type", ""), request.body)
    part = next((p for p in parts if p.name == "settings"), None)
    if part is None:
        raise ApiError(400, Code.VALIDATION, "multipart body without a 'settings' part")
    try:
        raw = json.loads(part.content)
    except ValueError as error:
        raise ApiError(400, Code.VALIDATION, f"settings is not valid JSON: {error}") from None
    patch = validate(bodies.SettingsPatch, raw)
    return envelope(workers.patch_settings(params["account_id"], params["script_name"], patch))


@route("GET", SCRIPT + "/script-settings")
def _get_script_settings(workers: Workers, request: Request, params: dict[str, str]) -> Response:
    return envelope(workers.get_script_settings(params["account_id"], params["script_name"]))


@route("PATCH", SCRIPT + "/script-settings")
def _patch_script_settings(workers: Workers, request: Request, params: dict[str, str]) -> Response:
    patch = validate(bodies.ScriptSettingsPatch, json_body(request))
    return envelope(
        workers.patch_script_settings(params["account_id"], params["script_name"], patch)
    )
