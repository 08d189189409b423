"""``tgk-deploy bundle``: what a deploy would upload, read from wrangler/ (no network, no Node.js)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tgk_deploy.cli.options import OutputFormat, OutputOption, ProjectOption
from tgk_deploy.cli.output import Output, reports

if TYPE_CHECKING:
    from rich.console import Console

    from tgk_deploy.bundle import Bundle

VALUE_WIDTH = 40


def register(app: typer.Typer) -> None:
    app.command("bundle")(bundle)


def bundle_dir(project_file: Path | None) -> Path:
    """The project's ``bundle`` folder; ``./wrangler`` when there is no project file."""
    from tgk_deploy.spec.load import find_project_file, load_project

    project_file = project_file or find_project_file()
    if project_file is None:
        return Path("wrangler")
    return project_file.parent / load_project(project_file).bundle


@reports
def bundle(
    env: Annotated[
        str, typer.Option("--env", "-e", help="production (the top level) or an [env.NAME] table.")
    ] = "production",
    project: ProjectOption = None,
    output: OutputOption = OutputFormat.TEXT,
) -> None:
    """Modules, sizes, bindings and content hash of the version upload for one environment."""
    from tgk_deploy.bundle import read_bundle

    found = read_bundle(bundle_dir(project), env)
    Output(output).emit(found, lambda console: draw_bundle(console, found))


def _shorten(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= VALUE_WIDTH else f"{flat[: VALUE_WIDTH - 1]}…"


def draw_bundle(console: Console, found: Bundle) -> None:
    from rich.table import Table

    console.print(
        f"[bold]{found.script_name}[/] ({found.environment}) from {found.source}", markup=True
    )
    flags = ", ".join(found.compatibility_flags) or "none"
    console.print(
        f"main module {found.main_module} · compatibility_date {found.compatibility_date} · "
        f"compatibility_flags {flags}",
        markup=False,
    )
    modules = Table(
        title=f"{len(found.modules)} modules, {found.total_size:,} bytes", title_justify="left"
    )
    for column in ("module", "bytes", "content type", "sha256"):
        modules.add_column(column, justify="right" if column == "bytes" else "left")
    for module in found.modules:
        modules.add_row(module.name, f"{module.size:,}", module.content_type, module.sha256[:16])
    console.print(modules)
    bindings = Table(title=f"{len(found.bindings)} bindings", title_justify="left")
    bindings.add_column(
        "type", no_wrap=True, min_width=max((len(b.type) for b in found.bindings), default=4)
    )
    bindings.add_column(
        "name", no_wrap=True, min_width=max((len(b.name) for b in found.bindings), default=4)
    )
    bindings.add_column("value", no_wrap=True, overflow="ellipsis", max_width=VALUE_WIDTH)
    for binding in found.bindings:
        if binding.type == "plain_text":
            value = _shorten(binding.text or "")
        elif binding.type == "json":
            value = _shorten(str(binding.json_value))
        else:
            value = (
                binding.namespace_id or binding.id or binding.bucket_name or binding.service or ""
            )
        bindings.add_row(binding.type, binding.name, value)
    console.print(bindings)
    if found.routes:
        console.print(f"routes: {', '.join(found.routes)}", markup=False)
    console.print(f"content hash: sha256:{found.content_hash}", markup=False)
