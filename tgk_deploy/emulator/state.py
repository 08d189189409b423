"""The emulated Cloudflare account: its state and the API's rules, without HTTP.

Everything Cloudflare would refuse is refused here with Cloudflare's error
code (``ApiError``); ``routes.py`` only turns requests into calls and results
into the envelope. All ids come from one seeded RNG and all timestamps from an
injected clock, so a rehearsal with the same seed and clock is repeatable.

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
import random
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tgk_deploy.emulator import bodies

Clock = Callable[[], datetime]
JsonDict = dict[str, Any]

DEFAULT_ACCOUNT_ID = "023e105f4ecef8ad9ca31a8372d0c353"
DEFAULT_ZONE_ID = "9a7806061c88ada191ed06f989cc3dac"
DEFAULT_AUTHOR = "emulator@tgk-deploy.invalid"
DEFAULT_COMPATIBILITY_DATE = "2024-09-23"
DEPLOYABLE_VERSIONS = 100
VERSIONS_PER_PAGE = 20
DEFAULT_EXPORT_POLLS = 2


class Code:
    """Cloudflare error codes the emulator answers with.

    Documented ones: 10000, 10001, 10007, 10021, 10056 (Workers error table and
    the OpenAPI x-cfLinkErrors), 10214/10215/10220 (wrangler handles them by
    number), 7003 (the envelope's "No route for the URI"), 7404 (D1 not found),
    10006/10008 (R2 no such bucket / bucket not empty). The validation codes of
    D1 are not documented, nor is email routing's not-found: the emulator's
    choice is marked. 2007 "Invalid Input: ..." is what Email Routing answered
    to a drop action with values (cloudflare-docs issue 20017).
    """

    AUTH = 10000
    CONTENT_TYPE = 10001
    NOT_FOUND = 10007
    VALIDATION = 10021
    BINDING_NOT_FOUND = 10056
    SETTINGS_LATEST_NOT_DEPLOYED = 10214
    SECRET_LATEST_NOT_DEPLOYED = 10215
    SECRETS_CHANGED = 10220
    NO_ROUTE = 7003
    METHOD_NOT_ALLOWED = 10405
    EMAIL_VALIDATION = 2007
    EMAIL_NOT_FOUND = 2020  # emulator's choice
    D1_NOT_FOUND = 7404
    D1_VALIDATION = 7400  # emulator's choice
    R2_NO_SUCH_BUCKET = 10006
    R2_NOT_EMPTY = 10008


class ApiError(Exception):
    """A refusal as Cloudflare would send it: HTTP status, error code, message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def _not_found_script(name: str) -> ApiError:
    return ApiError(404, Code.NOT_FOUND, f"workers.api.error.script_not_found: {name}")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class SimulatedClock:
    """A clock that moves only when told to: rehearsals run weeks of bake in seconds."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = moment


def wall_clock() -> datetime:
    return datetime.now(UTC)


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
                "created_on": _iso(self.created_on),
                "modified_on": _iso(self.created_on),
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
            "created_on": _iso(self.created_on),
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
            "created_on": _iso(self.created_on),
            "modified_on": _iso(self.modified_on),
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


@dataclass
class EmailRule:
    id: str
    name: str
    enabled: bool
    matchers: list[JsonDict]
    actions: list[JsonDict]
    priority: float = 0

    def to_api(self) -> JsonDict:
        return {
            "id": self.id,
            "tag": self.id,
            "name": self.name,
            "enabled": self.enabled,
            "matchers": [dict(m) for m in self.matchers],
            "actions": [dict(a) for a in self.actions],
            "priority": self.priority,
        }


@dataclass
class ExportTask:
    bookmark: str
    polls_left: int
    filename: str
    token: str


@dataclass
class D1Database:
    account_id: str
    uuid: str
    name: str
    created_at: datetime
    sql: str
    exports: dict[str, ExportTask] = field(default_factory=dict)

    def to_api(self) -> JsonDict:
        return {
            "uuid": self.uuid,
            "name": self.name,
            "created_at": _iso(self.created_at),
            "version": "production",
            "num_tables": self.sql.upper().count("CREATE TABLE"),
            "file_size": len(self.sql.encode()),
        }


@dataclass
class R2Bucket:
    account_id: str
    name: str
    creation_date: datetime
    objects: dict[str, bytes] = field(default_factory=dict)

    def to_api(self) -> JsonDict:
        return {
            "name": self.name,
            "creation_date": _iso(self.creation_date),
            "location": "enam",
            "storage_class": "Standard",
        }


@dataclass(frozen=True)
class Page:
    items: list[JsonDict]
    page: int
    per_page: int
    total_count: int

    @property
    def result_info(self) -> JsonDict:
        return {
            "page": self.page,
            "per_page": self.per_page,
            "count": len(self.items),
            "total_count": self.total_count,
            "total_pages": max(1, -(-self.total_count // self.per_page)),
        }


def _paginate(items: Sequence[JsonDict], page: int, per_page: int) -> Page:
    start = (page - 1) * per_page
    return Page(list(items[start : start + per_page]), page, per_page, len(items))


DEMO_WORKER = b"""export default {
  async email(message, env, ctx) {
    await env.TELEGRAM.send(message);
  },
};
"""
DEMO_SQL = """PRAGMA defer_foreign_keys=TRUE;
CREATE TABLE emails (id TEXT PRIMARY KEY, received_at TEXT NOT NULL, subject TEXT);
INSERT INTO "emails" VALUES('e1','2026-01-01T00:00:00Z','hello');
"""


# --- the account -------------------------------------------------------------------------------


class EmulatorState:
    """One emulated Cloudflare: scripts, email routing, D1 and R2. Thread-safe."""

    def __init__(
        self,
        *,
        clock: Clock = wall_clock,
        seed: int = 0,
        tokens: Iterable[str] | None = None,
        author_email: str = DEFAULT_AUTHOR,
        export_polls: int = DEFAULT_EXPORT_POLLS,
    ) -> None:
        self.clock = clock
        self.seed = seed
        self.author_email = author_email
        self.export_polls = export_polls
        self.accepted_tokens: frozenset[str] | None = frozenset(tokens) if tokens else None
        self.public_origin = "http://127.0.0.1"  # the server sets its real origin
        self._lock = threading.RLock()
        self.reset()

    # ---- lifecycle and ids

    def reset(self) -> None:
        """Forget everything (moto's /moto-api/reset); tokens and clock are kept."""
        with self._lock:
            self._rng = random.Random(self.seed)
            self.scripts: dict[tuple[str, str], Script] = {}
            self.email_rules: dict[str, dict[str, EmailRule]] = {}
            self.catch_alls: dict[str, EmailRule] = {}
            self.databases: dict[tuple[str, str], D1Database] = {}
            self.buckets: dict[tuple[str, str], R2Bucket] = {}
            self.dumps: dict[str, str] = {}

    def set_tokens(self, tokens: Iterable[str] | None) -> None:
        """Accept only these bearer tokens; ``None``: any non-empty token."""
        with self._lock:
            self.accepted_tokens = frozenset(tokens) if tokens is not None else None

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _hex32(self) -> str:
        return f"{self._rng.getrandbits(128):032x}"

    # ---- auth

    def verify_token(self, authorization: str | None) -> JsonDict:
        token = self.authenticate(authorization)
        return {"id": hashlib.md5(token.encode()).hexdigest(), "status": "active"}

    def authenticate(self, authorization: str | None) -> str:
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        accepted = self.accepted_tokens
        if (
            scheme.lower() != "bearer"
            or not token
            or (accepted is not None and token not in accepted)
        ):
            raise ApiError(401, Code.AUTH, "Authentication error")
        return token

    # ---- scripts

    def _script(self, account_id: str, name: str) -> Script:
        script = self.scripts.get((account_id, name))
        if script is None:
            raise _not_found_script(name)
        return script

    def get_script(self, account_id: str, name: str) -> Script:
        with self._lock:
            return self._script(account_id, name)

    def put_script(self, account_id: str, name: str, upload: Upload) -> JsonDict:
        """Upload and deploy at 100 % at once, whatever split was live (trap 1)."""
        with self._lock:
            script = self.scripts.get((account_id, name))
            now = self.clock()
            created = script is None
            if script is None:
                script = Script(account_id, name, created_on=now, modified_on=now)
            version = self._build_version(script, upload, strict_inherit=False)
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
            self._deploy(script, [(version.id, 100.0)], None, triggered_by="upload")
            return script.to_api()

    def delete_script(self, account_id: str, name: str, *, force: bool = False) -> None:
        del force  # nothing binds to scripts in the emulator, so force changes nothing
        with self._lock:
            self._script(account_id, name)
            del self.scripts[(account_id, name)]

    def content(self, account_id: str, name: str, version_id: str | None) -> Version:
        """The version whose modules GET content/v2 returns (default: the live one)."""
        with self._lock:
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
        with self._lock:
            script = self._script(account_id, name)
            version = self._build_version(script, upload, strict_inherit=strict_inherit)
            version.annotations["workers/triggered_by"] = "version_upload"
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
        with self._lock:
            script = self._script(account_id, name)
            newest_first = [v.short() for v in reversed(script.versions)]
            if deployable:
                items = newest_first[:DEPLOYABLE_VERSIONS]
                return Page(items, 1, len(items) or 1, len(items))
            if page < 1 or not 1 <= per_page <= 100:
                raise ApiError(400, Code.VALIDATION, "page must be >= 1, per_page 1..100")
            return _paginate(newest_first, page, per_page)

    def get_version(self, account_id: str, name: str, version_id: str) -> JsonDict:
        with self._lock:
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
        bindings = self._keep(bindings, latest, meta.keep_bindings)
        annotations: JsonDict = {}
        if meta.annotations is not None:
            annotations = _version_annotations(meta.annotations)
        return Version(
            id=self._uuid(),
            number=(latest.number + 1) if latest else 1,
            created_on=self.clock(),
            main_module=meta.main_module,
            modules=modules,
            bindings=bindings,
            compatibility_date=meta.compatibility_date or DEFAULT_COMPATIBILITY_DATE,
            compatibility_flags=list(meta.compatibility_flags),
            annotations=annotations,
            usage_model="standard",
            author_email=self.author_email,
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
        self, account_id: str, name: str, body: bodies.DeploymentCreate, *, force: bool = False
    ) -> JsonDict:
        with self._lock:
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
            deployment = self._deploy(script, shares, message, triggered_by="deployment")
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
        with self._lock:
            script = self._script(account_id, name)
            return [d.to_api() for d in reversed(script.deployments)]

    def _deploy(
        self,
        script: Script,
        shares: list[tuple[str, float]],
        message: str | None,
        *,
        triggered_by: str,
    ) -> Deployment:
        annotations: JsonDict = {"workers/triggered_by": triggered_by}
        if message is not None:
            annotations["workers/message"] = message
        deployment = Deployment(
            id=self._uuid(),
            created_on=self.clock(),
            versions=shares,
            annotations=annotations,
            author_email=self.author_email,
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
            id=self._uuid(),
            number=latest.number + 1,
            created_on=self.clock(),
            main_module=latest.main_module,
            modules=dict(latest.modules),
            bindings=bindings,
            compatibility_date=compatibility_date or latest.compatibility_date,
            compatibility_flags=list(
                latest.compatibility_flags if compatibility_flags is None else compatibility_flags
            ),
            annotations={**(annotations or {}), "workers/triggered_by": triggered_by},
            usage_model=latest.usage_model,
            author_email=self.author_email,
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
        with self._lock:
            script = self._script(account_id, name)
            self._require_latest_live(script, Code.SECRET_LATEST_NOT_DEPLOYED, "Secret edit")
            bindings = [dict(b) for b in script.latest.bindings if b["name"] != body.name]
            bindings.append({"type": "secret_text", "name": body.name, "text": body.text})
            version = self._copy_latest(script, bindings=bindings, triggered_by="secret")
            script.secret_changes.append(version.number)
            return {"name": body.name, "type": "secret_text"}

    def delete_secret(self, account_id: str, name: str, secret_name: str) -> None:
        with self._lock:
            script = self._script(account_id, name)
            if secret_name not in script.latest.secrets:
                raise ApiError(404, Code.BINDING_NOT_FOUND, f"secret {secret_name!r} not found")
            self._require_latest_live(script, Code.SECRET_LATEST_NOT_DEPLOYED, "Secret edit")
            bindings = [dict(b) for b in script.latest.bindings if b["name"] != secret_name]
            version = self._copy_latest(script, bindings=bindings, triggered_by="secret")
            script.secret_changes.append(version.number)

    def list_secrets(self, account_id: str, name: str) -> list[JsonDict]:
        with self._lock:
            script = self._script(account_id, name)
            return [{"name": n, "type": "secret_text"} for n in sorted(script.latest.secrets)]

    def get_secret(self, account_id: str, name: str, secret_name: str) -> JsonDict:
        with self._lock:
            script = self._script(account_id, name)
            if secret_name not in script.latest.secrets:
                raise ApiError(404, Code.BINDING_NOT_FOUND, f"secret {secret_name!r} not found")
            return {"name": secret_name, "type": "secret_text"}

    def get_settings(self, account_id: str, name: str) -> JsonDict:
        with self._lock:
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
        with self._lock:
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
        with self._lock:
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
        with self._lock:
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

    # ---- email routing

    def _rules(self, zone_id: str) -> dict[str, EmailRule]:
        return self.email_rules.setdefault(zone_id, {})

    def list_rules(
        self, zone_id: str, *, page: int = 1, per_page: int = 20, enabled: bool | None = None
    ) -> Page:
        if page < 1 or not 5 <= per_page <= 50:
            raise ApiError(400, Code.EMAIL_VALIDATION, "page must be >= 1 and per_page 5..50")
        with self._lock:
            rules = [r for r in self._rules(zone_id).values() if enabled in (None, r.enabled)]
            rules.sort(key=lambda r: r.priority)
            return _paginate([r.to_api() for r in rules], page, per_page)

    def create_rule(self, zone_id: str, body: bodies.RuleBody) -> JsonDict:
        with self._lock:
            _check_rule(body.matchers, body.actions, catch_all=False)
            rule = EmailRule(
                id=self._hex32(),
                name=body.name,
                enabled=body.enabled,
                matchers=[_matcher_dict(m) for m in body.matchers],
                actions=[_action_dict(a) for a in body.actions],
                priority=body.priority,
            )
            self._rules(zone_id)[rule.id] = rule
            return rule.to_api()

    def _rule(self, zone_id: str, rule_id: str) -> EmailRule:
        rule = self._rules(zone_id).get(rule_id)
        if rule is None:
            raise ApiError(404, Code.EMAIL_NOT_FOUND, f"routing rule {rule_id} not found")
        return rule

    def get_rule(self, zone_id: str, rule_id: str) -> JsonDict:
        with self._lock:
            return self._rule(zone_id, rule_id).to_api()

    def update_rule(self, zone_id: str, rule_id: str, body: bodies.RuleBody) -> JsonDict:
        """PUT replaces the whole rule: what is not sent takes its default."""
        with self._lock:
            rule = self._rule(zone_id, rule_id)
            _check_rule(body.matchers, body.actions, catch_all=False)
            rule.name = body.name
            rule.enabled = body.enabled
            rule.priority = body.priority
            rule.matchers = [_matcher_dict(m) for m in body.matchers]
            rule.actions = [_action_dict(a) for a in body.actions]
            return rule.to_api()

    def delete_rule(self, zone_id: str, rule_id: str) -> JsonDict:
        with self._lock:
            rule = self._rule(zone_id, rule_id)
            del self._rules(zone_id)[rule_id]
            return rule.to_api()

    def _catch_all(self, zone_id: str) -> EmailRule:
        if zone_id not in self.catch_alls:
            self.catch_alls[zone_id] = EmailRule(
                id=self._hex32(),
                name="",
                enabled=False,
                matchers=[{"type": "all"}],
                actions=[{"type": "drop"}],
            )
        return self.catch_alls[zone_id]

    def get_catch_all(self, zone_id: str) -> JsonDict:
        with self._lock:
            return _catch_all_api(self._catch_all(zone_id))

    def update_catch_all(self, zone_id: str, body: bodies.CatchAllBody) -> JsonDict:
        with self._lock:
            _check_rule(body.matchers, body.actions, catch_all=True)
            rule = self._catch_all(zone_id)
            rule.name = body.name
            rule.enabled = body.enabled
            rule.matchers = [_matcher_dict(m) for m in body.matchers]
            rule.actions = [_action_dict(a) for a in body.actions]
            return _catch_all_api(rule)

    # ---- D1

    def _database(self, account_id: str, database_id: str) -> D1Database:
        database = self.databases.get((account_id, database_id))
        if database is None:
            raise ApiError(404, Code.D1_NOT_FOUND, f"The database {database_id} could not be found")
        return database

    def get_database(self, account_id: str, database_id: str) -> JsonDict:
        with self._lock:
            return self._database(account_id, database_id).to_api()

    def delete_database(self, account_id: str, database_id: str) -> None:
        with self._lock:
            self._database(account_id, database_id)
            del self.databases[(account_id, database_id)]

    def export_database(
        self, account_id: str, database_id: str, body: bodies.D1ExportBody
    ) -> tuple[int, JsonDict]:
        """(HTTP status, result): 202 while active, 200 once complete."""
        with self._lock:
            database = self._database(account_id, database_id)
            if body.current_bookmark is None:
                bookmark = (
                    f"{self._rng.getrandbits(32):08x}-00000001-00004e{len(database.exports):02x}"
                )
                task = ExportTask(
                    bookmark=bookmark,
                    polls_left=self.export_polls,
                    filename=f"{database.name}-{bookmark}.sql",
                    token=self._hex32(),
                )
                database.exports[bookmark] = task
                return 202, _export_active(task, "Generating SQL export")
            task = database.exports.get(body.current_bookmark)
            if task is None:
                raise ApiError(
                    400,
                    Code.D1_VALIDATION,
                    f"no export running at bookmark {body.current_bookmark}",
                )
            task.polls_left -= 1
            if task.polls_left > 0:
                return 202, _export_active(task, "Still exporting")
            self.dumps[task.token] = database.sql
            return 200, {
                "type": "export",
                "success": True,
                "at_bookmark": task.bookmark,
                "status": "complete",
                "messages": ["Export complete"],
                "result": {
                    "filename": task.filename,
                    "signed_url": f"{self.public_origin}/__emulator/d1-exports/{task.token}",
                },
            }

    def dump(self, token: str) -> str | None:
        with self._lock:
            return self.dumps.get(token)

    # ---- R2

    def _bucket(self, account_id: str, bucket: str) -> R2Bucket:
        found = self.buckets.get((account_id, bucket))
        if found is None:
            raise ApiError(404, Code.R2_NO_SUCH_BUCKET, "The specified bucket does not exist.")
        return found

    def get_bucket(self, account_id: str, bucket: str) -> JsonDict:
        with self._lock:
            return self._bucket(account_id, bucket).to_api()

    def delete_bucket(self, account_id: str, bucket: str) -> None:
        with self._lock:
            if self._bucket(account_id, bucket).objects:
                raise ApiError(
                    409, Code.R2_NOT_EMPTY, "The bucket you tried to delete is not empty."
                )
            del self.buckets[(account_id, bucket)]

    # ---- seeding (the control plane's verbs)

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
        with self._lock:
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
        with self._lock:
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

    def seed_email_rule(
        self,
        name: str,
        *,
        zone_id: str = DEFAULT_ZONE_ID,
        enabled: bool = True,
        to: str = "alerts@tgk.invalid",
        worker: str | None = None,
        forward_to: str | None = None,
        priority: float = 0,
    ) -> EmailRule:
        """A literal ``to`` rule sending to a Worker, or forwarding (the legacy router)."""
        if worker is not None:
            action = {"type": "worker", "value": [worker]}
        else:
            action = {"type": "forward", "value": [forward_to or "legacy-router@tgk.invalid"]}
        body = bodies.RuleBody.model_validate(
            {
                "name": name,
                "enabled": enabled,
                "priority": priority,
                "matchers": [{"type": "literal", "field": "to", "value": to}],
                "actions": [action],
            }
        )
        with self._lock:
            rule_id = self.create_rule(zone_id, body)["id"]
            return self._rules(zone_id)[rule_id]

    def seed_d1(
        self,
        name: str,
        *,
        account_id: str = DEFAULT_ACCOUNT_ID,
        database_id: str | None = None,
        sql: str = DEMO_SQL,
    ) -> D1Database:
        with self._lock:
            database = D1Database(account_id, database_id or self._uuid(), name, self.clock(), sql)
            self.databases[(account_id, database.uuid)] = database
            return database

    def seed_r2(
        self,
        name: str,
        *,
        account_id: str = DEFAULT_ACCOUNT_ID,
        objects: Mapping[str, bytes] | None = None,
    ) -> R2Bucket:
        with self._lock:
            bucket = R2Bucket(account_id, name, self.clock(), dict(objects or {}))
            self.buckets[(account_id, name)] = bucket
            return bucket

    def seed_demo(
        self, *, account_id: str = DEFAULT_ACCOUNT_ID, zone_id: str = DEFAULT_ZONE_ID
    ) -> JsonDict:
        """The world of tgk-deploy.yaml before phase 1: both scripts, legacy routing on."""
        with self._lock:
            ids: JsonDict = {"account_id": account_id, "zone_id": zone_id}
            for script in ("tgk-email-orchestrator", "tgk-email-orchestrator-staging"):
                version = self.seed_script(
                    script,
                    account_id=account_id,
                    vars={"AI_ANALYSIS": "false", "DYNAMIC_ROUTING": "false"},
                    secrets={"TELEGRAM_BOT_TOKEN": "emulated-telegram-token"},
                    message="initial upload",
                )
                ids[script] = version.id
            worker = self.seed_email_rule(
                "tgk-email-orchestrator",
                zone_id=zone_id,
                enabled=False,
                worker="tgk-email-orchestrator",
            )
            legacy = self.seed_email_rule("legacy-email-router", zone_id=zone_id, enabled=True)
            database = self.seed_d1("tgk-email-db", account_id=account_id)
            self.seed_r2("tgk-email-attachments", account_id=account_id)
            ids.update(
                worker_rule=worker.id,
                legacy_rule=legacy.id,
                d1_database_id=database.uuid,
                r2_bucket="tgk-email-attachments",
            )
            return ids


# --- helpers of the rules above ----------------------------------------------------------------


def _version_annotations(annotations: bodies.VersionAnnotations) -> JsonDict:
    result: JsonDict = {}
    if annotations.message is not None:
        result["workers/message"] = annotations.message
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


def _matcher_dict(matcher: bodies.RuleMatcher) -> JsonDict:
    return matcher.model_dump(exclude_none=True)


def _action_dict(action: bodies.RuleAction) -> JsonDict:
    data = action.model_dump(exclude_none=True)
    if action.type == "drop":
        data.pop("value", None)
    return data


def _check_rule(
    matchers: Sequence[bodies.RuleMatcher], actions: Sequence[bodies.RuleAction], *, catch_all: bool
) -> None:
    """Email routing's own rules on matchers and actions (beyond the JSON shape)."""

    def refuse(message: str) -> ApiError:
        return ApiError(400, Code.EMAIL_VALIDATION, f"Invalid Input: {message}")

    for matcher in matchers:
        if catch_all:
            if matcher.type != "all" or matcher.field or matcher.value:
                raise refuse('a catch-all rule has exactly one matcher: {"type": "all"}')
        elif matcher.type != "literal":
            raise refuse("matcher type 'all' is only valid on the catch-all rule")
        elif matcher.field != "to" or not matcher.value or not _ADDRESS.match(matcher.value):
            raise refuse("a literal matcher needs field 'to' and an email address as value")
    if catch_all and len(matchers) != 1:
        raise refuse("a catch-all rule has exactly one matcher")
    if len(actions) != 1:
        raise refuse("a routing rule has exactly one action")
    for action in actions:
        values = action.value or []
        if action.type == "drop":
            if values:
                raise refuse("actions: (0: (value: drop action cannot have values.).)")
        elif not values:
            raise refuse(f"a {action.type} action needs a value")
        elif action.type == "worker" and not all(_SCRIPT_NAME.match(v) for v in values):
            raise refuse("a worker action's value is a Worker script name")
        elif action.type == "forward" and not all(_ADDRESS.match(v) for v in values):
            raise refuse("a forward action's value is a list of email addresses")


def _catch_all_api(rule: EmailRule) -> JsonDict:
    data = rule.to_api()
    data.pop("priority")
    return data


def _export_active(task: ExportTask, message: str) -> JsonDict:
    return {
        "type": "export",
        "success": True,
        "at_bookmark": task.bookmark,
        "status": "active",
        "messages": [message],
    }
