"""Hostile sizes are refused before anything is built: fast, small, and said plainly.

Each case runs in a fresh process so that its time and peak memory are its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.spec import REPO
from tests.spec.test_load import VALID_PHASE
from tgk_deploy.spec.source import MAX_NODES

PROBE = """
import json, resource, sys, time
from pathlib import Path
from tgk_deploy.errors import SpecError
from tgk_deploy.spec.load import validate_paths
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.process_time()  # CPU: on a shared machine wall time is not ours
try:
    validate_paths([Path(sys.argv[1])])
    problems = []
except SpecError as error:
    problems = [str(p) for p in error.problems]
seconds = time.process_time() - started
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps({"seconds": seconds, "mb": grown, "problems": problems}))
"""

STEP = "  - id: s{0}\n    description: one step of a very long rollout, for size\n    actions:\n      - deploy: {{percentage: 10}}\n    bake: 1h\n"


def measure(path: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


def steps_file(tmp_path: Path, count: int) -> Path:
    head = VALID_PHASE.split("steps:\n")[0] + "steps:\n"
    path = tmp_path / "1-big.yaml"
    path.write_text(head + "".join(STEP.format(i) for i in range(count)))
    return path


def test_a_5_mb_file_of_48000_steps_is_answered_in_under_a_second_and_100_mb(tmp_path):
    path = steps_file(tmp_path, 48_000)
    assert path.stat().st_size > 4_000_000
    result = measure(path)
    assert result["seconds"] < 1.0 and result["mb"] < 100, result
    assert result["problems"] == [
        f"{path}:1:1: the file is larger than 1024 KB; phase and project files are small"
    ]


def test_many_small_values_under_the_size_limit_are_refused_by_count(tmp_path):
    path = steps_file(tmp_path, 6_000)  # under 1 MB, far over the node limit
    result = measure(path)
    assert result["seconds"] < 1.0 and result["mb"] < 100, result
    [problem] = result["problems"]
    assert f"more than {MAX_NODES} values" in problem


def test_the_largest_accepted_file_is_still_validated_in_under_a_second(tmp_path):
    path = steps_file(tmp_path, MAX_NODES // 15)  # 14 nodes a step: just under the limit
    result = measure(path)
    assert result["seconds"] < 1.0 and result["mb"] < 100, result
    assert not any("more than" in p for p in result["problems"])


def test_an_alias_bomb_is_refused_at_the_alias_that_crosses_the_limit(tmp_path):
    laughs = "".join(
        f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9 if i else ['"lol"'] * 9) + "]\n"
        for i in range(12)
    )
    path = tmp_path / "1-bomb.yaml"
    path.write_text(VALID_PHASE + laughs)
    result = measure(path)
    assert result["seconds"] < 1.0 and result["mb"] < 100, result
    [problem] = result["problems"]
    crossing = VALID_PHASE.count("\n") + 4  # l3: 1 + 9 x 820 values, the first past the limit
    assert problem.startswith(f"{path}:{crossing}:") and "aliases expanded" in problem


@pytest.mark.parametrize("opener", ["[", "{a: ", "- "])
def test_deep_nesting_is_refused_without_recursion_errors(tmp_path, opener):
    closer = {"[": "]", "{a: ": "}", "- ": ""}[opener]
    if opener == "- ":
        body = "".join("  " * i + "- \n" for i in range(200)) + "  " * 200 + "x\n"
    else:
        body = opener * 500 + "1" + closer * 500 + "\n"
    path = tmp_path / "1-deep.yaml"
    path.write_text("deep:\n" + body if opener == "- " else "deep: " + body)
    result = measure(path)
    assert result["seconds"] < 1.0, result
    assert result["problems"] and all(":" in p for p in result["problems"])
