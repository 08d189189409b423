"""Rollback triggers -> a Prometheus alerting-rules file, so on-call is paged by the same numbers.

Pure: the spec in, a ``groups:`` document out (one group per phase). Each rule
is the trigger's condition as one PromQL expression (relative triggers
compare against ``threshold * baseline``; a minimum sample is an ``and on()``
guard so that no data never pages), with its ``for``, a severity label and
annotations pointing at the runbook section and the command that rolls back.
The ``tgk_deploy_*`` labels (phase, trigger, environment and, when known, the
candidate version) are what ``tgk-deploy serve`` matches an alert by.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tgk_deploy.errors import ConfigError
from tgk_deploy.spec.models import Phase, ResponseKind, Spec, Trigger, alert_name, format_duration
from tgk_deploy.triggers.evaluate import LiveVersions, MissingVersion, render_query


class SkippedTrigger(BaseModel):
    model_config = ConfigDict(frozen=True)

    phase: int
    trigger: str
    reason: str


class AlertRules(BaseModel):
    """The rules document plus what could not be exported and why."""

    model_config = ConfigDict(frozen=True)

    groups: list[dict[str, Any]] = Field(default_factory=list)
    skipped: list[SkippedTrigger] = Field(default_factory=list)

    def document(self) -> dict[str, Any]:
        return {"groups": self.groups}


def runbook_anchor(phase: Phase, trigger: Trigger) -> str:
    return f"runbooks/phase-{phase.phase}-{phase.name}.md#{trigger.name}"


def rollback_command(phase: Phase, trigger: Trigger) -> str | None:
    """The command the declared response runs; None for ``halt`` (nothing is rolled back)."""
    response = phase.response_for(trigger)
    if response.action is ResponseKind.HALT:
        return None
    if response.action is ResponseKind.FEATURE_ROLLBACK:
        return f"tgk-deploy rollback --feature {response.feature}"
    if response.action is ResponseKind.GRADUAL_ROLLBACK:
        return "tgk-deploy rollback --gradual"
    return "tgk-deploy rollback --immediate"


def runbook_url(base: str, phase: Phase, trigger: Trigger) -> str:
    """``base`` + the runbook section; a base without a trailing slash gets one."""
    if base and not base.endswith("/"):
        base += "/"
    return base + runbook_anchor(phase, trigger)


def _response_text(phase: Phase, trigger: Trigger) -> str:
    response = phase.response_for(trigger)
    if response.action is ResponseKind.HALT:
        return "halt: the rollout stops where it is; nothing is rolled back"
    return response.action.value + (f" {response.feature}" if response.feature else "")


def _one_line(query: str) -> str:
    return " ".join(query.split())


def _number(value: float) -> str:
    return repr(float(value))


def alert_expression(trigger: Trigger, versions: LiveVersions) -> str:
    """The condition under which the trigger fires, as one PromQL expression."""
    query = _one_line(render_query(trigger.query, versions))
    if trigger.relative_to:
        baseline = _one_line(render_query(trigger.relative_to, versions))
        bound = f"{_number(trigger.threshold)} * ({baseline})"
    else:
        bound = _number(trigger.threshold)
    expression = f"({query}) {trigger.op.value} {bound}"
    if trigger.min_sample:
        sample = _one_line(render_query(trigger.min_sample.query, versions))
        expression += f" and on() (({sample}) >= {_number(trigger.min_sample.count)})"
    return expression


def _rule(
    phase: Phase, trigger: Trigger, versions: LiveVersions, runbook_base: str, environment: str
) -> dict[str, Any]:
    what = " ".join((trigger.description or trigger.name).split())
    condition = f"{trigger.op.value} {trigger.threshold:g}"
    if trigger.relative_to:
        condition += " x baseline"
    rule: dict[str, Any] = {
        "alert": alert_name(phase, trigger),
        "expr": alert_expression(trigger, versions),
    }
    if trigger.for_:
        rule["for"] = format_duration(trigger.for_)
    rule["labels"] = {
        "severity": trigger.severity.value,
        "tgk_deploy_phase": str(phase.phase),
        "tgk_deploy_trigger": trigger.name,
        "tgk_deploy_environment": environment,
    }
    if versions.candidate:
        rule["labels"]["tgk_deploy_candidate"] = versions.candidate
    rule["annotations"] = {
        "summary": f"Phase {phase.phase} ({phase.name}): {what}",
        "description": (
            f'{trigger.name} is {{{{ $value | printf "%.4g" }}}} ({condition}'
            + (f" for {format_duration(trigger.for_)}" if trigger.for_ else "")
            + f"). Declared response: {_response_text(phase, trigger)}."
        ),
        "runbook_url": runbook_url(runbook_base, phase, trigger),
    }
    command = rollback_command(phase, trigger)
    if command:
        rule["annotations"]["rollback_command"] = command
    return rule


def alert_rules(
    spec: Spec,
    *,
    versions: LiveVersions | None = None,
    runbook_base: str = "",
    environment: str = "production",
) -> AlertRules:
    """One group per phase, one alerting rule per trigger.

    Triggers whose queries need live version ids are skipped (with the reason)
    unless ``versions`` gives them. Two triggers may not export the same alert
    name: that is a ConfigError naming both. ``{{environment}}`` in queries is
    rendered to ``environment``, the same value as the rules' environment label.
    """
    versions = (versions or LiveVersions()).model_copy(update={"environment": environment})
    groups: list[dict[str, Any]] = []
    skipped: list[SkippedTrigger] = []
    for phase in spec.phases:
        rules = []
        for trigger in phase.rollback_triggers:
            try:
                rules.append(_rule(phase, trigger, versions, runbook_base, environment))
            except MissingVersion as missing:
                skipped.append(
                    SkippedTrigger(
                        phase=phase.phase,
                        trigger=trigger.name,
                        reason=f"{missing}; pass --candidate/--stable to export it",
                    )
                )
        if rules:
            groups.append({"name": f"tgk-deploy-phase-{phase.phase}-{phase.name}", "rules": rules})
    names = Counter(rule["alert"] for group in groups for rule in group["rules"])
    duplicated = sorted(name for name, count in names.items() if count > 1)
    if duplicated:
        raise ConfigError(
            f"alert name(s) used by more than one trigger: {', '.join(duplicated)}; "
            "give each trigger its own 'alert'"
        )
    return AlertRules(groups=groups, skipped=skipped)


_SAFE_HEADER = re.compile(r"[^\x20-\x7e]")


def render_rules_file(rules: AlertRules) -> str:
    """YAML text for ``promtool check rules``, with a header saying where it came from."""
    import yaml

    header = [
        "# Generated by `tgk-deploy export alerts` from phases/*.yaml; do not edit by hand.",
    ]
    for skip in rules.skipped:
        header.append(
            _SAFE_HEADER.sub("?", f"# skipped phase {skip.phase} {skip.trigger}: {skip.reason}")
        )
    body = yaml.safe_dump(rules.document(), sort_keys=False, width=1000, allow_unicode=False)
    return "\n".join(header) + "\n" + body
