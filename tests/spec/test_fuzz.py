"""No input makes validate crash, hang or balloon: hostile bytes and mutated real files.

Every input must end in a clean answer (valid, or SpecError with located
problems) within 2 s of CPU time, and the whole run may not raise the process's peak
memory by more than 200 MB. TGK_FUZZ_EXAMPLES raises the number of inputs for
a longer local run (CI keeps a modest budget); the count is printed.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.spec import REPO
from tgk_deploy.errors import SpecError
from tgk_deploy.spec.load import validate_paths

EXAMPLES = int(os.environ.get("TGK_FUZZ_EXAMPLES", "300"))
REAL_FILES = [*sorted((REPO / "phases").glob("*.yaml")), REPO / "tgk-deploy.yaml"]
NASTY = [
    "\t",
    '"',
    "'",
    ":",
    ": ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    "&a ",
    "*a",
    "!",
    "!!",
    "<<: *a\n",
    "\0",
    "\r",
    "\r\n",
    "\ufeff",
    "\u0430",
    "\u2028",
    "#",
    "|",
    ">",
    "%YAML 1.1\n",
    "---\n",
    "...",
    "`",
    "@",
    "050",
    "1:30",
    ".nan",
    "yes",
    "~",
    "{{candidate}}",
    "[5 minutes]",
    "(",
    ")",
    "\\",
    "\x85",
    "é",
]
MIB = 1024 * 1024
inputs_run = {"count": 0}


def _peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A project folder whose phases and bundle are the real ones, for mutated project files."""
    directory = tmp_path_factory.mktemp("fuzz")
    (directory / "phases").symlink_to(REPO / "phases")
    (directory / "wrangler").symlink_to(REPO / "wrangler")
    return directory


@pytest.fixture(scope="module", autouse=True)
def memory_budget():
    validate_paths([REPO / "phases"])  # imports and caches before the baseline
    before = _peak_bytes()
    yield
    grown = _peak_bytes() - before
    print(f"\nfuzz: {inputs_run['count']} inputs, peak memory grew {grown / MIB:.1f} MB")
    assert grown < 200 * MIB


def _answer(path: Path) -> None:
    inputs_run["count"] += 1
    started = time.process_time()  # CPU time: a shared machine may pause us, a hang burns CPU
    try:
        validate_paths([path])
    except SpecError as error:
        assert error.problems
        for problem in error.problems:
            assert problem.line >= 1 and problem.column >= 1, problem
    elapsed = time.process_time() - started
    assert elapsed < 2.0, f"{elapsed:.2f}s of CPU on {path.read_bytes()[:200]!r}"


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(data=st.binary(max_size=4096))
def test_arbitrary_bytes_never_crash_or_hang(workdir, data):
    path = workdir / "1-fuzz.yaml"
    path.write_bytes(data)
    _answer(path)


@st.composite
def mutated_real_file(draw) -> tuple[str, bytes]:
    source = draw(st.sampled_from(REAL_FILES))
    text = source.read_text()
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["insert", "delete", "replace", "swap", "dup", "indent"]))
        at = draw(st.integers(0, len(text)))
        if kind == "insert":
            text = text[:at] + draw(st.sampled_from(NASTY) | st.text(max_size=8)) + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 40)) :]
        elif kind == "replace":
            text = text[:at] + draw(st.sampled_from(NASTY)) + text[at + 1 :]
        else:
            lines = text.split("\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            if kind == "swap":
                lines[i], lines[j] = lines[j], lines[i]
            elif kind == "dup":
                lines.insert(i, lines[j])
            else:
                lines[i] = draw(st.sampled_from([" ", "  ", "\t", ""])) + lines[i].lstrip(" ")
            text = "\n".join(lines)
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-16", "latin-1"]))
    return source.name, text.encode(encoding, errors="replace")


@FUZZ
@given(case=mutated_real_file())
def test_mutations_of_the_real_files_never_crash_or_hang(workdir, case):
    name, data = case
    path = workdir / ("tgk-deploy.yaml" if name == "tgk-deploy.yaml" else name)
    path.write_bytes(data)
    _answer(path)
