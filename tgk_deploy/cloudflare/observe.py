"""Cloudflare's reads turned into the ObservedState the planner takes, in as few rounds as can be.

Round one asks, all at once, for each script's deployments and versions and for
the zone's email rules; round two, all at once, for the details (vars and
secret names) of the versions that take traffic. Two round trips whatever the
number of environments.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from tgk_deploy.errors import CloudflareError, MissingResource
from tgk_deploy.planner.observed import (
    Deployment,
    EmailRule,
    EnvironmentState,
    ObservedState,
    Version,
)

if TYPE_CHECKING:
    from tgk_deploy.cloudflare.api import CloudflareAPI
    from tgk_deploy.spec.models import Project

NOT_FOUND = 10007


def _deployments_or_missing(api: CloudflareAPI, script: str) -> list[Deployment] | None:
    try:
        return api.deployments(script)
    except CloudflareError as error:
        if error.status == 404 or NOT_FOUND in error.codes:
            return None
        raise


def _environment(
    script: str,
    deployments: list[Deployment] | None,
    listed: list[Version],
    details: dict[str, Version],
) -> EnvironmentState:
    if deployments is None:
        return EnvironmentState(script=script, exists=False)
    versions = {v.id: v for v in listed}
    for version_id, detail in details.items():
        short = versions.get(version_id)
        versions[version_id] = detail.model_copy(
            update={
                "tag": detail.tag or (short.tag if short else None),
                "message": detail.message or (short.message if short else None),
            }
        )
    live = deployments[0] if deployments else None
    secret_names: set[str] = set()
    for share in live.versions if live else []:
        if share.version_id in details:
            secret_names |= set(details[share.version_id].secret_names)
    return EnvironmentState(
        script=script, deployments=deployments, versions=versions, secret_names=sorted(secret_names)
    )


def observe(
    api: CloudflareAPI,
    project: Project,
    *,
    now: datetime,
    environments: list[str] | None = None,
    with_versions: bool = True,
    with_details: bool = True,
    require: bool = True,
) -> ObservedState:
    """Everything the planner looks at, in two concurrent rounds.

    ``with_versions=False`` skips the version lists (status); ``with_details=False``
    skips the second round (rollback: the version list's tags are enough).
    ``require``: a configured script or email rule that is missing is an error
    naming it (a mistyped name must never read as "nothing to do").
    """
    names = environments or list(project.environments)
    scripts = {name: project.environments[name].script for name in names}
    calls = [lambda s=s: _deployments_or_missing(api, s) for s in scripts.values()]
    if with_versions:
        calls += [lambda s=s: _versions_or_empty(api, s) for s in scripts.values()]
    want_rules = api.zone_id is not None
    if want_rules:
        calls.append(api.email_rules)
    results = api.concurrently(*calls)
    count = len(scripts)
    deployments = dict(zip(scripts, results[:count], strict=True))
    listed = dict(zip(scripts, results[count : 2 * count], strict=True)) if with_versions else {}
    rules: list[EmailRule] = results[-1] if want_rules else []
    if require:
        _require_present(project, scripts, deployments, rules if want_rules else None, api.zone_id)

    wanted = [
        (name, share.version_id)
        for name, found in deployments.items()
        if found and with_details
        for share in found[0].versions
    ]
    details_list = (
        api.concurrently(*[(lambda n=n, v=v: api.get_version(scripts[n], v)) for n, v in wanted])
        if wanted
        else []
    )
    details: dict[str, dict[str, Version]] = {name: {} for name in scripts}
    for (name, _), detail in zip(wanted, details_list, strict=True):
        details[name][detail.id] = detail

    by_name = {rule.name: rule for rule in rules}
    return ObservedState(
        observed_at=now,
        environments={
            name: _environment(script, deployments[name], listed.get(name, []), details[name])
            for name, script in scripts.items()
        },
        email_rules={
            "worker": by_name.get(project.email_routing.worker_rule),
            "legacy": by_name.get(project.email_routing.legacy_rule),
        },
    )


def _require_present(
    project: Project,
    scripts: dict[str, str],
    deployments: dict[str, list[Deployment] | None],
    rules: list[EmailRule] | None,
    zone_id: str | None,
) -> None:
    missing = [
        f"Worker script {script!r} (environments.{name}.script)"
        for name, script in scripts.items()
        if deployments[name] is None
    ]
    if rules is not None:
        names = {rule.name for rule in rules}
        routing = project.email_routing
        missing += [
            f"email routing rule {rule!r} (email_routing.{field}) on zone {zone_id}"
            for field, rule in (
                ("worker_rule", routing.worker_rule),
                ("legacy_rule", routing.legacy_rule),
            )
            if rule not in names
        ]
    if missing:
        raise MissingResource(missing)


def _versions_or_empty(api: CloudflareAPI, script: str) -> list[Version]:
    try:
        return api.list_versions(script)
    except CloudflareError as error:
        if error.status == 404 or NOT_FOUND in error.codes:
            return []
        raise


def observe_environment(api: CloudflareAPI, script: str) -> EnvironmentState:
    """One script's deployments and versions, for the applier's re-reads."""
    deployments, listed = api.concurrently(
        lambda: _deployments_or_missing(api, script), lambda: _versions_or_empty(api, script)
    )
    return _environment(script, deployments, listed, {})
