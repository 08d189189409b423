"""The Worker bundle: ``wrangler/wrangler.toml`` and its modules, as one upload.

tgk-deploy uploads the Worker without Node.js or wrangler: it reads
wrangler.toml with ``tomllib``, applies one environment the way wrangler does,
and collects the ES modules as they are (no build step). The result is a
frozen ``Bundle``: script name, main module, modules, compatibility settings,
bindings and a ``content_hash`` that changes exactly when the upload would.

Environments follow wrangler's rules:

- ``production`` is the top level (or ``[env.production]`` when declared);
- inheritable keys (``main``, ``compatibility_date``, ``compatibility_flags``,
  ``routes``, ``base_dir``, ``rules`` ...) fall back to the top level;
- ``name`` falls back to ``<top name>-<env>``;
- bindings (``vars``, ``version_metadata``, ``kv_namespaces``, ``d1_databases``,
  ``r2_buckets``, ``services``) are never inherited: an environment has only
  the ones it declares.

Every problem is a ``SpecError`` naming the file, the line and the key.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import tomllib
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    computed_field,
    model_serializer,
)

from tgk_deploy.errors import SpecError, SpecProblem

WRANGLER_FILE = "wrangler.toml"
MODULE_CONTENT_TYPE = "application/javascript+module"
PRODUCTION = "production"

INHERITABLE = (
    "main",
    "compatibility_date",
    "compatibility_flags",
    "base_dir",
    "rules",
    "find_additional_modules",
    "no_bundle",
    "routes",
    "route",
    "workers_dev",
)
BINDING_KEYS = (
    "vars",
    "version_metadata",
    "kv_namespaces",
    "d1_databases",
    "r2_buckets",
    "services",
)
UNSUPPORTED_BINDING_KEYS = (
    "durable_objects",
    "queues",
    "analytics_engine_datasets",
    "vectorize",
    "hyperdrive",
    "ai",
    "browser",
    "send_email",
    "dispatch_namespaces",
    "mtls_certificates",
    "tail_consumers",
    "define",
    "build",
)
DEFAULT_MODULE_GLOBS = ("**/*.js", "**/*.mjs")
SCRIPT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
BINDING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SECRET_LOOKING = re.compile(r"(_TOKEN|_SECRET|_API_KEY|_PASSWORD)$")
RELATIVE_IMPORT = re.compile(r"""(?:\bfrom\s*|\bimport\s*\(?\s*)["'](\.{1,2}/[^"']+)["']""")


class Module(BaseModel):
    """One ES module part of the upload; its bytes are never printed or dumped."""

    model_config = ConfigDict(frozen=True)

    name: str
    content: bytes = Field(exclude=True, repr=False)
    content_type: str = MODULE_CONTENT_TYPE

    @computed_field  # type: ignore[prop-decorator]
    @property
    def size(self) -> int:
        return len(self.content)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


class Binding(BaseModel):
    """A binding exactly as the upload metadata carries it (Cloudflare's field names)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal[
        "plain_text", "json", "version_metadata", "kv_namespace", "d1", "r2_bucket", "service"
    ]
    name: str
    text: str | None = None
    json_value: Any = Field(default=None, alias="json")
    namespace_id: str | None = None
    id: str | None = None
    bucket_name: str | None = None
    service: str | None = None
    environment: str | None = None

    @model_serializer(mode="wrap")
    def _without_nones(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Only the fields this binding type has, as the API expects them."""
        return {k: v for k, v in handler(self).items() if v is not None}

    def to_metadata(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True)


class Bundle(BaseModel):
    """Everything one version upload sends, for one environment."""

    model_config = ConfigDict(frozen=True)

    environment: str
    script_name: str
    main_module: str
    compatibility_date: str
    compatibility_flags: tuple[str, ...] = ()
    modules: tuple[Module, ...]
    bindings: tuple[Binding, ...] = ()
    routes: tuple[str, ...] = ()
    source: str = Field(description="the wrangler.toml this was read from")

    def metadata(self) -> dict[str, Any]:
        """The multipart ``metadata`` part (without annotations, which the caller adds)."""
        return {
            "main_module": self.main_module,
            "compatibility_date": self.compatibility_date,
            "compatibility_flags": list(self.compatibility_flags),
            "bindings": [b.to_metadata() for b in self.bindings],
        }

    @computed_field  # type: ignore[prop-decorator]
    @property
    def content_hash(self) -> str:
        """sha256 over the metadata and every module's name, type and bytes; stable across runs."""
        digest = hashlib.sha256()
        digest.update(json.dumps(self.metadata(), sort_keys=True, separators=(",", ":")).encode())
        for module in sorted(self.modules, key=lambda m: m.name):
            digest.update(f"\0{module.name}\0{module.content_type}\0".encode())
            digest.update(module.content)
        return digest.hexdigest()

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_size(self) -> int:
        return sum(m.size for m in self.modules)

    def with_vars(self, overrides: dict[str, str]) -> Bundle:
        """The same bundle with some plain_text vars set (a phase step's ``vars:``)."""
        bindings = [
            b
            for b in self.bindings
            if not (b.type in ("plain_text", "json") and b.name in overrides)
        ]
        bindings += [
            Binding(type="plain_text", name=k, text=v) for k, v in sorted(overrides.items())
        ]
        return self.model_copy(update={"bindings": tuple(sorted(bindings, key=_binding_order))})

    def var(self, name: str) -> str | None:
        for binding in self.bindings:
            if binding.name == name and binding.type == "plain_text":
                return binding.text
        return None


def _binding_order(binding: Binding) -> tuple[str, str]:
    return (binding.type, binding.name)


# --------------------------------------------------------------------------- reading


class _Problems:
    """Collects problems in one wrangler.toml, each located at the line of its key."""

    def __init__(self, file: Path, text: str) -> None:
        self.file = file
        self.lines = text.splitlines()
        self.problems: list[SpecProblem] = []

    def add(self, table: tuple[str, ...], key: str, message: str) -> None:
        line = self._line_of(table, key)
        field = ".".join((*table, key)) if key else ".".join(table)
        self.problems.append(SpecProblem(str(self.file), line, 1, field, message))

    def _line_of(self, table: tuple[str, ...], key: str) -> int:
        """Best effort: the line of ``key =`` under the ``[table]`` header, else the header."""
        header = re.compile(
            r"^\s*\[\[?\s*" + r"\s*\.\s*".join(map(re.escape, table)) + r"(\s*\.[^\]]+)?\s*\]\]?"
        )
        in_table = not table
        header_line = 1
        for number, line in enumerate(self.lines, 1):
            stripped = line.strip()
            if stripped.startswith("["):
                in_table = bool(table) and bool(header.match(line))
                if in_table and header_line == 1:
                    header_line = number
                continue
            if in_table and key and re.match(rf"^\s*{re.escape(key)}\s*=", line):
                return number
        return header_line

    def raise_if_any(self) -> None:
        if self.problems:
            raise SpecError(self.problems)


def _load_toml(file: Path) -> tuple[dict[str, Any], str]:
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([SpecProblem(str(file), 1, 1, "", "no wrangler.toml here")]) from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as error:
        found = re.search(r"line (\d+), column (\d+)", str(error))
        line, column = (int(found[1]), int(found[2])) if found else (1, 1)
        raise SpecError([SpecProblem(str(file), line, column, "", f"not TOML: {error}")]) from None


def _environment_config(
    top: dict[str, Any], environment: str, problems: _Problems
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The effective settings of ``environment`` and the TOML table its bindings come from."""
    envs = top.get("env", {})
    if environment == PRODUCTION and PRODUCTION not in envs:
        return {k: v for k, v in top.items() if k != "env"}, ()
    if environment not in envs:
        known = ", ".join([PRODUCTION, *sorted(e for e in envs if e != PRODUCTION)])
        problems.add(("env",), environment, f"no [env.{environment}] table; known: {known}")
        problems.raise_if_any()
    own = envs[environment]
    merged = {key: top[key] for key in INHERITABLE if key in top}
    merged.update(own)
    if "name" not in own and "name" in top:
        merged["name"] = f"{top['name']}-{environment}"
    return merged, ("env", environment)


def _str(
    config: dict[str, Any], key: str, table: tuple[str, ...], problems: _Problems
) -> str | None:
    value = config.get(key)
    if value is None:
        problems.add(table, key, "required")
        return None
    if not isinstance(value, str) or not value:
        problems.add(table, key, f"must be a non-empty string, not {value!r}")
        return None
    return value


def _bindings(config: dict[str, Any], table: tuple[str, ...], problems: _Problems) -> list[Binding]:
    bindings: list[Binding] = []
    seen: set[str] = set()

    def add(binding: Binding, where: tuple[str, ...], key: str) -> None:
        if not BINDING_NAME.match(binding.name):
            problems.add(where, key, f"{binding.name!r} is not a valid binding name")
        elif binding.name in seen:
            problems.add(where, key, f"binding {binding.name} is declared twice")
        else:
            seen.add(binding.name)
            bindings.append(binding)

    vars_ = config.get("vars", {})
    if not isinstance(vars_, dict):
        problems.add(table, "vars", "must be a table")
        vars_ = {}
    for name, value in vars_.items():
        if SECRET_LOOKING.search(name):
            problems.add(
                (*table, "vars"), name, "looks like a secret: use `wrangler secret` / put_secret"
            )
        elif isinstance(value, str):
            add(Binding(type="plain_text", name=name, text=value), (*table, "vars"), name)
        else:
            add(Binding(type="json", name=name, json=value), (*table, "vars"), name)

    metadata = config.get("version_metadata")
    if metadata is not None:
        name = metadata.get("binding") if isinstance(metadata, dict) else None
        if not isinstance(name, str):
            problems.add((*table, "version_metadata"), "binding", "required")
        else:
            add(
                Binding(type="version_metadata", name=name), (*table, "version_metadata"), "binding"
            )

    shapes = {
        "kv_namespaces": ("kv_namespace", {"id": "namespace_id"}),
        "d1_databases": ("d1", {"database_id": "id"}),
        "r2_buckets": ("r2_bucket", {"bucket_name": "bucket_name"}),
        "services": ("service", {"service": "service"}),
    }
    for key, (kind, fields) in shapes.items():
        entries = config.get(key, [])
        if not isinstance(entries, list):
            problems.add(table, key, "must be an array of tables ([[...]])")
            continue
        for index, entry in enumerate(entries):
            where = (*table, key)
            if not isinstance(entry, dict) or not isinstance(entry.get("binding"), str):
                problems.add(where, "binding", f"entry {index}: `binding` is required")
                continue
            values = {}
            for toml_key, api_key in fields.items():
                value = entry.get(toml_key)
                if not isinstance(value, str) or not value:
                    problems.add(where, toml_key, f"{entry['binding']}: `{toml_key}` is required")
                values[api_key] = value
            if key == "services" and isinstance(entry.get("environment"), str):
                values["environment"] = entry["environment"]
            if all(isinstance(v, str) for v in values.values()):
                add(Binding(type=kind, name=entry["binding"], **values), where, "binding")

    for key in UNSUPPORTED_BINDING_KEYS:
        if key in config:
            problems.add(
                table,
                key,
                "not supported by tgk-deploy's bundle: declare it elsewhere or extend bundle.py",
            )
    return sorted(bindings, key=_binding_order)


def _module_files(base_dir: Path, globs: Iterable[str], main_path: Path) -> list[Path]:
    files = {main_path.resolve()}
    for pattern in globs:
        files.update(p.resolve() for p in base_dir.glob(pattern) if p.is_file())
    return sorted(files, key=lambda p: (p != main_path.resolve(), p.as_posix()))


def _module_globs(config: dict[str, Any], table: tuple[str, ...], problems: _Problems) -> list[str]:
    rules = config.get("rules")
    if rules is None:
        return list(DEFAULT_MODULE_GLOBS)
    globs: list[str] = []
    for rule in rules if isinstance(rules, list) else [None]:
        if not isinstance(rule, dict) or rule.get("type") != "ESModule":
            problems.add(
                table, "rules", "only ESModule rules are supported (plain JavaScript, no build)"
            )
            continue
        globs.extend(rule.get("globs", []))
    return globs


def _check_imports(modules: list[Module], base_dir: Path, problems: _Problems) -> None:
    """Every relative import must name another module of the upload, or the Worker will not start."""
    names = {m.name for m in modules}
    for module in modules:
        text = module.content.decode("utf-8", errors="replace")
        folder = posixpath.dirname(module.name)
        for target in RELATIVE_IMPORT.findall(text):
            resolved = posixpath.normpath(posixpath.join(folder, target))
            if resolved not in names:
                message = f"imports {target!r}, which is not a module of the upload"
                problems.problems.append(
                    SpecProblem(str(base_dir / module.name), 1, 1, "import", message)
                )


def read_bundle(bundle_dir: Path | str, environment: str = PRODUCTION) -> Bundle:
    """Read ``<bundle_dir>/wrangler.toml`` and its modules for one environment."""
    folder = Path(bundle_dir)
    file = folder / WRANGLER_FILE
    top, text = _load_toml(file)
    problems = _Problems(file, text)
    config, table = _environment_config(top, environment, problems)

    own_keys = top.get("env", {}).get(environment, {}) if table else top

    def origin(key: str) -> tuple[str, ...]:
        """The table a key was read from: the environment's own, or the top level."""
        return table if key in own_keys else ()

    name_table = origin("name")
    name = _str(config, "name", name_table, problems)
    if name is not None and not SCRIPT_NAME.match(name):
        problems.add(name_table, "name", f"{name!r} is not a valid Worker name (a-z, 0-9, - and _)")
    main = _str(config, "main", origin("main"), problems)
    compatibility_date = _str(config, "compatibility_date", origin("compatibility_date"), problems)
    if compatibility_date is not None:
        try:
            date.fromisoformat(compatibility_date)
        except ValueError:
            problems.add(
                origin("compatibility_date"),
                "compatibility_date",
                f"{compatibility_date!r} is not a YYYY-MM-DD date",
            )
    flags = config.get("compatibility_flags", [])
    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        problems.add(
            origin("compatibility_flags"), "compatibility_flags", "must be an array of strings"
        )
        flags = []
    bindings = _bindings(config, table, problems)
    globs = _module_globs(config, origin("rules"), problems)
    problems.raise_if_any()
    assert name is not None and main is not None and compatibility_date is not None

    main_path = folder / main
    if not main_path.is_file():
        problems.add(origin("main"), "main", f"{main} does not exist")
    elif main_path.suffix not in (".js", ".mjs"):
        problems.add(origin("main"), "main", f"{main} is not a JavaScript module (.js, .mjs)")
    problems.raise_if_any()

    base_dir = folder / config.get("base_dir", str(Path(main).parent))
    modules = []
    for path in _module_files(base_dir, globs, main_path):
        try:
            module_name = path.relative_to(base_dir.resolve()).as_posix()
        except ValueError:
            problems.add((), "base_dir", f"{path} lies outside base_dir {base_dir}")
            continue
        modules.append(Module(name=module_name, content=path.read_bytes()))
    _check_imports(modules, base_dir, problems)
    problems.raise_if_any()

    routes = config.get("routes", [])
    route_patterns = tuple(
        r["pattern"] if isinstance(r, dict) else str(r)
        for r in (routes if isinstance(routes, list) else [])
    )
    if isinstance(config.get("route"), str):
        route_patterns = (config["route"], *route_patterns)

    return Bundle(
        environment=environment,
        script_name=name,
        main_module=modules[0].name,
        compatibility_date=compatibility_date,
        compatibility_flags=tuple(flags),
        modules=tuple(modules),
        bindings=tuple(bindings),
        routes=route_patterns,
        source=str(file),
    )
