"""The ``tgk-deploy`` command: one Typer app, one small module per command.

Command modules import only typer and the standard library at the top; each
command imports the library parts it needs inside its body, so that
``--help`` and ``validate`` stay fast and never load the Cloudflare SDK.
"""

from __future__ import annotations

import typer

from tgk_deploy import __version__
from tgk_deploy.cli import (
    advance,
    bundle,
    destroy,
    emulator,
    export,
    gate,
    history,
    plan,
    rehearse,
    rollback,
    runbook,
    schema,
    serve,
    status,
    validate,
)

app = typer.Typer(
    name="tgk-deploy",
    help=(
        "Phased, metric-gated rollouts of the tgk Email Worker on Cloudflare, "
        "and rollbacks that never wait.\n\n"
        "Exit codes: 0 ok, 1 failed/trigger fired, 2 bad input, 3 inconclusive, "
        "4 refused (bake, approval, earlier phase), 5 conflict, 6 Cloudflare API error."
    ),
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tgk-deploy {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Phased, metric-gated rollouts of the tgk Email Worker on Cloudflare."""


for module in (
    validate,
    schema,
    plan,
    status,
    advance,
    rollback,
    serve,
    gate,
    history,
    export,
    bundle,
    destroy,
    emulator,
    rehearse,
    runbook,
):
    module.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
