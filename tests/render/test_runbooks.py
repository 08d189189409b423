"""The runbooks are generated from the phase files, committed, and every alert links into them."""

from __future__ import annotations

import re
import shutil

import pytest
from typer.testing import CliRunner

from tests.cli.command_lines import check_options, resolve, tgk_deploy_calls
from tests.fixtures.spec import REPO
from tgk_deploy.cli.app import app
from tgk_deploy.render.runbooks import (
    compare_runbooks,
    github_slug,
    heading_anchors,
    phase_page,
    render_runbooks,
)
from tgk_deploy.triggers.alerts import alert_rules
from tgk_deploy.triggers.evaluate import LiveVersions

runner = CliRunner()
RUNBOOKS = REPO / "runbooks"


def test_the_committed_runbooks_are_what_the_phase_files_generate(spec):
    drift = compare_runbooks(render_runbooks(spec), RUNBOOKS)
    assert drift.differs == [], (
        f"runbooks/ is out of date ({', '.join(drift.differs)}): run `tgk-deploy runbook` and commit"
    )


def test_runbook_check_exits_0_on_the_repository(monkeypatch):
    monkeypatch.chdir(REPO)
    result = runner.invoke(app, ["runbook", "--check"])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.stdout


@pytest.fixture
def project_copy(tmp_path):
    """The project, phases and runbooks in a scratch folder we may break."""
    for name in ("tgk-deploy.yaml",):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "phases", tmp_path / "phases")
    shutil.copytree(RUNBOOKS, tmp_path / "runbooks")
    return tmp_path


def test_check_exits_1_and_names_a_page_that_drifted_from_its_phase_file(project_copy):
    phase = project_copy / "phases" / "2-ai-enhancement.yaml"
    phase.write_text(phase.read_text().replace("threshold: 0.05\n", "threshold: 0.06\n"))

    result = runner.invoke(
        app, ["runbook", "--check", "--project", str(project_copy / "tgk-deploy.yaml")]
    )

    assert result.exit_code == 1
    assert "differs:" in result.stderr
    assert "phase-2-ai-enhancement.md" in result.stderr
    assert "phase-1-foundation.md" not in result.stderr


def test_check_names_missing_and_stale_pages(project_copy):
    (project_copy / "runbooks" / "rollback-gradual.md").unlink()
    stale = project_copy / "runbooks" / "phase-9-gone.md"
    stale.write_text((RUNBOOKS / "README.md").read_text())  # a generated page no phase makes
    (project_copy / "runbooks" / "notes.md").write_text("# hand-written, left alone\n")

    result = runner.invoke(
        app, ["runbook", "--check", "--project", str(project_copy / "tgk-deploy.yaml")]
    )

    assert result.exit_code == 1
    assert "missing:" in result.stderr and "rollback-gradual.md" in result.stderr
    assert "stale:" in result.stderr and "phase-9-gone.md" in result.stderr
    assert "notes.md" not in result.stderr


def test_runbook_writes_what_differs_and_then_check_passes(project_copy):
    project = str(project_copy / "tgk-deploy.yaml")
    (project_copy / "runbooks" / "incident-response.md").write_text("edited by hand\n")
    stale = project_copy / "runbooks" / "phase-9-gone.md"
    stale.write_text((RUNBOOKS / "README.md").read_text())

    written = runner.invoke(app, ["runbook", "--project", project, "--output", "json"])

    assert written.exit_code == 0, written.output
    assert '"incident-response.md"' in written.stdout
    assert not stale.exists()
    assert (project_copy / "runbooks" / "incident-response.md").read_text() == (
        RUNBOOKS / "incident-response.md"
    ).read_text()
    assert runner.invoke(app, ["runbook", "--check", "--project", project]).exit_code == 0


def test_every_alert_links_to_a_heading_that_exists(spec):
    pages = render_runbooks(spec)
    rules = alert_rules(spec, versions=LiveVersions(candidate="c", stable="s"))
    urls = [rule["annotations"]["runbook_url"] for group in rules.groups for rule in group["rules"]]
    assert len(urls) == sum(len(p.rollback_triggers) for p in spec.phases)
    for url in urls:
        path, _, anchor = url.partition("#")
        assert path.startswith("runbooks/"), url
        page = pages[path.removeprefix("runbooks/")]
        assert anchor in heading_anchors(page), f"{url}: no such heading"
        on_disk = (REPO / path).read_text()
        assert anchor in heading_anchors(on_disk), f"{url}: not in the committed page"


def test_trigger_anchors_are_never_suffixed_by_a_clash(spec):
    """GitHub appends -1 to a repeated heading; then the alert link would land elsewhere."""
    for phase in spec.phases:
        anchors = heading_anchors(render_runbooks(spec)[phase_page(phase)])
        assert len(anchors) == len(set(anchors))
        for trigger in phase.rollback_triggers:
            assert anchors.count(trigger.name) == 1


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Phase 2: ai-enhancement", "phase-2-ai-enhancement"),
        ("Where are we?", "where-are-we"),
        ("Assess (< 5 min)", "assess--5-min"),
        ("Step 1: `staging`", "step-1-staging"),
        ("pii-detection-failure", "pii-detection-failure"),
        ("[Linked](x.md) *bold* snake_case", "linked-bold-snake_case"),
    ],
)
def test_github_slugs(heading, anchor):
    assert github_slug(heading) == anchor


def test_a_phase_page_gives_each_trigger_its_numbers_response_and_commands(spec):
    page = render_runbooks(spec)["phase-2-ai-enhancement.md"]
    section = page.split("### ai-timeouts", 1)[1].split("\n### ", 1)[0]
    assert "Alert `AISlowProcessing`, severity **high**" in section
    assert "Fires when value > 0.05, holding for 5m" in section
    assert 'tgk_email_ai_failures_total{environment="{{environment}}",reason="timeout"}' in section
    assert "Needs at least 20 events" in section
    assert "AI_TIMEOUT_MS (3 s), so p95 can never pass" in section  # the RFC decision
    assert "tgk-deploy backtest --phase 2 --from" in section
    assert "feature rollback of `ai`" in section and "delete `OPENAI_API_KEY`" in section
    assert "tgk-deploy gate --phase 2 --criteria triggers" in section
    assert "tgk-deploy rollback --feature ai --yes" in section
    assert "tgk-deploy advance --phase 2" in section


def test_a_phase_page_lists_steps_bakes_approvals_and_resume_commands(spec):
    page = render_runbooks(spec)["phase-1-foundation.md"]
    for step in spec.phase(1).steps:
        assert f"### Step {spec.phase(1).step_index(step.id) + 1}: {step.id}" in page
    assert "Bake: at least **2d** before the next step." in page
    assert "tgk-deploy approve --phase 1 --step retire-legacy" in page
    assert "Turn off the Email Routing rule `legacy-email-router`" in page
    assert "tgk-deploy rollback --immediate" in page and "tgk-deploy rollback --gradual" in page
    assert "| 4 | refused: bake not over" in page


def test_a_halting_trigger_leaves_the_decision_to_a_person(spec):
    page = render_runbooks(spec)["phase-5-production-optimization.md"]
    section = page.split("### routing-p95-slow", 1)[1]
    assert "halt: `advance` stops" in section
    assert "Halt means a person decides" in section


def test_the_rollback_pages_follow_the_project_file(spec):
    pages = render_runbooks(spec)
    gradual = pages["rollback-gradual.md"]
    assert "30m apart" in gradual
    for share in spec.project.rollback.gradual.steps:
        assert f"| {share} % |" in gradual
    features = pages["rollback-features.md"]
    assert "Secrets deleted: `OPENAI_API_KEY`." in features
    assert "Vars set: `EMAIL_REPLIES=false`." in features
    extended = pages["rollback-extended-and-teardown.md"]
    assert "tgk-deploy rollback --to-version VERSION_ID" in extended
    assert (
        "tgk-deploy destroy --dry-run" in extended and "type the production script name" in extended
    )
    assert "D1 database `tgk-email-db`" in extended
    incident = pages["incident-response.md"]
    for stage in (
        "Assess (< 5 min)",
        "Investigate (< 30 min)",
        "Recover (< 2 h)",
        "Review (< 24 h)",
    ):
        assert f"## {stage}" in incident


def test_every_link_between_pages_resolves(spec):
    pages = render_runbooks(spec)
    for name, text in pages.items():
        for target in re.findall(r"\]\(([^)]+\.md)(?:#([^)]+))?\)", text):
            file, anchor = target
            assert file in pages, f"{name} links to missing {file}"
            if anchor:
                assert anchor in heading_anchors(pages[file]), f"{name} -> {file}#{anchor}"


def test_rendering_is_deterministic(spec):
    assert render_runbooks(spec) == render_runbooks(spec)


def runbook_command_lines(page: str) -> list[str]:
    """``tgk-deploy ...`` lines in code blocks and in inline code spans."""
    lines = []
    in_code = False
    for line in page.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif in_code and line.lstrip().startswith("tgk-deploy "):
            lines.append(line)
        elif not in_code:
            lines += re.findall(r"`(tgk-deploy [^`]+)`", line)
    return lines


def test_every_command_a_runbook_gives_exists_with_those_options(spec):
    checked = set()
    for name, page in render_runbooks(spec).items():
        for line in runbook_command_lines(page):
            for argv in tgk_deploy_calls(line):
                command, args, path = resolve(argv)
                assert command is not None, f"{name}: `{line}`: no such command"
                check_options(command, args, f"{name}: `{line}`")
                checked.add(path)
    assert {
        "plan",
        "gate",
        "advance",
        "approve",
        "rollback",
        "destroy",
        "history",
        "status",
    } <= checked
