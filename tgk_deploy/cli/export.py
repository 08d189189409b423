"""``tgk-deploy export``: files other tools read (alerting and recording rules, a dashboard, a receiver)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tgk_deploy.cli.options import CandidateOption, ProjectOption, StableOption
from tgk_deploy.cli.output import reports

export_app = typer.Typer(
    name="export",
    help="Write files other tools read: alert rules, a Grafana dashboard, the Alertmanager receiver.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(export_app, name="export")


@export_app.command("alerts")
@reports
def alerts(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the rules here (default: stdout)."),
    ] = None,
    runbook_base: Annotated[
        str,
        typer.Option(
            "--runbook-base",
            help="Prefix for runbook_url, e.g. https://github.com/org/repo/blob/main/ "
            "(default: runbook_base_url in tgk-deploy.yaml).",
        ),
    ] = "",
    candidate: CandidateOption = None,
    stable: StableOption = None,
    project: ProjectOption = None,
) -> None:
    """One alerting rule per rollback trigger, grouped by phase; check with promtool check rules."""
    import sys

    from tgk_deploy.spec.load import load_spec
    from tgk_deploy.triggers.alerts import alert_rules, render_rules_file
    from tgk_deploy.triggers.evaluate import LiveVersions

    spec = load_spec(project)
    rules = alert_rules(
        spec,
        versions=LiveVersions(candidate=candidate, stable=stable),
        runbook_base=runbook_base or spec.project.runbook_base_url or "",
    )
    text = render_rules_file(rules)
    count = sum(len(group["rules"]) for group in rules.groups)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        typer.echo(
            f"wrote {count} alerting rule(s) in {len(rules.groups)} group(s) to {output}", err=True
        )
    for skip in rules.skipped:
        typer.echo(f"skipped phase {skip.phase} {skip.trigger}: {skip.reason}", err=True)


@export_app.command("recording-rules")
@reports
def recording(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the rules here (default: stdout)."),
    ] = None,
    environment: Annotated[
        list[str] | None,
        typer.Option(
            "--environment",
            "-e",
            help="Record the queries as gates of this environment ask them; repeat "
            "(default: every environment of tgk-deploy.yaml).",
        ),
    ] = None,
    project: ProjectOption = None,
) -> None:
    """Every gate query as a recording rule: gates then read one light lookup per window shape.

    Load the file beside the alerting rules and set prometheus.recording_rules: true;
    a gate asks raw whatever the recorded series cannot vouch for.
    """
    import sys

    from tgk_deploy.spec.load import load_spec
    from tgk_deploy.triggers.recorded import recording_rules, render_recording_file

    spec = load_spec(project)
    document = recording_rules(spec, environment or sorted(spec.project.environments))
    text = render_recording_file(document)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        count = sum(len(group["rules"]) for group in document["groups"])
        typer.echo(
            f"wrote {count} recording rule(s) in {len(document['groups'])} group(s) to {output}",
            err=True,
        )


@export_app.command("dashboard")
@reports
def dashboard(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the dashboard JSON here (default: stdout)."),
    ] = None,
    project: ProjectOption = None,
) -> None:
    """A Grafana dashboard (JSON model): email flow, AI, routing, candidate vs stable, triggers."""
    import json
    import sys

    from tgk_deploy.render.dashboard import grafana_dashboard
    from tgk_deploy.spec.load import load_spec

    model = grafana_dashboard(load_spec(project))
    text = json.dumps(model, indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        panels = sum(1 for p in model["panels"] if p["type"] != "row")
        typer.echo(f"wrote a dashboard with {panels} panels to {output}", err=True)


@export_app.command("alertmanager")
@reports
def alertmanager(
    url: Annotated[
        list[str] | None,
        typer.Option("--url", help="Where tgk-deploy serve listens; repeat for an HA pair."),
    ] = None,
    auth: Annotated[
        str, typer.Option("--auth", help="bearer (TGK_DEPLOY_RECEIVER_TOKEN) or basic.")
    ] = "bearer",
    credentials_file: Annotated[
        str, typer.Option("--credentials-file", help="The file Alertmanager reads the secret from.")
    ] = "/etc/alertmanager/tgk-deploy-receiver.secret",
    username: Annotated[
        str, typer.Option("--username", help="Basic auth user (TGK_DEPLOY_RECEIVER_USERNAME).")
    ] = "alertmanager",
) -> None:
    """The route and webhook receiver that send our alerts to tgk-deploy serve."""
    import sys

    from tgk_deploy.errors import ConfigError
    from tgk_deploy.render.alertmanager import alertmanager_snippet, render_snippet

    if auth not in ("bearer", "basic"):
        raise ConfigError(f"--auth {auth!r}: choose bearer or basic")
    snippet = alertmanager_snippet(
        url or ["http://127.0.0.1:9095"],
        auth="bearer" if auth == "bearer" else "basic",
        credentials_file=credentials_file,
        username=username,
    )
    sys.stdout.write(render_snippet(snippet))
