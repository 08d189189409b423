"""YAML files -> validated models, with every problem located at file:line:column.

PyYAML's composer keeps a mark on every node; we convert nodes to plain data
while remembering where each path came from, so that a pydantic error such as
``steps.1.actions.0.deploy.percentage`` can be reported at the exact line.
All problems of all files are collected before anything is raised: an
operator fixes them in one go, not one per run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from tgk_deploy.errors import SpecError, SpecProblem
from tgk_deploy.spec.models import (
    DeployAction,
    ExportD1Action,
    Phase,
    Project,
    Spec,
    TrafficAction,
)

PROJECT_FILE_NAMES = ("tgk-deploy.yaml", "tgk-deploy.yml")
PathKey = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


@dataclass
class Located:
    """Plain data from one YAML file plus the (line, column) of every path in it."""

    file: str
    data: Any
    positions: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    problems: list[SpecProblem] = field(default_factory=list)

    def where(self, path: Sequence[str | int]) -> tuple[int, int]:
        """Position of the deepest part of ``path`` present in the file."""
        best: PathKey = ()
        for element in path:
            candidate = (*best, element)
            if candidate in self.positions:
                best = candidate
        return self.positions.get(best, (1, 1))

    def resolve(self, path: Sequence[str | int]) -> PathKey:
        """Drop the union tags pydantic adds to error paths, keep what is in the file."""
        kept: PathKey = ()
        for element in path:
            if (*kept, element) in self.positions:
                kept = (*kept, element)
        return kept

    def problem(self, path: Sequence[str | int], message: str) -> SpecProblem:
        line, column = self.where(path)
        return SpecProblem(self.file, line, column, dotted(self.resolve(path)), message)


def dotted(path: Sequence[str | int]) -> str:
    text = ""
    for element in path:
        text += f"[{element}]" if isinstance(element, int) else (f".{element}" if text else element)
    return text


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _to_data(node: yaml.Node, path: PathKey, located: Located) -> Any:
    located.positions[path] = _mark(node)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _to_data(key_node, (*path, "<key>"), located)
            if not isinstance(key, str | int | bool | float) or key is None:
                located.problems.append(
                    SpecProblem(located.file, *_mark(key_node), dotted(path), "keys must be text")
                )
                continue
            key = str(key) if not isinstance(key, str) else key
            if key in result:
                first_line = located.positions[(*path, key)][0]
                located.problems.append(
                    SpecProblem(
                        located.file,
                        *_mark(key_node),
                        dotted((*path, key)),
                        f"duplicate key {key!r} (first at line {first_line})",
                    )
                )
                continue
            located.positions[(*path, key)] = _mark(key_node)
            result[key] = _to_data(value_node, (*path, key), located)
            located.positions[(*path, key)] = _mark(key_node)
        located.positions.pop((*path, "<key>"), None)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_to_data(item, (*path, i), located) for i, item in enumerate(node.value)]
    return _SCALARS.construct_object(node, deep=True)


_SCALARS = yaml.constructor.SafeConstructor()
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 10x faster, same marks


def read_yaml(path: Path) -> Located:
    """Parse one file; syntax errors become problems, never exceptions."""
    located = Located(file=str(path), data=None)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        located.problems.append(SpecProblem(str(path), 1, 1, "", f"cannot read: {error.strerror}"))
        return located
    try:
        node = yaml.compose(text, Loader=_FAST_LOADER)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = " ".join(str(part) for part in (error.context, error.problem) if part)
        located.problems.append(SpecProblem(str(path), line, column, "", f"YAML: {reason}"))
        return located
    except yaml.YAMLError as error:
        located.problems.append(SpecProblem(str(path), 1, 1, "", f"YAML: {error}"))
        return located
    if node is None:
        located.problems.append(SpecProblem(str(path), 1, 1, "", "the file is empty"))
        return located
    located.data = _to_data(node, (), located)
    if not isinstance(located.data, dict):
        located.problems.append(SpecProblem(str(path), 1, 1, "", "the top level must be a mapping"))
        located.data = None
    return located


def _explain(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "missing":
        return f"required field {error['loc'][-1]!r} is missing"
    if kind == "extra_forbidden":
        return f"unknown field {error['loc'][-1]!r}"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def validate_model(located: Located, model: type[M]) -> M | None:
    if located.data is None:
        return None
    try:
        return model.model_validate(located.data)
    except ValidationError as error:
        for detail in error.errors():
            loc = detail["loc"]
            if detail["type"] == "missing":
                # point at the mapping that lacks the field, name the field in the path
                problem = located.problem(loc[:-1], _explain(detail))
                problem = SpecProblem(
                    problem.file,
                    problem.line,
                    problem.column,
                    dotted((*located.resolve(loc[:-1]), loc[-1])),
                    problem.message,
                )
            else:
                problem = located.problem(loc, _explain(detail))
            located.problems.append(problem)
        return None


# --------------------------------------------------------------------------- files


def find_project_file(start: Path | None = None) -> Path | None:
    explicit = os.environ.get("TGK_DEPLOY_PROJECT")
    if explicit:
        return Path(explicit)
    directory = (start or Path.cwd()).resolve()
    for candidate_dir in (directory, *directory.parents):
        for name in PROJECT_FILE_NAMES:
            candidate = candidate_dir / name
            if candidate.is_file():
                return candidate
    return None


def phase_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


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
            first = numbers[phase.phase].file
            problems.append(located.problem(("phase",), f"phase {phase.phase} is also in {first}"))
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


def _within_phase(located: Located, phase: Phase, project: Project | None) -> list[SpecProblem]:
    problems: list[SpecProblem] = []
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


def load_spec(project_path: Path | None = None, phase_paths: Sequence[Path] | None = None) -> Spec:
    """Load and cross-check the project and its phases; raise SpecError listing every problem."""
    project_path = project_path or find_project_file()
    problems: list[SpecProblem] = []
    project: Project | None = None
    if project_path is None:
        problems.append(
            SpecProblem(
                "tgk-deploy.yaml", 1, 1, "", "no project file found here or in any parent folder"
            )
        )
    else:
        located_project = read_yaml(project_path)
        project = validate_model(located_project, Project)
        problems += located_project.problems
    if phase_paths is None:
        phase_dir = (project_path.parent if project_path else Path.cwd()) / (
            project.phases_dir if project else "phases"
        )
        phase_paths = phase_files(phase_dir) if phase_dir.is_dir() else []
    spec_phases = check_phases(phase_paths, project, problems)
    if problems or project is None:
        raise SpecError(problems)
    return Spec(project=project, phases=spec_phases)


def check_phases(
    phase_paths: Sequence[Path], project: Project | None, problems: list[SpecProblem]
) -> list[Phase]:
    """Validate phase files (and their cross-file rules), appending to ``problems``."""
    loaded: list[tuple[Located, Phase]] = []
    for path in phase_paths:
        located = read_yaml(path)
        phase = validate_model(located, Phase)
        problems += located.problems
        if phase is not None:
            loaded.append((located, phase))
    problems += _phase_problems(loaded, project)
    return sorted((phase for _, phase in loaded), key=lambda p: p.phase)


def validate_paths(paths: Sequence[Path]) -> tuple[Project | None, list[Phase]]:
    """What ``tgk-deploy validate`` runs: never any network, every problem at once."""
    project_path, phase_paths = expand_paths(paths) if paths else (None, [])
    project_path = project_path or find_project_file()
    problems: list[SpecProblem] = []
    project: Project | None = None
    if project_path is not None:
        located = read_yaml(project_path)
        project = validate_model(located, Project)
        problems += located.problems
        if not phase_paths and not paths:
            phase_dir = project_path.parent / (project.phases_dir if project else "phases")
            phase_paths = phase_files(phase_dir) if phase_dir.is_dir() else []
    phases = check_phases(phase_paths, project, problems)
    if problems:
        raise SpecError(problems)
    return project, phases
