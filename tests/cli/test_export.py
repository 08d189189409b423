"""``tgk-deploy export alerts``: a rules file promtool accepts, carrying the RFC's alerts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.fixtures.prometheus import promtool_binary
from tests.fixtures.spec import REPO
from tgk_deploy.cli.app import app
from tgk_deploy.errors import ConfigError
from tgk_deploy.spec.load import load_spec
from tgk_deploy.spec.models import Trigger
from tgk_deploy.triggers.alerts import alert_rules, render_rules_file
from tgk_deploy.triggers.evaluate import LiveVersions

runner = CliRunner()
SPEC = load_spec(REPO / "tgk-deploy.yaml")


@pytest.fixture
def exported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict]:
    monkeypatch.chdir(REPO)
    target = tmp_path / "tgk-deploy.rules.yml"
    result = runner.invoke(
        app,
        [
            "export",
            "alerts",
            "--output",
            str(target),
            "--runbook-base",
            "https://git.example/tgk/blob/main/",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "wrote 13 alerting rule(s) in 5 group(s)" in result.stderr
    return target, yaml.safe_load(target.read_text())


def rules_by_alert(document: dict) -> dict[str, dict]:
    return {rule["alert"]: rule for group in document["groups"] for rule in group["rules"]}


@pytest.mark.prometheus
def test_promtool_accepts_the_exported_rules(exported):
    promtool = promtool_binary()
    if promtool is None:
        pytest.skip("promtool is not installed")
    path, _ = exported

    checked = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 13 rules found" in checked.stdout


def test_one_group_per_phase_and_one_rule_per_trigger(exported):
    _, document = exported

    assert [g["name"] for g in document["groups"]] == [
        "tgk-deploy-phase-1-foundation",
        "tgk-deploy-phase-2-ai-enhancement",
        "tgk-deploy-phase-3-dynamic-routing",
        "tgk-deploy-phase-4-bidirectional-replies",
        "tgk-deploy-phase-5-production-optimization",
    ]
    triggers = sum(len(p.rollback_triggers) for p in SPEC.phases)
    assert sum(len(g["rules"]) for g in document["groups"]) == triggers


def test_the_rfc_alerts_carry_the_rfcs_names_severities_and_for(exported):
    """ALC-RFC-006 'Alert Rules': critical 2m, high 5m, medium 5m; conditions as the runbooks decide."""
    _, document = exported
    rules = rules_by_alert(document)

    delivery = rules["EmailDeliveryFailing"]
    assert (delivery["for"], delivery["labels"]["severity"]) == ("2m", "critical")
    assert 'status=~"fallback|failed"' in delivery["expr"]
    assert " > 0.005 and on() " in delivery["expr"]

    slow = rules["AISlowProcessing"]
    assert (slow["for"], slow["labels"]["severity"]) == ("5m", "high")
    assert 'tgk_email_ai_failures_total{environment="production",reason="timeout"}' in slow["expr"]
    assert slow["labels"] == {
        "severity": "high",
        "tgk_deploy_phase": "2",
        "tgk_deploy_trigger": "ai-timeouts",
        "tgk_deploy_environment": "production",
    }

    routing = rules["RoutingErrorsIncreasing"]
    assert "for" not in routing and routing["labels"]["severity"] == "medium"  # runbook decision
    assert "tgk_email_route_failures_total" in routing["expr"] and " > 5.0" in routing["expr"]
    assert "increase(" not in routing["expr"]  # a new isolate's first error must count


def test_every_rule_sees_only_its_environment_and_uses_the_rfc_severities(exported):
    _, document = exported
    for rule in rules_by_alert(document).values():
        assert "{{" not in rule["expr"], rule["expr"]
        assert 'environment="production"' in rule["expr"], rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "high", "medium"}


def test_no_two_rules_share_an_expression(exported):
    _, document = exported
    exprs = [rule["expr"] for rule in rules_by_alert(document).values()]
    assert len(exprs) == len(set(exprs))  # one alert per condition: no duplicate pages


def test_annotations_link_the_runbook_section_and_match_the_declared_response(exported):
    _, document = exported
    rules = rules_by_alert(document)

    slow = rules["AISlowProcessing"]["annotations"]
    assert slow["runbook_url"] == (
        "https://git.example/tgk/blob/main/runbooks/phase-2-ai-enhancement.md#ai-timeouts"
    )
    assert slow["rollback_command"] == "tgk-deploy rollback --feature ai"
    assert slow["summary"].startswith("Phase 2 (ai-enhancement): more than 5 % of AI calls")
    assert "Declared response: feature-rollback ai." in slow["description"]
    assert rules["EmailDeliveryFailing"]["annotations"]["rollback_command"] == (
        "tgk-deploy rollback --immediate"
    )
    assert rules["RoutingErrorsIncreasing"]["annotations"]["rollback_command"] == (
        "tgk-deploy rollback --gradual"
    )
    for halting in (
        "TgkPhase2PiiRedactionMiss",
        "TgkPhase4WebhookAuthFailures",
        "TgkPhase5RoutingP95Slow",
    ):
        annotations = rules[halting]["annotations"]
        assert "rollback_command" not in annotations  # halt rolls nothing back
        assert "Declared response: halt: the rollout stops" in annotations["description"]


def test_a_runbook_base_without_a_slash_and_the_project_setting_give_absolute_links(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(REPO)
    rules = alert_rules(SPEC, runbook_base="https://docs.example/tgk")
    urls = [r["annotations"]["runbook_url"] for g in rules.groups for r in g["rules"]]
    assert all(u.startswith("https://docs.example/tgk/runbooks/phase-") for u in urls)

    project = (REPO / "tgk-deploy.yaml").read_text()
    (tmp_path / "tgk-deploy.yaml").write_text(
        project + "\nrunbook_base_url: https://docs.example/tgk/\n"
    )
    (tmp_path / "phases").symlink_to(REPO / "phases")
    (tmp_path / "wrangler").symlink_to(REPO / "wrangler")
    result = runner.invoke(
        app, ["export", "alerts", "--project", str(tmp_path / "tgk-deploy.yaml")]
    )
    assert result.exit_code == 0, result.output
    assert "runbook_url: https://docs.example/tgk/runbooks/phase-1-foundation.md#" in result.stdout


def test_to_stdout_by_default(monkeypatch):
    monkeypatch.chdir(REPO)

    result = runner.invoke(app, ["export", "alerts"])

    assert result.exit_code == 0
    assert result.stdout.startswith("# Generated by `tgk-deploy export alerts`")
    assert "alert: EmailDeliveryFailing" in result.stdout


def relative_spec():
    relative = Trigger.model_validate(
        {
            "name": "candidate-failures",
            "query": 'sum(rate(tgk_email_route_failures_total{version_id="{{candidate}}"}[15m]))',
            "relative_to": 'sum(rate(tgk_email_route_failures_total{version_id="{{stable}}"}[15m]))',
            "op": ">",
            "threshold": 2,
            "for": "15m",
        }
    )
    phase = SPEC.phases[0].model_copy(update={"rollback_triggers": [relative]})
    return SPEC.model_copy(update={"phases": [phase]})


def test_relative_triggers_need_live_versions_or_are_skipped_with_the_reason():
    skipped = alert_rules(relative_spec())

    assert skipped.groups == []
    [reason] = skipped.skipped
    assert reason.trigger == "candidate-failures"
    assert "pass --candidate/--stable" in reason.reason
    assert "# skipped phase 1 candidate-failures:" in render_rules_file(skipped)

    exported = alert_rules(relative_spec(), versions=LiveVersions(candidate="c2", stable="s1"))
    [rule] = exported.groups[0]["rules"]
    assert rule["expr"] == (
        '(sum(rate(tgk_email_route_failures_total{version_id="c2"}[15m]))) > 2.0 * '
        '(sum(rate(tgk_email_route_failures_total{version_id="s1"}[15m])))'
    )
    # the receiver (tgk-deploy serve) ignores an alert about a version no longer the candidate
    assert rule["labels"]["tgk_deploy_candidate"] == "c2"


def test_two_triggers_exporting_one_alert_name_are_refused():
    phase = SPEC.phases[0]
    twins = [t.model_copy(update={"alert": "SameName"}) for t in phase.rollback_triggers]
    spec = SPEC.model_copy(
        update={"phases": [phase.model_copy(update={"rollback_triggers": twins})]}
    )

    with pytest.raises(ConfigError, match="SameName"):
        alert_rules(spec)


def test_export_and_gate_never_load_the_cloudflare_sdk():
    probe = (
        "import sys\n"
        "from tgk_deploy.cli.app import app\n"
        "for argv in (['export', 'alerts'], ['gate', '--help']):\n"
        "    try:\n"
        "        app(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "assert 'cloudflare' not in sys.modules, 'cloudflare SDK imported'\n"
    )

    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True)

    assert result.returncode == 0, result.stderr


def test_every_runbook_link_lands_on_a_heading_of_a_committed_runbook():
    rules = alert_rules(SPEC)

    for group in rules.groups:
        for rule in group["rules"]:
            page, anchor = rule["annotations"]["runbook_url"].split("#")
            headings = [
                line.lstrip("#").strip().lower().replace(" ", "-")
                for line in (REPO / page).read_text().splitlines()
                if line.startswith("#")
            ]
            assert anchor in headings, f"{rule['alert']}: no heading #{anchor} in {page}"
