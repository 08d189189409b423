"""YAML files -> validated models, with every problem located at file:line:column.

PyYAML's composer keeps a mark on every node; we convert nodes to plain data
while remembering where each path came from, so that a pydantic error such as
``steps.1.actions.0.deploy.percentage`` can be reported at the exact line.
All problems of all files are collected before anything is raised: an
operator fixes them in one go, not one per run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from tgk_deploy.errors import SpecError, SpecProblem
from tgk_deploy.spec.files import PROJECT_FILE_NAMES, find_project_file, phase_files
from tgk_deploy.spec.models import (
    DeployAction,
    ExportD1Action,
    Phase,
    Project,
    Spec,
    TrafficAction,
    alert_name,
    format_duration,
)
from tgk_deploy.spec.promql import known_metrics, query_problems
from tgk_deploy.spec.source import Located, read_yaml

M = TypeVar("M", bound=BaseModel)


def validate_model(located: Located, model: type[M]) -> M | None:
    """The located data as ``model``, or None with every error located and explained."""
    if located.data is None:
        return None
    try:
        return model.model_validate(located.data)
    except ValidationError as error:
        from tgk_deploy.spec.explain import explain  # only a file with errors needs it

        located.problems += [explain(model, located, detail) for detail in error.errors()]
        return None


# --------------------------------------------------------------------------- files


def expand_paths(paths: Iterable[Path]) -> tuple[Path | None, list[Path]]:
    """Split user-given paths into (project file, phase files); folders give their YAML files."""
    project: Path | None = None
    phases: list[Path] = []
    for path in paths:
        if path.is_dir():
            phases.extend(phase_files(path))
        elif path.name in PROJECT_FILE_NAMES:
            project = path
        else:
            phases.append(path)
    return project, phases


# --------------------------------------------------------------------------- cross checks


def _phase_problems(
    phases: list[tuple[Located, Phase]], project: Project | None
) -> list[SpecProblem]:
    problems: list[SpecProblem] = []
    numbers: dict[int, Located] = {}
    for located, phase in phases:
        if phase.phase in numbers:
            first = numbers[phase.phase]
            first_line = first.where(("phase",))[0]
            this_line = located.where(("phase",))[0]
            problems.append(
                located.problem(
                    ("phase",), f"phase {phase.phase} is also in {first.file}:{first_line}"
                )
            )
            problems.append(
                first.problem(
                    ("phase",), f"phase {phase.phase} is also in {located.file}:{this_line}"
                )
            )
        numbers.setdefault(phase.phase, located)
        stem_number = Path(located.file).name.split("-", 1)[0]
        if stem_number.isdigit() and int(stem_number) != phase.phase:
            problems.append(
                located.problem(
                    ("phase",), f"file name says phase {stem_number}, file says {phase.phase}"
                )
            )
        problems += _within_phase(located, phase, project)
    expected = list(range(1, len(numbers) + 1))
    if sorted(numbers) != expected and numbers:
        missing = sorted(set(range(1, max(numbers) + 1)) - set(numbers))
        for number, located in numbers.items():
            if number > len(numbers) or missing:
                problems.append(
                    located.problem(
                        ("phase",),
                        f"phase numbers must run 1..N without gaps; missing: "
                        f"{', '.join(map(str, missing)) or 'none'}",
                    )
                )
                break
    problems += _alert_collisions(phases)
    for located, phase in phases:
        for index, required in enumerate(phase.requires):
            if required >= phase.phase:
                problems.append(
                    located.problem(
                        ("requires", index),
                        f"phase {phase.phase} cannot require a later or same phase ({required})",
                    )
                )
            elif required not in numbers:
                problems.append(located.problem(("requires", index), f"no phase {required} exists"))
    return problems


def _alert_collisions(phases: list[tuple[Located, Phase]]) -> list[SpecProblem]:
    """Two triggers exporting one alert name: Prometheus would merge their pages."""
    problems: list[SpecProblem] = []
    seen: dict[str, tuple[Located, tuple[str | int, ...]]] = {}
    for located, phase in phases:
        for index, trigger in enumerate(phase.rollback_triggers):
            at = ("rollback_triggers", index, "alert" if trigger.alert else "name")
            name = alert_name(phase, trigger)
            if name in seen:
                other, other_at = seen[name]
                where = f"{other.file}:{other.where(other_at)[0]}"
                problems.append(
                    located.problem(
                        at, f"alert name {name} is also exported by the trigger at {where}"
                    )
                )
            seen.setdefault(name, (located, at))
    return problems


def _for_problems(located: Located, phase: Phase) -> list[SpecProblem]:
    """Checks that can never hold: a `for:` longer than every bake of the phase.

    A phase that declares no bake at all is left alone: it sets no pace to compare with.
    """
    problems: list[SpecProblem] = []
    longest = max((step.bake for step in phase.steps), default=timedelta(0))
    for kind in ("success_criteria", "rollback_triggers"):
        for index, check in enumerate(getattr(phase, kind)):
            if check.for_ is not None and longest and check.for_ > longest:
                problems.append(
                    located.problem(
                        (kind, index, "for"),
                        f"for: {format_duration(check.for_)} is longer than every bake of "
                        f"this phase (longest: {format_duration(longest)}): it cannot hold "
                        "before the phase moves on",
                    )
                )
    return problems


def _within_phase(located: Located, phase: Phase, project: Project | None) -> list[SpecProblem]:
    problems = _for_problems(located, phase)
    seen_steps: dict[str, int] = {}
    deployed_in: set[str] = set()
    for index, step in enumerate(phase.steps):
        at = ("steps", index)
        if step.id in seen_steps:
            problems.append(
                located.problem(
                    (*at, "id"),
                    f"duplicate step id {step.id!r} (also steps[{seen_steps[step.id]}])",
                )
            )
        seen_steps.setdefault(step.id, index)
        if project and step.environment not in project.environments:
            problems.append(
                located.problem(
                    (*at, "environment"),
                    f"unknown environment {step.environment!r}; the project has "
                    + ", ".join(sorted(project.environments)),
                )
            )
        for action_index, action in enumerate(step.actions):
            action_at = (*at, "actions", action_index)
            if isinstance(action, DeployAction):
                deployed_in.add(step.environment)
            if isinstance(action, TrafficAction) and step.environment not in deployed_in:
                problems.append(
                    located.problem(
                        (*action_at, "traffic"),
                        f"traffic moves this phase's candidate, but no earlier step of phase "
                        f"{phase.phase} deploys one to {step.environment!r}",
                    )
                )
            if (
                isinstance(action, ExportD1Action)
                and project
                and action.export_d1.database not in project.d1
            ):
                problems.append(
                    located.problem(
                        (*action_at, "export_d1", "database"),
                        f"unknown D1 database {action.export_d1.database!r}; the project has "
                        + (", ".join(sorted(project.d1)) or "none"),
                    )
                )
    if not phase.success_criteria:
        for index, step in enumerate(phase.steps):
            if step.require_success:
                problems.append(
                    located.problem(
                        ("steps", index, "require_success"),
                        "require_success in a phase without success_criteria: a gate with "
                        "nothing to check would pass blind; add success_criteria",
                    )
                )
    names: set[str] = set()
    for kind in ("success_criteria", "rollback_triggers"):
        for index, check in enumerate(getattr(phase, kind)):
            if check.name in names:
                problems.append(
                    located.problem((kind, index, "name"), f"duplicate name {check.name!r}")
                )
            names.add(check.name)
    if project:
        known = ", ".join(sorted(project.features)) or "none"
        for index, feature in enumerate(phase.features):
            if feature not in project.features:
                problems.append(
                    located.problem(
                        ("features", index), f"unknown feature {feature!r}; known: {known}"
                    )
                )
        responses = [(("on_trigger",), phase.on_trigger)] + [
            (("rollback_triggers", i, "response"), t.response)
            for i, t in enumerate(phase.rollback_triggers)
            if t.response
        ]
        for path, response in responses:
            if response.feature and response.feature not in project.features:
                problems.append(
                    located.problem(
                        (*path, "feature"), f"unknown feature {response.feature!r}; known: {known}"
                    )
                )
    return problems


# --------------------------------------------------------------------------- entry points


def load_project(path: Path) -> Project:
    located = read_yaml(path)
    project = validate_model(located, Project)
    if located.problems or project is None:
        raise SpecError(located.problems)
    return project


def _project(path: Path, *, metric_names: bool) -> tuple[Located, Project | None, set[str] | None]:
    """The project file, validated, and (for validate) the metric names queries may read.

    Only ``validate`` reads the Worker's metric table: a command that acts (a rollback above
    all) must not depend on the bundle folder being there.
    """
    located = read_yaml(path)
    project = validate_model(located, Project)
    known = known_metrics(path, project, located) if project and metric_names else None
    return located, project, known


def load_spec(project_path: Path | None = None, phase_paths: Sequence[Path] | None = None) -> Spec:
    """Load and cross-check the project and its phases; raise SpecError listing every problem."""
    project_path = project_path or find_project_file()
    problems: list[SpecProblem] = []
    project: Project | None = None
    known: set[str] | None = None
    if project_path is None:
        problems.append(
            SpecProblem(
                "tgk-deploy.yaml", 1, 1, "", "no project file found here or in any parent folder"
            )
        )
    else:
        located_project, project, known = _project(project_path, metric_names=False)
        if phase_paths is None:
            phase_paths = _project_phase_files(project_path, located_project, project)
        problems += located_project.problems
    spec_phases = check_phases(phase_paths or [], project, problems, known)
    if problems or project is None:
        raise SpecError(problems)
    return Spec(project=project, phases=spec_phases)


def _project_phase_files(path: Path, located: Located, project: Project | None) -> list[Path]:
    """The project's phase files; a missing or empty folder is a problem, not "0 valid"."""
    if project is None:  # still check the phases: every problem of every file at once
        directory = path.parent / "phases"
        return phase_files(directory) if directory.is_dir() else []
    directory = path.parent / project.phases_dir
    if not directory.is_dir():
        located.problems.append(
            located.problem(("phases_dir",), f"the phases folder {str(directory)!r} does not exist")
        )
        return []
    files = phase_files(directory)
    if not files:
        located.problems.append(
            located.problem(("phases_dir",), f"no .yaml phase files in {str(directory)!r}")
        )
    return files


def check_phases(
    phase_paths: Sequence[Path],
    project: Project | None,
    problems: list[SpecProblem],
    known_metrics: set[str] | None = None,
) -> list[Phase]:
    """Validate phase files (queries parsed, cross-file rules), appending to ``problems``.

    ``known_metrics`` None: metric names are not checked (no project to say where they are).
    """
    loaded: list[tuple[Located, Phase]] = []
    for path in phase_paths:
        located = read_yaml(path)
        phase = validate_model(located, Phase)
        problems += located.problems
        if phase is not None:
            problems += query_problems(located, phase, known_metrics)
            loaded.append((located, phase))
    problems += _phase_problems(loaded, project)
    return sorted((phase for _, phase in loaded), key=lambda p: p.phase)


def validate_paths(paths: Sequence[Path]) -> tuple[Project | None, list[Phase]]:
    """What ``tgk-deploy validate`` runs: never any network, every problem at once."""
    project_path, phase_paths = expand_paths(paths) if paths else (None, [])
    project_path = project_path or find_project_file()
    problems: list[SpecProblem] = []
    project: Project | None = None
    known: set[str] | None = None
    if project_path is not None:
        located, project, known = _project(project_path, metric_names=True)
        if not phase_paths:
            phase_paths = _project_phase_files(project_path, located, project)
        problems += located.problems
    phases = check_phases(phase_paths, project, problems, known)
    if problems:
        raise SpecError(problems)
    return project, phases
