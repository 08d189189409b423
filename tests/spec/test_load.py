"""Loading the spec: a malformed file is reported at file:line:column with its field, exit 2.

Each case below is a whole phase or project file an operator could write; the
test names the line and field the error must point at.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.spec import REPO
from tgk_deploy.errors import SpecError
from tgk_deploy.spec.load import load_spec, validate_paths
from tgk_deploy.spec.models import parse_duration

VALID_PHASE = """\
phase: 1
name: foundation
summary: the first phase
risk: high
steps:
  - id: staging
    environment: staging
    actions:
      - deploy: {percentage: 100}
    bake: 24h
  - id: canary
    actions:
      - deploy: {percentage: 10}
    bake: 48h
rollback_triggers:
  - name: delivery-rate-low
    query: sum(rate(tgk_email_delivery_total[5m]))
    op: "<"
    threshold: 0.995
    for: 10m
on_trigger: immediate-rollback
"""

# (case id, file text, line of the problem, field path it names, words of the message)
MALFORMED_PHASES = [
    ("yaml-syntax", VALID_PHASE.replace("risk: high", "risk: [high"), None, "", "YAML"),
    ("empty-file", "", 1, "", "empty"),
    ("top-level-list", "- phase: 1\n", 1, "", "mapping"),
    ("missing-name", VALID_PHASE.replace("name: foundation\n", ""), 1, "name", "missing"),
    ("missing-steps", VALID_PHASE.split("steps:")[0], 1, "steps", "missing"),
    (
        "phase-zero",
        VALID_PHASE.replace("phase: 1", "phase: 0"),
        1,
        "phase",
        "greater than or equal",
    ),
    ("phase-not-int", VALID_PHASE.replace("phase: 1", "phase: one"), 1, "phase", "integer"),
    ("unknown-top-field", VALID_PHASE + "owner: bob\n", 22, "owner", "unknown field"),
    ("bad-risk", VALID_PHASE.replace("risk: high", "risk: extreme"), 4, "risk", "low"),
    (
        "name-not-slug",
        VALID_PHASE.replace("name: foundation", "name: Foundation Phase"),
        2,
        "name",
        "pattern",
    ),
    ("empty-steps", VALID_PHASE.split("steps:")[0] + "steps: []\n", 5, "steps", "at least 1"),
    (
        "step-without-id",
        VALID_PHASE.replace("  - id: canary\n", "  - description: x\n"),
        11,
        "steps[1].id",
        "missing",
    ),
    (
        "duplicate-step-id",
        VALID_PHASE.replace("id: canary", "id: staging"),
        11,
        "steps[1].id",
        "duplicate step id",
    ),
    (
        "percentage-over-100",
        VALID_PHASE.replace("percentage: 10}", "percentage: 110}"),
        13,
        "steps[1].actions[0].deploy.percentage",
        "less than or equal to 100",
    ),
    (
        "percentage-negative",
        VALID_PHASE.replace("percentage: 10}", "percentage: -5}"),
        13,
        "steps[1].actions[0].deploy.percentage",
        "greater than or equal to 0",
    ),
    (
        "percentage-text",
        VALID_PHASE.replace("percentage: 10}", "percentage: ten}"),
        13,
        "steps[1].actions[0].deploy.percentage",
        "integer",
    ),
    (
        "unknown-action",
        VALID_PHASE.replace("- deploy: {percentage: 10}", "- rollout: {percentage: 10}"),
        13,
        "steps[1].actions[0]",
        "exactly one key",
    ),
    (
        "two-keys-in-action",
        VALID_PHASE.replace(
            "- deploy: {percentage: 10}", "- {deploy: {percentage: 10}, traffic: {percentage: 5}}"
        ),
        13,
        "steps[1].actions[0]",
        "exactly one key",
    ),
    (
        "bake-without-unit",
        VALID_PHASE.replace("bake: 48h", "bake: 48"),
        14,
        "steps[1].bake",
        "duration",
    ),
    (
        "bake-bad-unit",
        VALID_PHASE.replace("bake: 48h", "bake: 2 days"),
        14,
        "steps[1].bake",
        "duration",
    ),
    (
        "trigger-bad-op",
        VALID_PHASE.replace('op: "<"', 'op: "=<"'),
        18,
        "rollback_triggers[0].op",
        "<",
    ),
    (
        "trigger-threshold-text",
        VALID_PHASE.replace("threshold: 0.995", "threshold: high"),
        19,
        "rollback_triggers[0].threshold",
        "number",
    ),
    (
        "trigger-empty-query",
        VALID_PHASE.replace("query: sum(rate(tgk_email_delivery_total[5m]))", 'query: ""'),
        17,
        "rollback_triggers[0].query",
        "at least 1",
    ),
    (
        "trigger-bad-for",
        VALID_PHASE.replace("for: 10m", "for: soon"),
        20,
        "rollback_triggers[0].for",
        "duration",
    ),
    (
        "trigger-unknown-placeholder",
        VALID_PHASE.replace("[5m]))", '{version=\\"{{canary}}\\"}[5m]))'),
        17,
        "rollback_triggers[0].query",
        "placeholder",
    ),
    (
        "bad-response",
        VALID_PHASE.replace("on_trigger: immediate-rollback", "on_trigger: panic"),
        21,
        "on_trigger",
        "'halt'",
    ),
    (
        "feature-rollback-without-feature",
        VALID_PHASE.replace("on_trigger: immediate-rollback", "on_trigger: feature-rollback"),
        21,
        "on_trigger",
        "needs 'feature'",
    ),
    (
        "inline-secret-value",
        VALID_PHASE.replace(
            "      - deploy: {percentage: 100}",
            "      - put_secret: {name: OPENAI_API_KEY, value: sk-123}",
        ),
        9,
        "steps[0].actions[0].put_secret.value",
        "use from_env: NAME",
    ),
    (
        "secret-without-source",
        VALID_PHASE.replace(
            "      - deploy: {percentage: 100}", "      - put_secret: {name: OPENAI_API_KEY}"
        ),
        9,
        "steps[0].actions[0].put_secret",
        "exactly one of from_env or from_file",
    ),
    (
        "secret-lowercase-name",
        VALID_PHASE.replace(
            "      - deploy: {percentage: 100}",
            "      - put_secret: {name: openai, from_env: OPENAI}",
        ),
        9,
        "steps[0].actions[0].put_secret.name",
        "pattern",
    ),
    (
        "email-rule-unknown",
        VALID_PHASE.replace(
            "      - deploy: {percentage: 100}",
            "      - email_rule: {rule: primary, enabled: true}",
        ),
        9,
        "steps[0].actions[0].email_rule.rule",
        "worker",
    ),
    (
        "email-rule-enabled-text",
        VALID_PHASE.replace(
            "      - deploy: {percentage: 100}",
            "      - email_rule: {rule: worker, enabled: maybe}",
        ),
        9,
        "steps[0].actions[0].email_rule.enabled",
        "boolean",
    ),
    (
        "approval-not-first",
        VALID_PHASE.replace(
            "      - deploy: {percentage: 10}",
            "      - deploy: {percentage: 10}\n      - approval: {message: ok}",
        ),
        14,
        "steps[1].actions[1].approval",
        "first action",
    ),
    (
        "traffic-before-deploy",
        VALID_PHASE.replace(
            "      - deploy: {percentage: 100}\n    bake: 24h",
            "      - traffic: {percentage: 50}\n    bake: 24h",
        ),
        9,
        "steps[0].actions[0].traffic",
        "no earlier step",
    ),
    (
        "duplicate-key",
        VALID_PHASE.replace("bake: 24h", "bake: 24h\n    bake: 12h"),
        11,
        "steps[0].bake",
        "duplicate key",
    ),
    (
        "duplicate-trigger-name",
        VALID_PHASE.replace(
            "on_trigger",
            "  - name: delivery-rate-low\n    query: up\n    op: '<'\n    threshold: 1\non_trigger",
        ),
        21,
        "rollback_triggers[1].name",
        "duplicate name",
    ),
    (
        "set-vars-empty",
        VALID_PHASE.replace("      - deploy: {percentage: 100}", "      - set_vars: {}"),
        9,
        "steps[0].actions[0].set_vars",
        "at least 1",
    ),
    (
        "var-lowercase",
        VALID_PHASE.replace(
            "      - deploy: {percentage: 100}", "      - set_vars: {ai_analysis: true}"
        ),
        9,
        "steps[0].actions[0].set_vars.ai_analysis",
        "pattern",
    ),
    (
        "min-sample-zero",
        VALID_PHASE.replace("    for: 10m", "    for: 10m\n    min_sample: {query: up, count: 0}"),
        21,
        "rollback_triggers[0].min_sample.count",
        "greater than 0",
    ),
]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def only_problem(path: Path):
    with pytest.raises(SpecError) as caught:
        validate_paths([path])
    return caught.value.problems


def test_the_valid_example_is_valid(tmp_path):
    _, phases = validate_paths([write(tmp_path, "1-foundation.yaml", VALID_PHASE)])
    assert [p.name for p in phases] == ["foundation"]


def test_there_are_at_least_thirty_hand_written_cases():
    assert len(MALFORMED_PHASES) >= 30


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [c[1:] for c in MALFORMED_PHASES],
    ids=[c[0] for c in MALFORMED_PHASES],
)
def test_malformed_phase_is_located_precisely(tmp_path, text, line, field, words):
    path = write(tmp_path, "1-foundation.yaml", text)
    problems = only_problem(path)
    assert problems, "a malformed file must give at least one problem"
    matching = [p for p in problems if p.field == field and words.lower() in p.message.lower()]
    assert matching, f"expected {field!r} with {words!r}, got: {[str(p) for p in problems]}"
    problem = matching[0]
    assert problem.file == str(path)
    if line is not None:
        assert problem.line == line, str(problem)
    assert re.match(rf"{re.escape(str(path))}:\d+:\d+: ", str(problem))


# --------------------------------------------------------------------------- cross-file


def phases_dir(tmp_path: Path, **files: str) -> Path:
    directory = tmp_path / "phases"
    directory.mkdir()
    for name, text in files.items():
        (directory / f"{name}.yaml").write_text(text)
    return directory


def second_phase(**changes: str) -> str:
    text = VALID_PHASE.replace("phase: 1", "phase: 2").replace("name: foundation", "name: second")
    for old, new in changes.items():
        text = text.replace(old, new)
    return text


def test_phase_numbers_must_be_unique(tmp_path):
    directory = phases_dir(tmp_path, **{"1-a": VALID_PHASE, "1-b": VALID_PHASE})
    problems = only_problem(directory)
    assert any("also in" in p.message and p.field == "phase" and p.line == 1 for p in problems)


def test_phase_numbers_must_not_leave_gaps(tmp_path):
    third = VALID_PHASE.replace("phase: 1", "phase: 3")
    directory = phases_dir(tmp_path, **{"1-a": VALID_PHASE, "3-c": third})
    assert any("missing: 2" in p.message for p in only_problem(directory))


def test_requires_must_name_an_existing_earlier_phase(tmp_path):
    bad = second_phase(**{"risk: high": "risk: high\nrequires: [1, 2, 7]"})
    problems = only_problem(phases_dir(tmp_path, **{"1-a": VALID_PHASE, "2-b": bad}))
    fields = {p.field: p.message for p in problems}
    assert "same phase" in fields["requires[1]"]
    assert "cannot require a later" in fields["requires[2]"]


def test_file_name_number_must_match_the_phase(tmp_path):
    problems = only_problem(write(tmp_path, "2-foundation.yaml", VALID_PHASE))
    assert any("file name says phase 2" in p.message for p in problems)


def project_text(**changes: str) -> str:
    text = (REPO / "tgk-deploy.yaml").read_text()
    for old, new in changes.items():
        assert old in text, old
        text = text.replace(old, new)
    return text.replace("bundle: wrangler\n", f"bundle: {REPO / 'wrangler'}\n")


def spec_problems(tmp_path: Path, project: str, phases: dict[str, str]):
    (tmp_path / "tgk-deploy.yaml").write_text(project)
    phases_dir(tmp_path, **phases)
    with pytest.raises(SpecError) as caught:
        load_spec(tmp_path / "tgk-deploy.yaml")
    return caught.value.problems


def test_features_named_by_phases_must_exist_in_the_project(tmp_path):
    phase = VALID_PHASE.replace("risk: high", "risk: high\nfeatures: [teleport]").replace(
        "on_trigger: immediate-rollback", "on_trigger: {action: feature-rollback, feature: warp}"
    )
    problems = spec_problems(tmp_path, project_text(), {"1-a": phase})
    fields = {p.field: p for p in problems}
    assert "unknown feature 'teleport'" in fields["features[0]"].message
    assert fields["features[0]"].line == 5
    assert "unknown feature 'warp'" in fields["on_trigger.feature"].message


def test_step_environments_must_exist_in_the_project(tmp_path):
    phase = VALID_PHASE.replace("environment: staging", "environment: qa")
    (problem,) = spec_problems(tmp_path, project_text(), {"1-a": phase})
    assert (problem.field, problem.line) == ("steps[0].environment", 7)


def test_d1_exports_must_name_a_project_database(tmp_path):
    phase = VALID_PHASE.replace(
        "      - deploy: {percentage: 10}",
        "      - export_d1: {database: other}\n      - deploy: {percentage: 10}",
    )
    (problem,) = spec_problems(tmp_path, project_text(), {"1-a": phase})
    assert problem.field == "steps[1].actions[0].export_d1.database" and problem.line == 13


PROJECT_CASES = [
    (
        "account-literal",
        {"account_id: ${CLOUDFLARE_ACCOUNT_ID}": "account_id: 0123abcd"},
        "account_id",
        "environment-variable reference",
    ),
    (
        "env-ref-lowercase",
        {"url: ${PROMETHEUS_URL}": "url: ${prometheus_url}"},
        "prometheus.url",
        "NAME",
    ),
    (
        "no-production",
        {"  production:\n    script: tgk-email-orchestrator\n": ""},
        "environments",
        "production",
    ),
    ("bad-timeout", {"timeout: 10s": "timeout: ten"}, "prometheus.timeout", "duration"),
    (
        "feature-without-switch",
        {"    off_vars: {EMAIL_REPLIES: false}\n": ""},
        "features.email-replies",
        "nothing switches it off",
    ),
    (
        "gradual-not-descending",
        {"steps: [75, 50, 25, 0]": "steps: [50, 75, 0]"},
        "rollback.gradual.steps",
        "strictly decrease",
    ),
    (
        "gradual-not-to-zero",
        {"steps: [75, 50, 25, 0]": "steps: [75, 50]"},
        "rollback.gradual.steps",
        "end at 0",
    ),
    (
        "unknown-project-field",
        {"bundle: wrangler": "bundle: wrangler\nregion: eu"},
        "region",
        "unknown field",
    ),
]


@pytest.mark.parametrize(
    ("changes", "field", "words"), [c[1:] for c in PROJECT_CASES], ids=[c[0] for c in PROJECT_CASES]
)
def test_malformed_project_file_is_located(tmp_path, changes, field, words):
    problems = spec_problems(tmp_path, project_text(**changes), {"1-a": VALID_PHASE})
    matching = [p for p in problems if p.field == field and words in p.message]
    assert matching, [str(p) for p in problems]
    assert matching[0].file.endswith("tgk-deploy.yaml") and matching[0].line > 1


def test_every_problem_of_every_file_is_reported_at_once(tmp_path):
    bad_one = VALID_PHASE.replace("risk: high", "risk: extreme").replace("bake: 48h", "bake: 48")
    bad_two = second_phase(**{"percentage: 10}": "percentage: 300}"})
    problems = spec_problems(
        tmp_path, project_text(**{"timeout: 10s": "timeout: x"}), {"1-a": bad_one, "2-b": bad_two}
    )
    assert len({p.file for p in problems}) == 3 and len(problems) >= 4


# --------------------------------------------------------------------------- generated


def _paths(data, prefix=()):
    if isinstance(data, dict):
        for key, value in data.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield (*prefix, index)
            yield from _paths(value, (*prefix, index))


VALID_DATA = yaml.safe_load(VALID_PHASE)
REQUIRED_OR_TYPED = [
    p
    for p in _paths(VALID_DATA)
    if isinstance(p[-1], str) and p[-1] not in ("for", "bake", "on_trigger")
]
WRONG_VALUES = st.one_of(
    st.just(None),
    st.lists(st.integers(), min_size=1, max_size=2),
    st.dictionaries(st.sampled_from(["zzz", "bogus"]), st.integers(), min_size=1, max_size=1),
    st.just(-1),
)


def _set(data, path, value):
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(path=st.sampled_from(REQUIRED_OR_TYPED), value=WRONG_VALUES)
def test_generated_corruptions_are_reported_with_file_and_line(tmp_path, path, value):
    data = yaml.safe_load(VALID_PHASE)
    _set(data, path, value)
    text = yaml.safe_dump(data, sort_keys=False)
    target = tmp_path / "1-generated.yaml"
    target.write_text(text)
    try:
        validate_paths([target])
    except SpecError as error:
        for problem in error.problems:
            assert problem.file == str(target)
            assert 1 <= problem.line <= text.count("\n") + 1
            assert re.match(rf"{re.escape(str(target))}:\d+:\d+: ", str(problem))
        return
    # some corruptions are legitimately valid (e.g. a description that is a string anyway)
    assert value is not None or path[-1] in ("description",)


@given(st.text(max_size=12))
def test_durations_without_units_are_never_accepted(text):
    if re.fullmatch(r"(0|(\d+[wdhms])+)", text.strip()):
        parse_duration(text)
    else:
        with pytest.raises(ValueError):
            parse_duration(text)


def test_durations_parse_in_every_unit():
    assert parse_duration("1w2d3h4m5s").total_seconds() == 604800 + 2 * 86400 + 3 * 3600 + 245


def test_the_project_spec_files_are_valid():
    spec = load_spec(REPO / "tgk-deploy.yaml")
    assert [p.phase for p in spec.phases] == [1, 2, 3, 4, 5]


def test_every_phase_file_points_editors_at_the_schema():
    for path in sorted((REPO / "phases").glob("*.yaml")):
        assert path.read_text().startswith(
            "# yaml-language-server: $schema=../schemas/phase.schema.json\n"
        )
    assert (
        (REPO / "tgk-deploy.yaml")
        .read_text()
        .startswith("# yaml-language-server: $schema=./schemas/project.schema.json\n")
    )


def test_multiline_yaml_errors_still_name_the_line(tmp_path):
    text = textwrap.dedent(
        """\
        phase: 1
        name: x
        summary: "unterminated
        risk: low
        """
    )
    problems = only_problem(write(tmp_path, "1-x.yaml", text))
    assert problems[0].message.startswith("YAML") and problems[0].line >= 3


# --------------------------------------------------------------------------- cross-file, located


def test_a_phase_number_collision_is_reported_on_both_files_with_lines(tmp_path):
    directory = phases_dir(tmp_path, **{"1-a": VALID_PHASE, "1-b": "# b\n" + VALID_PHASE})
    problems = [p for p in only_problem(directory) if "also in" in p.message]
    assert {(Path(p.file).name, p.line) for p in problems} == {("1-a.yaml", 1), ("1-b.yaml", 2)}
    assert any(p.message.endswith("1-b.yaml:2") for p in problems)


def test_two_triggers_exporting_one_alert_name_are_both_located(tmp_path):
    alert = "    alert: TgkDeliveryLow\n"
    first = VALID_PHASE.replace("    for: 10m\n", "    for: 10m\n" + alert)
    second = second_phase(**{"    for: 10m\n": "    for: 10m\n" + alert})
    problems = only_problem(phases_dir(tmp_path, **{"1-a": first, "2-b": second}))
    [problem] = [p for p in problems if "alert name" in p.message]
    assert problem.field == "rollback_triggers[0].alert" and problem.line == 21
    assert "1-a.yaml:21" in problem.message


def test_for_longer_than_every_bake_is_refused(tmp_path):
    text = VALID_PHASE.replace("for: 10m", "for: 72h")
    [problem] = only_problem(write(tmp_path, "1-foundation.yaml", text))
    assert problem.field == "rollback_triggers[0].for" and problem.line == 20
    assert "longest: 2d" in problem.message


def test_require_success_without_success_criteria_is_a_gate_with_no_checks(tmp_path):
    text = VALID_PHASE.replace("    bake: 48h\n", "    bake: 48h\n    require_success: true\n")
    [problem] = only_problem(write(tmp_path, "1-foundation.yaml", text))
    assert problem.field == "steps[1].require_success" and problem.line == 15


def test_a_project_whose_phases_folder_does_not_exist_is_not_valid(tmp_path):
    (tmp_path / "tgk-deploy.yaml").write_text(project_text() + "phases_dir: rollout\n")
    with pytest.raises(SpecError) as caught:
        load_spec(tmp_path / "tgk-deploy.yaml")
    [problem] = caught.value.problems
    assert problem.field == "phases_dir" and "does not exist" in problem.message
    assert problem.line == project_text().count("\n") + 1


def test_a_prometheus_timeout_of_zero_is_refused(tmp_path):
    problems = spec_problems(
        tmp_path, project_text(**{"timeout: 10s": "timeout: 0s"}), {"1-a": VALID_PHASE}
    )
    assert [p.field for p in problems] == ["prometheus.timeout"]


# --------------------------------------------------------------------------- strictness


def _number_and_flag_fields():
    """Every int, float and bool field reachable from the phase and project models."""
    from typing import get_args

    from pydantic import BaseModel

    from tgk_deploy.spec.models import Phase, Project

    seen, found = set(), []

    def visit(annotation, where):
        for arg in (annotation, *get_args(annotation)):
            if isinstance(arg, type) and issubclass(arg, BaseModel) and arg not in seen:
                seen.add(arg)
                for name, info in arg.model_fields.items():
                    if info.annotation in (int, float, bool):
                        found.append((f"{arg.__name__}.{name}", info))
                    visit(info.annotation, name)
            elif arg is not annotation:
                visit(arg, where)

    visit(Phase, "Phase")
    visit(Project, "Project")
    return found


def test_every_number_and_flag_field_is_strict_and_every_float_finite():
    """Fields added later get the same rules: `true` is not 1, "10" is not 10, .nan no number."""
    from pydantic import Strict

    fields = _number_and_flag_fields()
    assert len(fields) >= 6
    for name, info in fields:
        assert any(isinstance(m, Strict) and m.strict for m in info.metadata), name
        if info.annotation is float:
            assert any(getattr(m, "allow_inf_nan", None) is False for m in info.metadata), name


def test_bake_zero_is_the_same_written_either_way(tmp_path):
    numbers = [
        validate_paths([write(tmp_path, f"1-{i}.yaml", VALID_PHASE.replace("bake: 24h", text))])[1][
            0
        ]
        .steps[0]
        .bake
        for i, text in enumerate(["bake: 0", 'bake: "0"', "bake: 0s"])
    ]
    assert {n.total_seconds() for n in numbers} == {0}
    with pytest.raises(SpecError, match="duration"):
        validate_paths(
            [write(tmp_path, "1-x.yaml", VALID_PHASE.replace("bake: 24h", "bake: false"))]
        )


def test_merge_keys_work_and_the_mappings_own_keys_win(tmp_path):
    text = VALID_PHASE.replace("  - id: staging\n", "  - &first\n    id: staging\n").replace(
        "  - id: canary\n    actions:\n      - deploy: {percentage: 10}\n    bake: 48h\n",
        "  - <<: *first\n    id: canary\n    environment: production\n    bake: 48h\n",
    )
    _, [phase] = validate_paths([write(tmp_path, "1-merge.yaml", text)])
    canary = phase.steps[1]
    assert (canary.id, canary.environment, canary.bake.total_seconds()) == (
        "canary",
        "production",
        48 * 3600,
    )
    assert canary.actions == phase.steps[0].actions
    bad = write(tmp_path, "1-bad.yaml", text.replace("bake: 48h", "bake: 48"))
    [problem] = only_problem(bad)
    assert (problem.field, problem.line) == ("steps[1].bake", 15)
