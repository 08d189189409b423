"""A corpus of malformed phase and project files, each answered like a good reviewer would.

``corpus/expected.json`` names, for each file, the line and field the answer
must point at and words its message must contain (and, for files holding a
credential, the value that must never be echoed). Every file: exit 2, a
file:line:column problem at that line, no traceback, in under a second.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.fixtures.spec import REPO
from tgk_deploy.cli.app import app

CORPUS = Path(__file__).parent / "corpus"
EXPECTED: dict[str, dict] = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
runner = CliRunner()


def test_the_corpus_is_large_and_covers_every_category():
    assert len(EXPECTED) >= 100
    categories = Counter(case["category"] for case in EXPECTED.values())
    assert set(categories) == {
        "encoding",
        "syntax",
        "tags",
        "limits",
        "types",
        "names",
        "promql",
        "cross-checks",
        "project",
    }
    assert min(categories.values()) >= 4, categories
    on_disk = {str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*.yaml")}
    assert on_disk == set(EXPECTED)


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    """Imports happen once per process; the second-long budget is for reading a file."""
    runner.invoke(app, ["validate", str(REPO / "phases")])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_malformed_file_is_refused_at_its_line(monkeypatch, name):
    case = EXPECTED[name]
    monkeypatch.chdir(REPO)  # phase files are checked against the real project
    path = CORPUS / name
    started = time.process_time()  # CPU: the machine is shared, a pause is not ours
    result = runner.invoke(app, ["validate", str(path), "--output", "json"])
    elapsed = time.process_time() - started
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output + result.stderr
    assert elapsed < 1.0, f"{elapsed:.2f}s"
    problems = json.loads(result.stdout)["problems"]
    matching = [
        p
        for p in problems
        if p["field"] == case["field"] and case["words"].lower() in p["message"].lower()
    ]
    shown = [f"{p['line']}:{p['column']} {p['field']}: {p['message']}" for p in problems]
    assert matching, f"want {case['field']!r} with {case['words']!r}; got {shown}"
    assert matching[0]["line"] == case["line"], shown
    assert matching[0]["file"].endswith(name) and matching[0]["column"] >= 1
    if "secret" in case:
        text = runner.invoke(app, ["validate", str(path)])
        assert case["secret"] not in result.output + text.output + text.stderr
