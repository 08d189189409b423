"""Where a spec's files are: the project file found from the working folder, its phase files.

Kept apart from ``load`` (YAML, PromQL, pydantic) so that a command can find
them, and the spec cache can check them, without importing the parsers.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_FILE_NAMES = ("tgk-deploy.yaml", "tgk-deploy.yml")


def find_project_file(start: Path | None = None) -> Path | None:
    explicit = os.environ.get("TGK_DEPLOY_PROJECT")
    if explicit:
        return Path(explicit)
    directory = (start or Path.cwd()).resolve()
    for candidate_dir in (directory, *directory.parents):
        for name in PROJECT_FILE_NAMES:
            candidate = candidate_dir / name
            if candidate.is_file():
                return candidate
    return None


def phase_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
