"""The declared rollout: the project file (tgk-deploy.yaml) and one file per phase.

These models are the single definition of what a phase file may say; the JSON
Schema printed by ``tgk-deploy schema`` is generated from them, and the loader
maps their validation errors back to file:line:column.
"""

from __future__ import annotations

import itertools
import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    Strict,
    StringConstraints,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

# --------------------------------------------------------------------------- scalars

_DURATION_PART = re.compile(r"(\d+)(w|d|h|m|s)")
_DURATION_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
DURATION_PATTERN = r"^(0|(\d+[wdhms])+)$"


def parse_duration(value: Any) -> timedelta:
    """'90s', '10m', '1h30m', '2d', '1w' -> timedelta. Bare numbers are refused: units matter.

    Zero needs no unit, so ``0`` and ``"0"`` are the same; ``false`` is not a duration.
    """
    if isinstance(value, timedelta):
        return value
    if type(value) is int and value == 0:
        return timedelta(0)
    if not isinstance(value, str) or not re.fullmatch(DURATION_PATTERN, value.strip()):
        raise ValueError(
            f"{value!r} is not a duration: write a number with a unit, e.g. 30s, 10m, 1h30m, 2d"
        )
    text = value.strip()
    if text == "0":
        return timedelta(0)
    return timedelta(
        seconds=sum(int(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))
    )


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0"
    parts = []
    for unit, size in _DURATION_UNITS.items():
        if seconds >= size:
            count, seconds = divmod(seconds, size)
            parts.append(f"{count}{unit}")
    return "".join(parts)


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string", "pattern": DURATION_PATTERN}, {"const": 0}],
            "examples": ["10m", "48h"],
        }
    ),
]


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than 0 s: nothing can answer in no time")
    return value


PositiveDuration = Annotated[Duration, AfterValidator(_positive)]

ENV_REF_PATTERN = r"^\$\{[A-Z_][A-Z0-9_]*\}$"


def _check_env_ref(value: Any) -> Any:
    if isinstance(value, str) and not re.fullmatch(ENV_REF_PATTERN, value):
        # never echo the value: people paste the credential itself here
        raise ValueError(
            "not an environment-variable reference (value not shown: it may be a credential); "
            "write ${NAME}, NAME in capitals, e.g. ${CLOUDFLARE_ACCOUNT_ID}, and set NAME "
            "in the environment"
        )
    return value


EnvRef = Annotated[
    str,
    BeforeValidator(_check_env_ref),
    WithJsonSchema({"type": "string", "pattern": ENV_REF_PATTERN}),
]
"""``${NAME}``: the value is read from the environment when it is needed, never stored."""


def env_ref_name(ref: str) -> str:
    return ref[2:-1]


Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]
VarName = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{0,63}$")]
# Numbers and flags are strict: `true` is not 1, "10" is not 10, and a threshold of
# .nan or .inf would make a rule that can never fire.
Integer = Annotated[int, Strict()]
Percent = Annotated[int, Strict(), Field(ge=0, le=100)]
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Flag = Annotated[bool, Strict()]


def _var_to_text(value: Any) -> Any:
    """Worker vars are plain_text bindings: booleans and numbers become their text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


VarValue = Annotated[str, BeforeValidator(_var_to_text)]


Rationale = Annotated[
    str,
    StringConstraints(min_length=1),
    Field(
        description="why this departs from the RFC (ALC-RFC-006); shown in plan, runbooks, status"
    ),
]
"""Where a phase file departs from the user's RFC, it says why, in the file."""


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --------------------------------------------------------------------------- triggers


class Comparison(StrEnum):
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    EQ = "=="
    NE = "!="

    def holds(self, value: float, threshold: float) -> bool:
        return {
            "<": value < threshold,
            "<=": value <= threshold,
            ">": value > threshold,
            ">=": value >= threshold,
            "==": value == threshold,
            "!=": value != threshold,
        }[self.value]


class Severity(StrEnum):
    """How loud an event is. Checks use the RFC's levels: critical, high, medium.

    ``warning`` and ``info`` are for notifications that are no check (an approval
    waiting, a phase complete); a check may not declare them (``CheckSeverity``).
    """

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    WARNING = "warning"
    INFO = "info"


CHECK_SEVERITIES = (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM)


def _rfc_severity(value: Severity) -> Severity:
    if value not in CHECK_SEVERITIES:
        raise ValueError(
            f"severity {value.value!r} is not one of the RFC's levels: "
            + ", ".join(s.value for s in CHECK_SEVERITIES)
        )
    return value


CheckSeverity = Annotated[
    Severity,
    AfterValidator(_rfc_severity),
    WithJsonSchema({"type": "string", "enum": [s.value for s in CHECK_SEVERITIES]}),
]
"""The RFC's severities (ALC-RFC-006, Alert Rules): the only ones a check may declare."""


QUERY_PLACEHOLDERS = ("candidate", "stable", "environment")
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


def _check_placeholders(query: Any) -> Any:
    if not isinstance(query, str):
        return query  # the str validation after this one says what is wrong
    unknown = sorted({m for m in _PLACEHOLDER.findall(query) if m not in QUERY_PLACEHOLDERS})
    if unknown:
        raise ValueError(
            f"unknown placeholder(s) {', '.join(unknown)}; known: "
            + ", ".join("{{" + p + "}}" for p in QUERY_PLACEHOLDERS)
        )
    return query


class _PromQLMark:
    """Marks a field as PromQL: ``validate`` parses every field so marked (spec/promql.py)."""

    def __repr__(self) -> str:
        return "PROMQL"


PROMQL = _PromQLMark()
PromQL = Annotated[
    str, StringConstraints(min_length=1), BeforeValidator(_check_placeholders), PROMQL
]


class MinimumSample(StrictModel):
    """Below this many events the numbers say nothing: the verdict is inconclusive."""

    query: PromQL = Field(description="PromQL returning the number of events in the window")
    count: Number = Field(gt=0)


class MetricCheck(StrictModel):
    """A PromQL query compared with a threshold.

    As a success criterion it passes when ``value <op> threshold`` holds; as a
    rollback trigger it fires when it holds. With ``relative_to`` the threshold
    is a factor of that query's value (candidate vs stable over the same window).
    Queries may use ``{{candidate}}`` and ``{{stable}}`` (the live version ids)
    and ``{{environment}}`` (the environment the gate judges, e.g. production).
    """

    name: Slug
    description: str = ""
    query: PromQL
    op: Comparison
    threshold: Number
    relative_to: PromQL | None = None
    for_: Duration | None = Field(default=None, alias="for")
    min_sample: MinimumSample | None = None
    severity: CheckSeverity = Severity.CRITICAL
    rationale: Rationale | None = None


class ResponseKind(StrEnum):
    HALT = "halt"
    FEATURE_ROLLBACK = "feature-rollback"
    IMMEDIATE_ROLLBACK = "immediate-rollback"
    GRADUAL_ROLLBACK = "gradual-rollback"


def _response_shorthand(value: Any) -> Any:
    return {"action": value} if isinstance(value, str) else value


class Response(StrictModel):
    """What happens when a rollback trigger fires."""

    action: ResponseKind
    feature: Slug | None = None

    @model_validator(mode="after")
    def _feature_only_for_feature_rollback(self) -> Response:
        if self.action is ResponseKind.FEATURE_ROLLBACK and not self.feature:
            raise ValueError("feature-rollback needs 'feature': the feature to switch off")
        if self.action is not ResponseKind.FEATURE_ROLLBACK and self.feature:
            raise ValueError(f"'feature' only goes with feature-rollback, not {self.action}")
        return self


ResponseSpec = Annotated[Response, BeforeValidator(_response_shorthand)]


class Trigger(MetricCheck):
    """A rollback trigger; ``response`` overrides the phase's ``on_trigger``."""

    response: ResponseSpec | None = None
    alert: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Za-z0-9]*$")] | None = Field(
        default=None,
        description="name of the Prometheus alert `export alerts` writes for this trigger "
        "(default: Tgk + phase + trigger name in CamelCase, e.g. TgkPhase1RoutingErrors)",
    )


# --------------------------------------------------------------------------- actions


class DeployParams(StrictModel):
    percentage: Percent = Field(description="share of traffic the new version takes")
    vars: dict[VarName, VarValue] = Field(
        default_factory=dict, description="vars the new version sets on top of the stable one's"
    )
    baseline: Flag = Field(
        default=False,
        description="the new version is the stable version this phase's rollbacks return to, "
        "never its candidate (phase 1's bridge: the existing system's behaviour, now measured)",
    )


class TrafficParams(StrictModel):
    percentage: Percent = Field(description="share of traffic for this phase's candidate")


class PutSecretParams(StrictModel):
    name: VarName
    from_env: VarName | None = None
    from_file: str | None = None

    @model_validator(mode="after")
    def _exactly_one_source(self) -> PutSecretParams:
        if (self.from_env is None) == (self.from_file is None):
            raise ValueError(
                "give exactly one of from_env or from_file; secret values are never inline"
            )
        return self


class DeleteSecretParams(StrictModel):
    name: VarName


class EmailRuleParams(StrictModel):
    rule: Literal["worker", "legacy"]
    enabled: Flag


class ExportD1Params(StrictModel):
    database: Slug = Field(description="a key of the project's d1 databases")


class ApprovalParams(StrictModel):
    message: str = Field(min_length=1)
    checklist: list[Annotated[str, StringConstraints(min_length=1)]] = Field(
        default_factory=list,
        description="what the approver confirms by hand (what no metric can say); "
        "shown by plan and approve, recorded in the journal with the approval",
    )


class SmokeParams(StrictModel):
    """Nothing to set: the smoke check always tests the version the step is about to send traffic to."""


class DeployAction(StrictModel):
    """Upload the bundle as a new version and send it ``percentage`` of traffic."""

    deploy: DeployParams


class TrafficAction(StrictModel):
    """Move traffic between this phase's candidate and the stable version."""

    traffic: TrafficParams


class PutSecretAction(StrictModel):
    put_secret: PutSecretParams


class DeleteSecretAction(StrictModel):
    delete_secret: DeleteSecretParams


class SetVarsAction(StrictModel):
    """Flip flags on the live versions through an inheriting version."""

    set_vars: dict[VarName, VarValue] = Field(min_length=1)


class EmailRuleAction(StrictModel):
    email_rule: EmailRuleParams


class ExportD1Action(StrictModel):
    """Back up a D1 database to a local SQL file before a risky step."""

    export_d1: ExportD1Params


class ApprovalAction(StrictModel):
    """Wait for ``tgk-deploy approve``; must be a step's first action."""

    approval: ApprovalParams


class SmokeAction(StrictModel):
    """Run the Worker's self-test (POST /selftest) on the candidate before it gets traffic.

    Declared before the step's ``deploy`` or ``traffic``: the candidate is put in the
    deployment at 0 % (so Cloudflare-Workers-Version-Overrides can reach it), its
    self-test must pass for every route, and only then does traffic move.
    """

    smoke: SmokeParams


ACTION_MODELS: dict[str, type[StrictModel]] = {
    "deploy": DeployAction,
    "traffic": TrafficAction,
    "put_secret": PutSecretAction,
    "delete_secret": DeleteSecretAction,
    "set_vars": SetVarsAction,
    "email_rule": EmailRuleAction,
    "export_d1": ExportD1Action,
    "approval": ApprovalAction,
    "smoke": SmokeAction,
}


def _action_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        keys = list(value)
        return keys[0] if len(keys) == 1 and keys[0] in ACTION_MODELS else None
    if isinstance(value, StrictModel):
        return next(iter(type(value).model_fields))
    return None


Action = Annotated[
    Annotated[DeployAction, Tag("deploy")]
    | Annotated[TrafficAction, Tag("traffic")]
    | Annotated[PutSecretAction, Tag("put_secret")]
    | Annotated[DeleteSecretAction, Tag("delete_secret")]
    | Annotated[SetVarsAction, Tag("set_vars")]
    | Annotated[EmailRuleAction, Tag("email_rule")]
    | Annotated[ExportD1Action, Tag("export_d1")]
    | Annotated[ApprovalAction, Tag("approval")]
    | Annotated[SmokeAction, Tag("smoke")],
    Discriminator(
        _action_kind,
        custom_error_type="action_kind",
        custom_error_message=(
            "an action is a mapping with exactly one key, one of: " + ", ".join(ACTION_MODELS)
        ),
    ),
]


def action_kind(action: StrictModel) -> str:
    return next(iter(type(action).model_fields))


# --------------------------------------------------------------------------- phases


class Risk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


StepId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,27}$")]


class Step(StrictModel):
    id: StepId = Field(description="short: it is written into Cloudflare's 50-character annotation")
    description: str = ""
    environment: Slug = "production"
    actions: list[Action] = Field(default_factory=list)
    bake: Duration = Field(
        default=timedelta(0), description="minimum time after this step before the next one"
    )
    require_success: Flag = Field(
        default=False, description="the phase's success criteria must pass before this step"
    )
    rationale: Rationale | None = None

    @field_validator("actions")
    @classmethod
    def _approval_first(cls, actions: list[StrictModel]) -> list[StrictModel]:
        for index, action in enumerate(actions):
            if isinstance(action, ApprovalAction) and index != 0:
                # ``at`` points the loader at the approval itself, not at ``actions:``
                raise PydanticCustomError(
                    "approval_not_first",
                    "an approval must be the step's first action (this is action {number})",
                    {"number": index + 1, "at": (index, "approval")},
                )
        _smoke_before_traffic(actions)
        return actions

    @property
    def approval(self) -> ApprovalParams | None:
        first = self.actions[0] if self.actions else None
        return first.approval if isinstance(first, ApprovalAction) else None


def _smoke_before_traffic(actions: list[StrictModel]) -> None:
    """A smoke check tests the candidate before traffic moves: a deploy or traffic must follow it."""
    for index, action in enumerate(actions):
        if not isinstance(action, SmokeAction):
            continue
        later = actions[index + 1 :]
        moves = [
            a
            for a in later
            if isinstance(a, TrafficAction)
            or (isinstance(a, DeployAction) and not a.deploy.baseline)
        ]
        if not moves:
            raise PydanticCustomError(
                "smoke_without_traffic",
                "a smoke check must come before the step's deploy or traffic action: it tests "
                "the candidate before that action gives it traffic (this is action {number})",
                {"number": index + 1, "at": (index, "smoke")},
            )


class Phase(StrictModel):
    schema_: str | None = Field(default=None, alias="$schema", exclude=True)
    phase: Integer = Field(ge=1, description="the phase number; phases run in order")
    name: Slug
    summary: str
    risk: Risk
    rationale: Rationale | None = None
    requires: list[Integer] = Field(default_factory=list)
    features: list[Slug] = Field(
        default_factory=list,
        description="features this phase switches on; its rollback switches them off",
    )
    steps: list[Step] = Field(min_length=1)
    success_criteria: list[MetricCheck] = Field(default_factory=list)
    rollback_triggers: list[Trigger] = Field(default_factory=list)
    on_trigger: ResponseSpec = Field(
        default_factory=lambda: Response(action=ResponseKind.IMMEDIATE_ROLLBACK)
    )

    def step_index(self, step_id: str) -> int:
        return next(i for i, step in enumerate(self.steps) if step.id == step_id)

    def response_for(self, trigger: Trigger) -> Response:
        return trigger.response or self.on_trigger


def alert_name(phase: Phase, trigger: Trigger) -> str:
    """The trigger's declared ``alert``, else Tgk + Phase<N> + CamelCase of its name.

    Here, beside the models, because validate checks names are unique across phases.
    """
    if trigger.alert:
        return trigger.alert
    camel = "".join(part.capitalize() for part in trigger.name.split("-"))
    return f"TgkPhase{phase.phase}{camel}"


# --------------------------------------------------------------------------- project


class EnvironmentSpec(StrictModel):
    script: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s/]+(/\S*)?$")] | None = Field(
        default=None,
        description="where the Worker answers HTTP (its self-test for `smoke`); default: "
        "https:// and the first route or custom domain of this environment in wrangler.toml",
    )


class EmailRoutingSpec(StrictModel):
    zone_id: EnvRef
    worker_rule: str = Field(min_length=1, description="name of the rule that sends to the worker")
    legacy_rule: str = Field(min_length=1, description="name of the legacy router's rule")


class PrometheusSpec(StrictModel):
    url: EnvRef
    bearer_token: EnvRef | None = None
    username: EnvRef | None = None
    password: EnvRef | None = None
    timeout: PositiveDuration = timedelta(seconds=10)
    recording_rules: Flag = Field(
        default=False,
        description="gates read the series of `tgk-deploy export recording-rules` when "
        "Prometheus has them (raw queries otherwise): one light request per window shape",
    )


class FeatureSpec(StrictModel):
    """A feature and how to switch it off: its secrets are deleted, its vars set."""

    description: str = ""
    secrets: list[VarName] = Field(default_factory=list)
    off_vars: dict[VarName, VarValue] = Field(default_factory=dict)
    depends_on: list[Slug] = Field(
        default_factory=list,
        description="features this one needs: switching one of them off switches this one off too",
    )

    @model_validator(mode="after")
    def _has_a_switch(self) -> FeatureSpec:
        if not self.secrets and not self.off_vars:
            raise ValueError("a feature needs secrets or off_vars, or nothing switches it off")
        return self


class D1Spec(StrictModel):
    name: str
    database_id: EnvRef


class R2Spec(StrictModel):
    bucket: str


class SmokeSpec(StrictModel):
    """How ``smoke`` reaches the Worker's self-test (POST /selftest on the environment's url)."""

    token: EnvRef = Field(
        default="${TGK_SMOKE_TOKEN}",
        description="the bearer token: the value of the Worker's SMOKE_TOKEN secret",
    )
    timeout: PositiveDuration = Field(default=timedelta(seconds=10), description="per request")
    attempts: Annotated[int, Strict(), Field(ge=1, le=10)] = Field(
        default=3,
        description="tries while Cloudflare has not yet applied the version override "
        "(it can take a couple of seconds after a deployment)",
    )
    retry_interval: Duration = Field(default=timedelta(seconds=2))


class GradualRollbackSpec(StrictModel):
    steps: list[Percent] = Field(default_factory=lambda: [75, 50, 25, 0], min_length=1)
    interval: Duration = Field(
        default=timedelta(minutes=30),
        description="time between traffic moves (the RFC's gradual rollback takes 1-4 hours)",
    )

    @field_validator("steps")
    @classmethod
    def _descending_to_zero(cls, steps: list[int]) -> list[int]:
        if any(b >= a for a, b in itertools.pairwise(steps)):
            raise ValueError("gradual rollback steps must strictly decrease")
        if steps[-1] != 0:
            raise ValueError("gradual rollback must end at 0 % for the candidate")
        return steps


class RollbackSpec(StrictModel):
    gradual: GradualRollbackSpec = Field(default_factory=GradualRollbackSpec)


class NotificationEvent(StrEnum):
    """What tgk-deploy tells people about (Slack, PagerDuty)."""

    TRIGGER_FIRED = "trigger-fired"
    ROLLBACK_STARTED = "rollback-started"
    ROLLBACK_FINISHED = "rollback-finished"
    PHASE_COMPLETE = "phase-complete"
    APPROVAL_NEEDED = "approval-needed"


class SlackSpec(StrictModel):
    """A Slack incoming webhook; unset variable = Slack is skipped."""

    webhook_url: EnvRef
    events: list[NotificationEvent] = Field(
        default_factory=lambda: list(NotificationEvent),
        description="the events posted (default: all)",
    )


class PagerDutySpec(StrictModel):
    """PagerDuty Events API v2; unset variable = PagerDuty is skipped."""

    routing_key: EnvRef = Field(description="the integration key of the service")
    url: Annotated[str, StringConstraints(pattern=r"^https?://")] = Field(
        default="https://events.pagerduty.com/v2/enqueue"
    )
    events: list[NotificationEvent] = Field(
        default_factory=lambda: [
            NotificationEvent.TRIGGER_FIRED,
            NotificationEvent.ROLLBACK_STARTED,
            NotificationEvent.ROLLBACK_FINISHED,
        ],
        description="the events sent (default: the ones worth waking someone for)",
    )


class NotificationsSpec(StrictModel):
    """Where to tell people; sending never blocks or fails a rollback beyond ``timeout``."""

    slack: SlackSpec | None = None
    pagerduty: PagerDutySpec | None = None
    timeout: PositiveDuration = Field(
        default=timedelta(seconds=2), description="total time allowed for all sends together"
    )


MetricName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")]


class MetricsSpec(StrictModel):
    """Which series queries may read: the Worker's own table, plus declared outsiders."""

    source: str = Field(
        default="src/metrics.js",
        description="the Worker file declaring its metrics, relative to the bundle folder",
    )
    external: list[MetricName] = Field(
        default_factory=list,
        description="series from other exporters that queries may read, e.g. up",
    )


class Project(StrictModel):
    schema_: str | None = Field(default=None, alias="$schema", exclude=True)
    account_id: EnvRef
    environments: dict[Slug, EnvironmentSpec]
    bundle: str = Field(default="wrangler", description="folder holding wrangler.toml and src/")
    email_routing: EmailRoutingSpec
    prometheus: PrometheusSpec
    features: dict[Slug, FeatureSpec] = Field(default_factory=dict)
    d1: dict[Slug, D1Spec] = Field(default_factory=dict)
    r2: dict[Slug, R2Spec] = Field(default_factory=dict)
    rollback: RollbackSpec = Field(default_factory=RollbackSpec)
    smoke: SmokeSpec = Field(default_factory=SmokeSpec)
    notifications: NotificationsSpec | None = None
    runbook_base_url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$")] | None = Field(
        default=None,
        description="where runbooks/ is published, e.g. https://github.com/org/repo/blob/main/; "
        "exported alerts link their runbook section there (absolute links)",
    )
    metrics: MetricsSpec = Field(default_factory=MetricsSpec)
    phases_dir: str = Field(default="phases")
    journal: str = Field(default=".tgk-deploy/journal.sqlite")

    @field_validator("features")
    @classmethod
    def _dependencies_known(cls, features: dict[str, FeatureSpec]) -> dict[str, FeatureSpec]:
        for name, feature in features.items():
            unknown = [d for d in feature.depends_on if d not in features or d == name]
            if unknown:
                raise ValueError(
                    f"feature {name!r} depends_on {', '.join(unknown)}: not another feature here"
                )
        return features

    def features_switched_off_with(self, names: list[str]) -> list[str]:
        """``names`` and every feature that depends on one of them, in a stable order."""
        result = list(dict.fromkeys(names))
        for name in result:  # grows while iterating: dependents of dependents too
            result += [
                other
                for other, feature in self.features.items()
                if name in feature.depends_on and other not in result
            ]
        return result

    @field_validator("environments")
    @classmethod
    def _production_exists(cls, envs: dict[str, EnvironmentSpec]) -> dict[str, EnvironmentSpec]:
        if "production" not in envs:
            raise ValueError("an environment named 'production' is required")
        return envs


class Spec(StrictModel):
    """The project and its phases, cross-checked; what the planner takes."""

    project: Project
    phases: list[Phase]

    def phase(self, number: int) -> Phase:
        for phase in self.phases:
            if phase.phase == number:
                return phase
        raise KeyError(number)
