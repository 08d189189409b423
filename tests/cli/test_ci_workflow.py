"""The example GitHub Actions workflow parses and only calls tgk-deploy the way the CLI allows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from tests.cli.command_lines import check_options, resolve, tgk_deploy_calls
from tests.fixtures.spec import REPO

WORKFLOW = REPO / "examples" / "github-actions" / "rollout.yml"


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def run_scripts(workflow: dict) -> Iterator[tuple[str, str]]:
    for job_name, job in workflow["jobs"].items():
        for step in job["steps"]:
            if "run" in step:
                yield f"{job_name}/{step.get('name', step['run'][:30])}", step["run"]


def test_the_workflow_is_valid_yaml_with_the_three_triggers(workflow):
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert {"pull_request", "schedule", "workflow_dispatch"} <= set(triggers)
    assert workflow["jobs"]["validate"]["if"] == "github.event_name == 'pull_request'"


def test_every_tgk_deploy_command_line_uses_only_options_that_exist(workflow):
    calls = [
        (where, argv)
        for where, script in run_scripts(workflow)
        for argv in tgk_deploy_calls(script)
    ]
    assert len(calls) >= 6, calls
    checked = set()
    for where, argv in calls:
        command, args, path = resolve(argv)
        if command is None:
            pytest.fail(f"{where}: tgk-deploy {path} is not a command")
        check_options(command, args, f"{where}: tgk-deploy {path}")
        checked.add(path)
    assert {
        "validate",
        "runbook",
        "gate",
        "advance",
        "export alerts",
        "export dashboard",
    } <= checked


def test_the_scheduled_job_writes_json_artefacts_and_handles_each_exit_code(workflow):
    job = workflow["jobs"]["advance"]
    scripts = {step.get("name"): step.get("run", "") for step in job["steps"]}
    assert "--output json > gate.json" in scripts["Gate (success criteria)"]
    advance = scripts["Advance"]
    assert "--yes --output json > advance.json" in advance
    for case in ("0)", "1)", "3)", "4)", "*)"):
        assert case in advance
    upload = next(
        s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact")
    )
    assert upload["if"] == "always()"
    assert "gate.json" in upload["with"]["path"] and "advance.json" in upload["with"]["path"]


def test_credentials_come_from_github_secrets_only(workflow):
    env = workflow["jobs"]["advance"]["env"]
    for name in ("CLOUDFLARE_API_TOKEN", "CLOUDFLARE_ACCOUNT_ID", "PROMETHEUS_URL"):
        assert env[name] == f"${{{{ secrets.{name} }}}}"


def test_an_unknown_option_would_be_caught():
    command, args, path = resolve(["gate", "--phase", "1", "--criterion", "triggers"])
    with pytest.raises(AssertionError, match="--criterion is not an option"):
        check_options(command, args, path)
    command, args, path = resolve(["gate", "--phase", "1", "--criteria", "trigger"])
    with pytest.raises(pytest.fail.Exception, match="'trigger' is not one of"):
        check_options(command, args, path)
