"""The committed alert rules are what the phase files export, and promtool's unit tests pass.

``alerts/tgk-deploy.rules.test.yml`` puts every exported alert just past its
threshold (it must fire, with its labels and annotations) and just inside it
(it must stay quiet), on series labelled as the Worker pushes them; the rare
events come from fresh isolates whose series are born at 1.
"""

from __future__ import annotations

import subprocess

import pytest
import yaml

from tests.fixtures.prometheus import promtool_binary
from tests.fixtures.spec import REPO
from tgk_deploy.spec.load import load_spec
from tgk_deploy.triggers.alerts import alert_rules, render_rules_file

ALERTS = REPO / "alerts"
RULES = ALERTS / "tgk-deploy.rules.yml"
UNIT_TESTS = ALERTS / "tgk-deploy.rules.test.yml"


def test_the_committed_rules_are_what_export_alerts_writes():
    exported = render_rules_file(alert_rules(load_spec(REPO / "tgk-deploy.yaml")))
    assert RULES.read_text() == exported, (
        "alerts/tgk-deploy.rules.yml is stale: tgk-deploy export alerts -o alerts/tgk-deploy.rules.yml"
    )


def test_every_exported_alert_is_tested_firing_and_quiet():
    rules = yaml.safe_load(RULES.read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tests = yaml.safe_load(UNIT_TESTS.read_text())["tests"]
    firing = {
        check["alertname"]
        for test in tests
        for check in test["alert_rule_test"]
        if check["exp_alerts"]
    }
    quiet = {
        check["alertname"]
        for test in tests
        for check in test["alert_rule_test"]
        if not check["exp_alerts"]
    }
    assert firing == alerts
    assert quiet == alerts


@pytest.mark.prometheus
def test_promtool_unit_tests_pass():
    promtool = promtool_binary()
    if promtool is None:
        pytest.skip("promtool is not installed (make test-deps installs it)")
    run = subprocess.run(
        [promtool, "test", "rules", UNIT_TESTS.name],
        cwd=ALERTS,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "SUCCESS" in run.stdout
