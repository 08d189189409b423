"""The smoke check: the Worker's own self-test, run on one exact version before it gets traffic.

The RFC's trigger "critical functionality broken" has no metric: a broken route
shows only once mail goes wrong. So before a step moves traffic to a candidate,
the candidate is put in the deployment at 0 % and its ``POST /selftest``
(``wrangler/src/selftest.js``) is called with Cloudflare's version override,

    Cloudflare-Workers-Version-Overrides: tgk-email-orchestrator="<version id>"

a Dictionary Structured Header (RFC 8941): key the script, value the version
id as a String. Cloudflare applies it only to a version in the current
deployment (0 % included) and otherwise routes the request by the split, so
the answer's own version id is checked: another version answering is
inconclusive, never a pass (it may take a couple of seconds after a
deployment; ``attempts`` are spaced by the caller's clock).

``probe`` is the only HTTP to the Worker; ``judge`` is pure. Outcomes are the
triggers' three: pass (every route right), fail (a route is wrong: traffic
must not move), inconclusive (unreachable, refused token, another version
answered, an answer that cannot be read).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, Field, computed_field

from tgk_deploy.errors import ConfigError, ExitCode, TgkError
from tgk_deploy.secret_values import SecretValue, redact
from tgk_deploy.spec.models import Spec, env_ref_name
from tgk_deploy.triggers.evaluate import Outcome

OVERRIDE_HEADER = "Cloudflare-Workers-Version-Overrides"
SELFTEST_PATH = "/selftest"


class SmokeFailed(TgkError):
    """A route of the candidate is wrong: the step stops before traffic moves (exit 1)."""

    exit_code = ExitCode.FAILED


class SmokeInconclusive(TgkError):
    """The self-test could not say: unreachable, refused, or another version answered (exit 3)."""

    exit_code = ExitCode.INCONCLUSIVE


class RouteCheck(BaseModel):
    scope: str | None = None
    domain: str | None = None
    decision: str | None = None
    ok: bool = False
    reason: str | None = None

    def describe(self) -> str:
        where = f"{self.scope}@{self.domain}" if self.scope else "the routing table"
        return f"{where}: {self.reason or self.decision or 'wrong'}"


class SmokeReport(BaseModel):
    environment: str
    script: str
    url: str
    version_id: str
    outcome: Outcome
    why: str
    answered_by: str | None = None
    routes: list[RouteCheck] = Field(default_factory=list)
    attempts: int = 1

    @computed_field  # type: ignore[prop-decorator]
    @property
    def checked(self) -> int:
        return len(self.routes)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def failed(self) -> int:
        return sum(1 for route in self.routes if not route.ok)

    @property
    def exit_code(self) -> int:
        return self.outcome.exit_code

    def error(self) -> TgkError:
        """What stops a step that waited on this smoke check."""
        hint = f"tgk-deploy smoke --env {self.environment} --version {self.version_id}"
        if self.outcome is Outcome.FAIL:
            return SmokeFailed(
                f"smoke check of {self.version_id} on {self.script} failed: {self.why}",
                hint=f"fix the routing table or the bundle, then advance again; {hint} re-checks",
            )
        return SmokeInconclusive(
            f"smoke check of {self.version_id} on {self.script} is inconclusive: {self.why}",
            hint=hint,
        )


@dataclass(frozen=True)
class Answer:
    """What one self-test request got back: a status and a JSON body, or why there is none."""

    status: int | None
    body: Any = None
    error: str | None = None


def override_header(script: str, version_id: str) -> str:
    """``script="version"``: one member of an RFC 8941 dictionary, its value a String."""
    if not script or any(c not in "abcdefghijklmnopqrstuvwxyz0123456789_-.*" for c in script):
        raise ConfigError(f"{script!r} cannot be a key of {OVERRIDE_HEADER} (lower case only)")
    if any(c in version_id for c in '"\\') or not version_id.isprintable():
        raise ConfigError(f"{version_id!r} is not a version id")
    return f'{script}="{version_id}"'


def probe(http: httpx.Client, url: str, script: str, version_id: str, token: SecretValue) -> Answer:
    """One POST /selftest to the Worker, aimed at ``version_id``; never raises for the network."""
    headers = {
        OVERRIDE_HEADER: override_header(script, version_id),
        "Authorization": f"Bearer {token.reveal()}",
        "Accept": "application/json",
    }
    try:
        response = http.post(url.rstrip("/") + SELFTEST_PATH, headers=headers)
    except httpx.HTTPError as error:
        return Answer(None, error=redact(f"{type(error).__name__}: {error}"))
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    return Answer(response.status_code, body)


def judge(answer: Answer, version_id: str) -> tuple[Outcome, str, dict[str, Any]]:
    """An answer -> pass / fail / inconclusive, with the why and what it said. Pure."""
    if answer.status is None:
        return Outcome.INCONCLUSIVE, f"the Worker did not answer ({answer.error})", {}
    if answer.status == 401:
        return (
            Outcome.INCONCLUSIVE,
            "the Worker refused the token (401): the smoke token is not its SMOKE_TOKEN secret",
            {},
        )
    if answer.status == 404:
        return (
            Outcome.INCONCLUSIVE,
            "the Worker has no self-test here (404): SMOKE_TOKEN is not bound on this version, "
            "or its code predates POST /selftest",
            {},
        )
    body = answer.body if isinstance(answer.body, dict) else None
    if answer.status != 200 or body is None:
        return Outcome.INCONCLUSIVE, f"the self-test answered HTTP {answer.status}", {}
    answered_by = (
        (body.get("version") or {}).get("id") if isinstance(body.get("version"), dict) else None
    )
    try:
        routes = [RouteCheck.model_validate(r) for r in body.get("routes") or []]
    except ValueError:
        return Outcome.INCONCLUSIVE, "the self-test's answer is not one this tool reads", {}
    said = {"answered_by": answered_by, "routes": routes}
    if answered_by != version_id:
        return (
            Outcome.INCONCLUSIVE,
            f"version {answered_by or 'unknown'} answered, not {version_id}: the override was "
            "not applied (is the version in the current deployment?)",
            said,
        )
    failing = [r for r in routes if not r.ok]
    if not routes:
        return Outcome.INCONCLUSIVE, "the self-test checked no route", said
    if failing or body.get("ok") is not True:
        listed = "; ".join(r.describe() for r in failing[:5])
        more = f" and {len(failing) - 5} more" if len(failing) > 5 else ""
        return (
            Outcome.FAIL,
            f"{len(failing)} of {len(routes)} route(s) wrong: {listed or 'the Worker says so'}{more}",
            said,
        )
    return Outcome.PASS, f"all {len(routes)} route(s) right", said


def run_smoke(
    http: httpx.Client,
    *,
    environment: str,
    script: str,
    url: str,
    version_id: str,
    token: SecretValue,
    attempts: int = 3,
    interval: timedelta = timedelta(seconds=2),
    sleep: Callable[[float], None],
) -> SmokeReport:
    """Probe and judge, again while another version answers (the override not applied yet)."""
    outcome, why, said = Outcome.INCONCLUSIVE, "not run", {}
    tried = 0
    for tried in range(1, attempts + 1):
        outcome, why, said = judge(probe(http, url, script, version_id, token), version_id)
        other = outcome is Outcome.INCONCLUSIVE and said and said.get("answered_by") != version_id
        if not other or tried == attempts:
            break
        sleep(interval.total_seconds())
    routes = said.get("routes", []) if said else []
    return SmokeReport(
        environment=environment,
        script=script,
        url=url,
        version_id=version_id,
        outcome=outcome,
        why=why,
        answered_by=said.get("answered_by") if said else None,
        routes=routes,
        attempts=tried,
    )


# --------------------------------------------------------------------------- configuration


def url_variable(environment: str) -> str:
    """``TGK_WORKER_URL_PRODUCTION``: where another endpoint (the local emulator) is named."""
    return "TGK_WORKER_URL_" + environment.upper().replace("-", "_")


def worker_url(spec: Spec, bundle_dir: Path, environment: str) -> str:
    """Where the environment's Worker answers HTTP.

    ``TGK_WORKER_URL_<ENV>`` if set (as CLOUDFLARE_API_BASE_URL names another
    API), else the environment's ``url`` in tgk-deploy.yaml, else https:// and
    its first route in wrangler.toml: the Worker has no workers.dev address
    (``workers_dev = false``), it answers where wrangler.toml routes it, its
    custom domain.
    """
    override = os.environ.get(url_variable(environment))
    if override:
        if not override.startswith(("http://", "https://")):
            raise ConfigError(f"{url_variable(environment)} is not an http(s) URL: {override!r}")
        return override.rstrip("/")
    configured = spec.project.environments[environment].url
    if configured:
        return configured.rstrip("/")
    from tgk_deploy.bundle import read_bundle

    routes = read_bundle(bundle_dir, environment).routes
    for pattern in routes:
        host, _, path = pattern.partition("/")
        if host and "*" not in host:
            path = path.rstrip("*").rstrip("/")
            return f"https://{host}" + (f"/{path}" if path else "")
    raise ConfigError(
        f"no URL for the {environment} Worker: wrangler.toml gives it no route or custom domain",
        hint=f"set environments.{environment}.url in tgk-deploy.yaml",
    )


def smoke_token(spec: Spec) -> SecretValue:
    """The bearer token from the environment variable the project names; never printed."""
    name = env_ref_name(spec.project.smoke.token)
    value = os.environ.get(name)
    if not value:
        raise ConfigError(
            f"the smoke check needs the Worker's self-test token in {name}, which is not set",
            hint=f"export {name}=… (the value of the Worker's SMOKE_TOKEN secret)",
        )
    return SecretValue("SMOKE_TOKEN", value)
