"""``tgk-deploy schema``: the JSON Schema editors use to complete and check the files."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer


class SchemaKind(StrEnum):
    PHASE = "phase"
    PROJECT = "project"


def register(app: typer.Typer) -> None:
    app.command()(schema)


def schema_document(kind: SchemaKind) -> dict[str, object]:
    from tgk_deploy.spec.models import Phase, Project

    model = Phase if kind is SchemaKind.PHASE else Project
    document = model.model_json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://tgk-deploy.invalid/schemas/{kind.value}.schema.json",
        **document,
    }


def schema(
    kind: Annotated[SchemaKind, typer.Argument(help="Which file's schema.")] = SchemaKind.PHASE,
) -> None:
    """Print the JSON Schema of phase files (default) or of the project file."""
    typer.echo(json.dumps(schema_document(kind), indent=2))
