"""The spec cache: a command acting on unchanged files skips reading them, never anything else."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest

import tgk_deploy.spec.load as load_module
from tgk_deploy.errors import SpecError
from tgk_deploy.spec.cache import load_spec_cached
from tgk_deploy.spec.load import load_spec

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the real project and phases, with a cache folder of its own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    shutil.copy(REPO / "tgk-deploy.yaml", tmp_path / "tgk-deploy.yaml")
    shutil.copytree(REPO / "phases", tmp_path / "phases")
    return tmp_path / "tgk-deploy.yaml"


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every time the files are read and checked for real."""
    seen: list[Path] = []
    real = load_module.load_spec

    def counting(path: Path, *args: object) -> object:
        seen.append(path)
        return real(path, *args)

    monkeypatch.setattr(load_module, "load_spec", counting)
    return seen


def entries(project: Path) -> list[Path]:
    return sorted((project.parent / "cache" / "tgk-deploy").glob("spec-*.json"))


def test_unchanged_files_are_not_read_again_and_give_the_same_spec(project, reads):
    first = load_spec_cached(project)
    second = load_spec_cached(project)
    assert reads == [project.resolve()]
    assert second == first == load_spec(project)


def test_an_edited_phase_file_is_read_again(project, reads):
    load_spec_cached(project)
    phase = project.parent / "phases" / "2-ai-enhancement.yaml"
    phase.write_text(phase.read_text().replace("risk: medium", "risk: high", 1))
    edited = load_spec_cached(project)
    assert len(reads) == 2
    assert edited.phase(2).risk.value == "high"


def test_a_new_or_removed_phase_file_is_read_again(project, reads):
    load_spec_cached(project)
    (project.parent / "phases" / "5-production-optimization.yaml").unlink()
    assert [p.phase for p in load_spec_cached(project).phases] == [1, 2, 3, 4]
    assert len(reads) == 2


def test_a_file_broken_after_a_good_read_is_reported_not_served_from_the_cache(project):
    load_spec_cached(project)
    phase = project.parent / "phases" / "1-foundation.yaml"
    phase.write_text(phase.read_text() + "\nnot_a_field: true\n")
    with pytest.raises(SpecError) as raised:
        load_spec_cached(project)
    assert "1-foundation.yaml" in str(raised.value.problems[0].file)
    with pytest.raises(SpecError):  # a failed read is never stored either
        load_spec_cached(project)


def test_another_version_of_the_checking_code_reads_the_files_again(project, reads):
    load_spec_cached(project)
    [entry] = entries(project)
    stored = json.loads(entry.read_text())
    stored["inputs"]["code"] = "0.0.0|an older checker"
    entry.write_text(json.dumps(stored))
    load_spec_cached(project)
    assert len(reads) == 2


@pytest.mark.parametrize(
    "damage",
    [b"", b"{not json", b"[]", b'{"inputs": null}', b'{"inputs": {"phases_dir": 5}}'],
)
def test_a_damaged_cache_file_is_read_past(project, reads, damage):
    load_spec_cached(project)
    [entry] = entries(project)
    entry.write_bytes(damage)
    assert load_spec_cached(project) == load_spec(project)
    assert len(reads) == 2


def test_a_stored_spec_the_models_refuse_is_read_past(project, reads):
    load_spec_cached(project)
    [entry] = entries(project)
    stored = json.loads(entry.read_text())
    stored["spec"]["phases"][0]["steps"] = "not a list"
    entry.write_text(json.dumps(stored))
    assert load_spec_cached(project) == load_spec(project)
    assert len(reads) == 2


def test_the_cache_file_is_private_and_written_whole(project):
    load_spec_cached(project)
    [entry] = entries(project)
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert not list(entry.parent.glob(".spec-*"))  # no temporary left behind


def test_a_cache_folder_that_cannot_be_written_is_no_error(project, reads, monkeypatch):
    blocked = project.parent / "blocked"
    blocked.write_text("a file where the cache folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    assert load_spec_cached(project) == load_spec(project)
    assert load_spec_cached(project) == load_spec(project)
    assert len(reads) == 2
