"""``tgk-deploy validate`` and ``schema`` as an operator and an editor meet them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from tests.fixtures.spec import REPO
from tgk_deploy.cli.app import app
from tgk_deploy.cli.schema import SchemaKind, schema_document

runner = CliRunner()


def test_the_project_validates(monkeypatch):
    monkeypatch.chdir(REPO)
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
    assert "5 phase file(s) valid (23 steps)" in result.output


def test_validate_reports_json_for_machines(monkeypatch):
    monkeypatch.chdir(REPO)
    result = runner.invoke(app, ["validate", "phases/", "--output", "json"])
    assert result.exit_code == 0
    assert [p["phase"] for p in json.loads(result.stdout)["phases"]] == [1, 2, 3, 4, 5]


def test_a_bad_file_exits_2_with_file_line_and_field_and_no_traceback(tmp_path):
    bad = tmp_path / "1-bad.yaml"
    good = (REPO / "phases" / "1-foundation.yaml").read_text()
    bad.write_text(good.replace("percentage: 10,", "percentage: 1000,"))
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2
    line = next(i for i, text in enumerate(bad.read_text().splitlines(), 1) if "1000" in text)
    assert f"{bad}:{line}:" in result.stderr
    assert "steps[2].actions[1].deploy.percentage" in result.stderr  # after its smoke check
    assert "Traceback" not in result.output + result.stderr


def test_bad_input_in_json_mode_is_still_json(tmp_path):
    bad = tmp_path / "1-bad.yaml"
    bad.write_text("phase: 1\n")
    result = runner.invoke(app, ["validate", str(bad), "-o", "json"])
    assert result.exit_code == 2
    problems = json.loads(result.stdout)["problems"]
    assert {p["field"] for p in problems} >= {"name", "summary", "risk", "steps"}


def test_committed_schemas_match_the_models():
    for kind in SchemaKind:
        committed = json.loads((REPO / "schemas" / f"{kind.value}.schema.json").read_text())
        assert committed == schema_document(kind), (
            f"run: tgk-deploy schema {kind.value} > schemas/{kind.value}.schema.json"
        )


def _modules_loaded_by(args: list[str]) -> set[str]:
    probe = (
        "import sys\n"
        "from tgk_deploy.cli.app import app\n"
        "try:\n"
        f"    app({args!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    return set(done.stdout.strip().splitlines()[-1].split())


def test_help_does_not_import_the_cloudflare_sdk():
    loaded = _modules_loaded_by(["--help"])
    assert "cloudflare" not in loaded and "tgk_deploy.cli.app" in loaded


def test_validate_does_not_import_the_cloudflare_sdk_nor_open_sockets():
    loaded = _modules_loaded_by(["validate", "phases/"])
    assert "cloudflare" not in loaded
    assert "httpx" not in loaded
    assert "tgk_deploy.spec.load" in loaded


def test_schema_is_printed_for_editors():
    result = runner.invoke(app, ["schema"])
    document = json.loads(result.stdout)
    assert document["title"] == "Phase" and "steps" in document["properties"]
    assert Path(REPO / "schemas" / "phase.schema.json").is_file()


def test_the_whole_rollout_on_paper_needs_no_network_and_lists_every_step(monkeypatch):
    monkeypatch.chdir(REPO)
    for name in ("CLOUDFLARE_API_TOKEN", "CLOUDFLARE_API_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    result = runner.invoke(app, ["plan", "--whole-rollout", "--output", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["simulated"] is True
    assert [(s["phase"], s["step"]) for s in document["steps"]][:3] == [
        (1, "staging"),
        (1, "bridge"),
        (1, "canary-10"),
    ]
    assert len(document["steps"]) == 23
    assert document["ends_on_day"] >= 77  # the RFC's eleven weeks
    text = runner.invoke(app, ["plan", "--whole-rollout"])
    assert "on paper: no API call" in text.output and "retire-legacy" in text.output
