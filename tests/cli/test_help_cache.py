"""``--help`` from the cache: the text Typer renders, then without importing Typer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tgk_deploy.cli import help_cache

RUN = (
    "import sys; sys.argv = ['tgk-deploy', *sys.argv[1:]]\n"
    "from tgk_deploy.cli.app import main\n"
    "try:\n"
    "    main()\n"
    "finally:\n"
    "    print('typer' in sys.modules, file=sys.stderr)\n"
)


def tgk(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "COLUMNS": "100"}
    return subprocess.run(
        [sys.executable, "-c", RUN, *args], env=env, capture_output=True, text=True, check=False
    )


def test_the_second_help_is_typers_text_without_typer(tmp_path):
    first = tgk(tmp_path, "--help")
    second = tgk(tmp_path, "--help")
    assert first.returncode == second.returncode == 0
    assert first.stderr.strip() == "True" and second.stderr.strip() == "False"
    assert second.stdout == first.stdout
    assert "rollback" in second.stdout and "Exit codes" in second.stdout


def test_a_command_help_is_cached_apart_and_an_error_is_not_cached(tmp_path):
    rollback = tgk(tmp_path, "rollback", "--help")
    assert "--immediate" in rollback.stdout
    assert tgk(tmp_path, "rollback", "--help").stdout == rollback.stdout
    assert tgk(tmp_path, "nosuch", "--help").returncode == 2
    assert sorted(p.name for p in (tmp_path / "tgk-deploy").iterdir()) == ["help-rollback.txt"]


def test_a_stored_text_whose_key_no_longer_matches_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    help_cache.store(["--help"], "stored text\n")
    assert help_cache.answer(["--help"])
    monkeypatch.setenv("COLUMNS", "33")  # any input of the rendering changes the key
    assert not help_cache.answer(["--help"])
    assert not help_cache.cacheable(["rollback", "--immediate", "--help"])
    assert not help_cache.cacheable([])
