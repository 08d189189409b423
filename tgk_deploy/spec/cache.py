"""The last validated spec, kept with the bytes it was read from, for commands that act.

Every command reads the project and every phase file, and reading them right
(YAML events held to limits, PromQL parsed, cross-file rules) costs a tenth of
a rollback's start-up. The files rarely change between two commands, so the
spec that passed is kept as JSON in the user's cache folder with the SHA-256
of every file it came from, the phase folder's listing and the code that
checked it. A later command re-hashes those files (a millisecond) and takes
the stored spec only if nothing differs; anything else (an edit, a new phase
file, another tgk-deploy, an unreadable or foreign cache file) reads the files
again. A spec with problems is never stored, so bad input is always reported
from the files themselves. The folder is trusted as the user's own files are
(as Python trusts its __pycache__): whoever can write it can edit the project.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from tgk_deploy import cache_dir
from tgk_deploy.spec.files import phase_files
from tgk_deploy.spec.models import Spec

SPEC_CODE = Path(__file__).resolve().parent


def load_spec_cached(project_path: Path) -> Spec:
    """``load_spec(project_path)``, from the cache when its files are unchanged."""
    project_path = project_path.resolve()
    entry_path = _entry_path(project_path)
    stored = _read_entry(entry_path)
    inputs = stored.get("inputs") if stored else None
    if stored and inputs is not None and inputs == _inputs_now(inputs):
        try:
            return Spec.model_validate(stored.get("spec"))
        except ValueError:  # written by other models: read the files again
            pass
    from tgk_deploy.spec.load import load_spec

    spec = load_spec(project_path)
    phases_dir = project_path.parent / spec.project.phases_dir
    inputs = _inputs(project_path, phases_dir, phase_files(phases_dir))
    _write_entry(entry_path, {"inputs": inputs, "spec": spec.model_dump(mode="json")})
    return spec


def _code() -> str:
    """What reads and checks the files: our spec modules and the parsers and validator they use.

    A change to any of them (an edit, an upgrade) may judge the same bytes otherwise.
    """
    import importlib.util

    modules = [*SPEC_CODE.glob("*.py")]
    for parser in ("yaml", "promql_parser", "pydantic", "pydantic_core"):
        found = importlib.util.find_spec(parser)
        if found is not None and found.origin:
            modules.append(Path(found.origin))
    return "|".join(f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sorted(modules))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _inputs(project: Path, phases_dir: Path, phases: list[Path]) -> dict[str, Any]:
    return {
        "code": _code(),
        "project": [str(project), _digest(project)],
        "phases_dir": str(phases_dir),
        "phases": [[str(p), _digest(p)] for p in phases],
    }


def _inputs_now(stored: Any) -> dict[str, Any] | None:
    """The same description of the files as they are now; None when they cannot be read."""
    try:
        phases_dir = Path(stored["phases_dir"])
        return _inputs(Path(stored["project"][0]), phases_dir, phase_files(phases_dir))
    except (OSError, TypeError, KeyError, IndexError):
        return None


def _entry_path(project_path: Path) -> Path:
    name = hashlib.sha256(str(project_path).encode()).hexdigest()[:24]
    return Path(cache_dir()) / f"spec-{name}.json"


def _read_entry(path: Path) -> dict[str, Any] | None:
    try:
        entry = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return entry if isinstance(entry, dict) else None


def _write_entry(path: Path, entry: dict[str, Any]) -> None:
    """Written whole (a temporary file renamed) and readable by this user only; best effort."""
    temporary = ""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".spec-", suffix=".tmp")
        with os.fdopen(handle, "w") as out:
            json.dump(entry, out)
        os.replace(temporary, path)
    except OSError:
        if temporary:
            Path(temporary).unlink(missing_ok=True)
