"""The ``tgk-deploy`` command: one Typer app, one small module per command.

Command modules import only typer and the standard library at the top; each
command imports the library parts it needs inside its body, so that
``--help`` and ``validate`` stay fast and never load the Cloudflare SDK. This
module itself imports no typer until the app is needed: ``--version`` and a
cached ``--help`` are answered by ``help_cache`` alone.
"""

from __future__ import annotations

import sys

from tgk_deploy import __version__

TYPE_CHECKING = False  # not typing's: importing typing costs a --help answered from cache
if TYPE_CHECKING:
    import typer

_app: typer.Typer | None = None
COMMAND_MODULES = (
    "validate",
    "schema",
    "plan",
    "status",
    "advance",
    "rollback",
    "halt",
    "smoke",
    "adopt",
    "serve",
    "gate",
    "backtest",
    "history",
    "export",
    "bundle",
    "destroy",
    "emulator",
    "rehearse",
    "runbook",
)
"""The modules under tgk_deploy/cli that register commands, in the order --help lists them."""
REGISTERED_BY = {"approve": "advance", "restore": "adopt", "resume": "halt"}
"""Commands whose module has another name."""


def build_app(command: str | None = None) -> typer.Typer:
    """The Typer app with every command registered (built once, on first use).

    With ``command`` (the first argument of a run), only the module that
    registers it: one run needs one command, and Typer builds a click command
    (and a pydantic adapter per option) for every command registered. A name
    no module registers gets the whole app, so its error lists them all.
    """
    global _app
    module = REGISTERED_BY.get(command or "", command)
    only = module in COMMAND_MODULES
    if _app is not None and not only:
        return _app
    import importlib

    import typer

    app = typer.Typer(
        cls=one_line_errors(),
        name="tgk-deploy",
        help=(
            "Phased, metric-gated rollouts of the tgk Email Worker on Cloudflare, "
            "and rollbacks that never wait.\n\n"
            "Exit codes: 0 ok, 1 failed/trigger fired, 2 bad input, 3 inconclusive, "
            "4 refused (bake, approval, earlier phase), 5 conflict, 6 Cloudflare API error, "
            "70 internal error (a bug), 130 interrupted."
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
            False,
            "--version",
            callback=_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ) -> None:
        """Phased, metric-gated rollouts of the tgk Email Worker on Cloudflare."""

    for name in (module,) if only else COMMAND_MODULES:
        importlib.import_module(f"tgk_deploy.cli.{name}").register(app)
    if only:
        return app
    _app = app
    return app


def one_line_errors() -> type:
    """The command group, rendering a bad flag as one line (JSON with ``-o json``), exit 2."""
    from typer import Abort
    from typer._click.exceptions import UsageError  # typer vendors click
    from typer.core import TyperGroup

    class OneLineErrors(TyperGroup):
        def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # type: ignore[no-untyped-def]
            argv = list(sys.argv[1:] if args is None else args)
            try:
                code = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
            except UsageError as error:
                _bad_flag(error, argv)
                code = 2
            except Abort:
                sys.stderr.write("aborted\n")
                code = 1
            if not standalone_mode:
                return code
            sys.exit(code if isinstance(code, int) else 0)

    return OneLineErrors


def _bad_flag(error: object, argv: list[str]) -> None:
    import json

    message = " ".join(str(getattr(error, "format_message", lambda: error)()).split())
    context = getattr(error, "ctx", None)
    command = context.command_path if context is not None else "tgk-deploy"
    wants_json = any(
        a in ("--output=json", "-ojson") or (a in ("-o", "--output") and b == "json")
        for a, b in zip(argv, [*argv[1:], ""], strict=True)
    )
    if wants_json:
        sys.stdout.write(
            json.dumps(
                {"error": "UsageError", "message": message, "hint": f"{command} --help"}, indent=2
            )
            + "\n"
        )
    sys.stderr.write(f"error: {message} (see {command} --help)\n")


def __getattr__(name: str) -> object:
    if name == "app":  # ``from tgk_deploy.cli.app import app`` (tests, typer's CliRunner)
        return build_app()
    raise AttributeError(name)


def main() -> None:
    """The console script: cached ``--help``/``--version`` first, Typer for everything else."""
    import gc
    import os

    from tgk_deploy.cli import help_cache

    argv = sys.argv[1:]
    if help_cache.answer(argv):
        return
    # Start-up makes hundreds of thousands of objects that live as long as the process
    # (pydantic's, httpx's, the SDK's); at CPython's default the cycle collector runs every
    # 700 allocations and rescans them again and again, then all of them once more at exit:
    # 0.13 s of a 0.9 s rollback. Young objects are collected every 50,000 allocations
    # instead (memory stays bounded in long runs), and the exit pass skips what is left.
    gc.set_threshold(50_000)  # the older generations keep their default ratios
    # pydantic looks for plugins in every installed package's metadata before its first
    # model: a tenth of a rollback's start-up; this CLI uses none (set it to "" to allow them)
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    if not help_cache.cacheable(argv):
        try:
            build_app(argv[0] if argv else None)()
        finally:
            gc.freeze()  # nothing made so far is freed before exit: the exit pass skips it
        return
    app = build_app()
    import contextlib
    import io

    rendered = io.StringIO()
    code: object = 0
    with contextlib.redirect_stdout(rendered):
        try:
            app()
        except SystemExit as exit_:
            code = exit_.code
    sys.stdout.write(rendered.getvalue())
    if code in (0, None):
        help_cache.store(argv, rendered.getvalue())
    sys.exit(code)


if __name__ == "__main__":
    main()
