"""``tgk-deploy smoke``: the Worker's self-test on one version of the live deployment.

The same check a ``smoke`` step runs before it moves traffic, on demand: to see
a candidate at 0 % before advancing, or to re-check what takes traffic now.
Only a version in the current deployment can be reached (Cloudflare applies a
version override to no other), so one outside it is refused before any request.
"""

from __future__ import annotations

from tgk_deploy.engine.context import Context
from tgk_deploy.errors import ConfigError, RefusedError
from tgk_deploy.smoke import SmokeReport


def smoke(ctx: Context, environment: str, version_id: str | None = None) -> SmokeReport:
    """Self-test ``version_id`` (default: the newest version in the live deployment)."""
    if environment not in ctx.spec.project.environments:
        known = ", ".join(ctx.spec.project.environments)
        raise ConfigError(f"there is no environment {environment!r}; the project has {known}")
    ctx.smoke_inputs(environment)  # bad configuration is bad input, said before any call
    env = ctx.observe([environment], details=False).environments[environment]
    live = env.live
    if live is None:
        raise RefusedError(f"{env.script} has no deployment: nothing answers there")
    deployed = sorted(
        live.versions,
        key=lambda v: env.versions[v.version_id].number if v.version_id in env.versions else -1,
    )
    if version_id is None:
        version_id = deployed[-1].version_id
    elif version_id not in live.shares:
        split = ", ".join(f"{v.version_id} {v.percentage:g} %" for v in live.versions)
        raise RefusedError(
            f"version {version_id} is not in the current deployment of {env.script} ({split}): "
            "a version override reaches only those",
            hint="advance a step that smoke-tests it (it puts the candidate in at 0 %), or "
            f"tgk-deploy smoke --env {environment} without --version",
        )
    return ctx.smoke(environment, version_id)
