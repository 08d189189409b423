"""``tgk-deploy emulator serve``: the local Cloudflare API emulator for other programs.

Prints the ``export CLOUDFLARE_API_BASE_URL=...`` line that points wrangler,
the SDK or tgk-deploy at it, then serves on loopback until Ctrl-C.
"""

from __future__ import annotations

import threading
from typing import Annotated

import typer

from tgk_deploy.cli.options import bounded

DEMO_SMOKE_TOKEN = "emulator-smoke-token"  # not a secret: the demo's own, printed to export

emulator_app = typer.Typer(
    name="emulator",
    help="A local Cloudflare API emulator (tests, rehearse, demos).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(emulator_app)


@emulator_app.command()
def serve(
    port: Annotated[
        int, bounded("int", 0, 65535, "--port", help="TCP port; 0 picks a free one.")
    ] = 0,
    host: Annotated[str, typer.Option(help="Loopback address to bind.")] = "127.0.0.1",
    seed_demo: Annotated[
        bool,
        typer.Option(
            "--seed-demo", help="Start with the scripts, rules, D1 and R2 of tgk-deploy.yaml."
        ),
    ] = False,
    latency_ms: Annotated[
        float,
        bounded("float", 0, 60000, "--latency-ms", help="Wait this long before every API answer."),
    ] = 0.0,
    seed: Annotated[
        int, bounded("int", 0, 2**31, "--seed", help="Seed of ids and injected faults.")
    ] = 0,
) -> None:
    """Serve the emulator until Ctrl-C; control plane under /__emulator/, Workers under /__workers/."""
    from tgk_deploy.emulator import start

    emulator = start(host=host, port=port, seed=seed, latency_ms=latency_ms)
    try:  # a Ctrl-C while the exports print stops the server too
        typer.echo(f"export CLOUDFLARE_API_BASE_URL={emulator.url}")
        if seed_demo:
            ids = emulator.state.seed_demo(smoke_token=DEMO_SMOKE_TOKEN)
            typer.echo(f"export CLOUDFLARE_ACCOUNT_ID={ids['account_id']}")
            typer.echo(f"export CLOUDFLARE_ZONE_ID={ids['zone_id']}")
            typer.echo(f"export TGK_D1_DATABASE_ID={ids['d1_database_id']}")
            typer.echo(
                f"# zone name: {ids['zone_name']} (wrangler email routing rules list)", err=True
            )
        typer.echo("export CLOUDFLARE_API_TOKEN=emulator  # any non-empty token is accepted")
        if seed_demo:
            # the demo scripts' SMOKE_TOKEN, a made-up value: `tgk-deploy smoke` reaches them here
            typer.echo(f"export TGK_SMOKE_TOKEN={DEMO_SMOKE_TOKEN}")
            from tgk_deploy.smoke import url_variable

            for environment, script in (
                ("production", "tgk-email-orchestrator"),
                ("staging", "tgk-email-orchestrator-staging"),
            ):
                typer.echo(f"export {url_variable(environment)}={emulator.worker_url(script)}")
        typer.echo(f"# control plane: {emulator.origin}/__emulator/  (Ctrl-C stops)", err=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
