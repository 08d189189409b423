"""The only module that talks to Cloudflare: the official SDK, our retry policy, our errors.

Every call goes through the SDK's client (auth, base URL, httpx) with
``max_retries=0`` and the raw JSON envelope (``cast_to=object``); that keeps
one retry policy (``retry.py``) and sidesteps the SDK defects listed in
CLOUDFLARE-API.md: ``versions.create``/``versions.get`` failing to build their
models, ``deployments.list`` iterating ``result.items`` that the API does not
send, and ``versions.list(deployable=True)`` ignoring pagination. The SDK is
imported when a ``CloudflareAPI`` is built, never at module import.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from tgk_deploy.cloudflare.retry import Deadline, RetryPolicy, Transient
from tgk_deploy.errors import (
    CloudflareError,
    CloudflareErrorDetail,
    CloudflareUnreachable,
    ConfigError,
    RateLimited,
)
from tgk_deploy.planner.observed import Deployment, EmailRule, Version, VersionShare
from tgk_deploy.secret_values import SecretValue, redact

if TYPE_CHECKING:
    from tgk_deploy.bundle import Bundle
    from tgk_deploy.spec.models import D1Spec, EmailRoutingSpec, Project

T = TypeVar("T")
VersionParts = tuple[dict[str, Any], tuple[str, list[tuple[str, bytes, str]]]]
DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"
MODULE_TYPE = "application/javascript+module"
KEEP_SECRETS = ["secret_text", "secret_key"]
KEEP_ONLY_LISTED = ["secret_key"]  # what `wrangler versions secret delete` sends to drop one
SECRETS_CHANGED_SINCE_VERSION = 10220


def _env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise ConfigError(f"{name} is not set", hint=f"export {name}=… (as for wrangler)")
    return value


def _ref(ref: str, values: dict[str, str] | None = None) -> str:
    """Resolve ``${NAME}``: from ``values`` first (rehearsals), else the environment."""
    from tgk_deploy.spec.models import env_ref_name

    name = env_ref_name(ref)
    if values and name in values:
        return values[name]
    return _env(name)


def _time(value: str | None) -> datetime:
    return datetime.fromisoformat((value or "1970-01-01T00:00:00Z").replace("Z", "+00:00"))


def _details(body: Any) -> list[CloudflareErrorDetail]:
    if isinstance(body, dict):
        return [
            CloudflareErrorDetail(code=e.get("code"), message=redact(str(e.get("message", ""))))
            for e in body.get("errors") or []
            if isinstance(e, dict)
        ]
    return []


def version_from_api(item: dict[str, Any]) -> Version:
    """A version as the list (short) or detail (with resources) endpoint returns it."""
    annotations = item.get("annotations") or {}
    metadata = item.get("metadata") or {}
    bindings = (item.get("resources") or {}).get("bindings") or []
    return Version(
        id=item["id"],
        number=int(item.get("number") or 0),
        created_on=_time(metadata.get("created_on")),
        tag=annotations.get("workers/tag"),
        message=annotations.get("workers/message"),
        vars={b["name"]: str(b.get("text", "")) for b in bindings if b.get("type") == "plain_text"},
        secret_names=sorted(b["name"] for b in bindings if b.get("type") == "secret_text"),
        detailed="resources" in item,
    )


def deployment_from_api(item: dict[str, Any]) -> Deployment:
    annotations = item.get("annotations") or {}
    return Deployment(
        id=item["id"],
        created_on=_time(item.get("created_on")),
        versions=[
            VersionShare(version_id=v["version_id"], percentage=float(v["percentage"]))
            for v in item.get("versions") or []
        ],
        message=annotations.get("workers/message"),
        author_email=item.get("author_email"),
        source=item.get("source"),
        triggered_by=annotations.get("workers/triggered_by"),
    )


def email_rule_from_api(item: dict[str, Any], key: str | None = None) -> EmailRule:
    return EmailRule(
        id=item["id"],
        name=item.get("name") or "",
        enabled=bool(item.get("enabled", True)),
        matchers=item.get("matchers") or [],
        actions=item.get("actions") or [],
        priority=item.get("priority"),
    )


def parse_multipart(content_type: str, body: bytes) -> list[tuple[str, bytes, str]]:
    """Modules out of a multipart/form-data body: (name, bytes, content type)."""
    import email.parser  # only the emulator and version downloads parse a body
    import email.policy

    parser = email.parser.BytesParser(policy=email.policy.HTTP)
    message = parser.parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    parts = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition") or part.get_filename() or ""
        payload = part.get_payload(decode=True) or b""
        parts.append((str(name), payload, part.get_content_type()))
    return parts


class CloudflareAPI:
    """Workers scripts, versions, deployments, secrets, Email Routing, D1 and R2: what we use."""

    def __init__(
        self,
        *,
        token: str,
        account_id: str,
        zone_id: str | None = None,
        base_url: str | None = None,
        timeout: float = 60.0,
        http_client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        refs: dict[str, str] | None = None,
    ) -> None:
        import cloudflare

        self._sdk = cloudflare
        self.account_id = account_id
        self.zone_id = zone_id
        self.refs = refs or {}
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.timeout = timeout  # the budget of one operation, retries and waits included
        self.monotonic: Callable[[], float] = time.monotonic  # tests move it to reach a deadline
        self._sleep = sleep
        per_call = httpx.Timeout(min(30.0, timeout), connect=min(10.0, timeout))
        # Plain http (the emulator) needs no TLS context: building one costs 0.15 s of start-up.
        self._verify = not self.base_url.startswith("http://")
        self._http = http_client or httpx.Client(
            timeout=per_call, limits=httpx.Limits(max_connections=20), verify=self._verify
        )
        self.client = cloudflare.Cloudflare(
            api_token=token,
            base_url=self.base_url,
            max_retries=0,
            timeout=per_call,
            http_client=self._http,
        )
        self.last_policy: RetryPolicy | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._versions: dict[tuple[str, str], Version] = {}  # immutable once made
        self._pool_lock = threading.Lock()
        _redact_library_logs()

    @classmethod
    def from_env(cls, project: Project, *, timeout: float = 60.0, **kwargs: Any) -> CloudflareAPI:
        """Credentials as wrangler reads them: CLOUDFLARE_API_TOKEN, CLOUDFLARE_ACCOUNT_ID, …"""
        token = _env("CLOUDFLARE_API_TOKEN")
        account = _ref(project.account_id, kwargs.get("refs"))
        zone = _ref(project.email_routing.zone_id, kwargs.get("refs"))
        base_url = os.environ.get("CLOUDFLARE_API_BASE_URL") or None
        if base_url is not None:
            parsed = httpx.URL(base_url) if "://" in base_url else None
            if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
                raise ConfigError(
                    f"CLOUDFLARE_API_BASE_URL is not a URL: {base_url!r}",
                    hint="export CLOUDFLARE_API_BASE_URL=https://host/client/v4, or unset it",
                )
        return cls(
            token=token,
            account_id=account,
            zone_id=zone,
            base_url=base_url,
            timeout=timeout,
            **kwargs,
        )

    def resolve(self, ref: str) -> str:
        """A ``${NAME}`` reference of the project file, as the calls will read it."""
        return _ref(ref, self.refs)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
        self.client.close()

    def __enter__(self) -> CloudflareAPI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ transport

    def _policy(self) -> RetryPolicy:
        policy = RetryPolicy(
            deadline=Deadline(self.timeout, clock=self.monotonic), sleep=self._sleep
        )
        self.last_policy = policy
        return policy

    def _look_before_retry(self, look: Callable[[], T | None]) -> Callable[[], T | None]:
        """A re-read between attempts whose own policy does not hide the outer one's waits."""

        def run() -> T | None:
            outer = self.last_policy
            try:
                return look()
            finally:
                self.last_policy = outer

        return run

    def _call(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        params: dict[str, Any] | None = None,
        body: Any = None,
        files: list[tuple[str, tuple[str, bytes, str]]] | None = None,
        raw: bool = False,
        state_left: str = "unchanged: the call did not take effect",
    ) -> Any:
        """One HTTP call through the SDK; transient failures become ``Transient``."""
        sdk = self._sdk
        options: dict[str, Any] = {}
        if params:
            options["params"] = params
        if files is not None:
            options["headers"] = {"Content-Type": "multipart/form-data"}
        cast_to: Any = httpx.Response if raw else object
        try:
            if method == "GET":
                result = self.client.get(path, cast_to=cast_to, options=options)
            elif method == "DELETE":
                result = self.client.delete(path, cast_to=cast_to, options=options, body=body)
            else:
                call = {
                    "POST": self.client.post,
                    "PUT": self.client.put,
                    "PATCH": self.client.patch,
                }[method]
                result = call(path, cast_to=cast_to, body=body, files=files, options=options)
        except sdk.RateLimitError as error:
            raise Transient(error, _retry_after(error.response)) from error
        except sdk.InternalServerError as error:
            raise Transient(error, _retry_after(error.response)) from error
        except sdk.APIStatusError as error:
            if error.status_code == 408:
                raise Transient(error) from error
            body_json = (
                error.body if isinstance(error.body, dict) else _json_or_none(error.response)
            )
            raise CloudflareError(
                operation,
                status=error.status_code,
                errors=_details(body_json),
                state_left=state_left,
            ) from None
        except (sdk.APIConnectionError, sdk.APITimeoutError) as error:
            raise Transient(error) from error
        if raw:
            return result
        if isinstance(result, dict) and result.get("success") is False:
            raise CloudflareError(
                operation, status=200, errors=_details(result), state_left=state_left
            )
        return result

    def _give_up(self, operation: str, state_left: str) -> Callable[[Transient, str], Exception]:
        def build(failure: Transient, reason: str) -> Exception:
            cause = failure.cause
            status = getattr(cause, "status_code", None)
            kind = RateLimited if status == 429 else CloudflareUnreachable
            message = redact(str(cause)) if not isinstance(cause, self._sdk.APIStatusError) else ""
            details = _details(getattr(cause, "body", None))
            if message:
                details.append(CloudflareErrorDetail(None, message))
            # why we stopped (attempts spent, or a wait past the deadline) is always said
            details.append(CloudflareErrorDetail(None, reason))
            return kind(operation, status=status, errors=details, state_left=state_left)

        return build

    def request(
        self, method: str, path: str, *, operation: str, retry: bool = True, **kwargs: Any
    ) -> Any:
        """A call retried by the policy: for reads and the idempotent PUT/DELETE."""
        state_left = kwargs.get("state_left", "unchanged: the call did not take effect")
        attempt = lambda: self._call(method, path, operation=operation, **kwargs)  # noqa: E731
        if not retry:
            try:
                return attempt()
            except Transient as failure:
                raise self._give_up(operation, state_left)(
                    failure, "not retried"
                ) from failure.cause
        return self._policy().run(attempt, self._give_up(operation, state_left))

    def concurrently(self, *calls: Callable[[], Any]) -> list[Any]:
        """Independent calls at once; the first error is raised after all have finished."""
        if not calls:
            return []
        if len(calls) == 1:
            return [calls[0]()]
        futures = [self._threads().submit(call) for call in calls]
        for future in futures:
            future.exception()  # wait for every call, failed or not
        for future in futures:
            if future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
        return [future.result() for future in futures]

    def _threads(self) -> ThreadPoolExecutor:
        """One pool for the client's life: a rehearsal makes a thousand rounds of reads.

        Wide enough that calls made from inside a call (an observe within a
        rollback's wave) never wait for a free thread.
        """
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="cloudflare")
            return self._pool

    def _script(self, script: str) -> str:
        return f"/accounts/{self.account_id}/workers/scripts/{script}"

    # ------------------------------------------------------------------ token

    def verify_token(self) -> dict[str, Any]:
        return self.request("GET", "/user/tokens/verify", operation="verify the API token")[
            "result"
        ]

    # ------------------------------------------------------------------ versions

    def list_versions(self, script: str, *, per_page: int = 100) -> list[Version]:
        """Every page of the version list, newest first (short items: tag and message, no vars)."""
        versions: list[Version] = []
        page = 1
        while True:
            body = self.request(
                "GET",
                f"{self._script(script)}/versions",
                operation=f"list versions of {script}",
                params={"page": page, "per_page": per_page},
            )
            items = (body.get("result") or {}).get("items") or []
            versions += [version_from_api(item) for item in items]
            info = body.get("result_info") or {}
            total = info.get("total_count")
            if not items or (total is not None and len(versions) >= total) or len(items) < per_page:
                return versions
            page += 1

    def get_version(self, script: str, version_id: str) -> Version:
        """One version, whole; read once per client: a version never changes on Cloudflare
        (a var or secret change makes a new one), and ``advance --wait`` re-observes the
        same live versions every few minutes of a bake."""
        key = (script, version_id)
        known = self._versions.get(key)
        if known is not None:
            return known
        body = self.request(
            "GET",
            f"{self._script(script)}/versions/{version_id}",
            operation=f"get version {version_id}",
        )
        version = version_from_api(body["result"])
        self._versions[key] = version
        return version

    def get_versions(self, script: str, version_ids: Sequence[str]) -> list[Version]:
        return self.concurrently(*[(lambda v=v: self.get_version(script, v)) for v in version_ids])

    def find_version_by_tag(self, script: str, tag: str) -> Version | None:
        """The newest version with this tag, whole (vars, secret names): the list holds neither."""
        matches = [v for v in self.list_versions(script) if v.tag == tag]
        if not matches:
            return None
        return self.get_version(script, max(matches, key=lambda v: v.number).id)

    def _post_version(
        self,
        script: str,
        metadata: dict[str, Any],
        modules: Sequence[tuple[str, bytes, str]],
        tag: str,
        operation: str,
    ) -> Version:
        """POST a version, never twice: a lost response is found again by its unique tag."""
        files = [("metadata", ("blob", json.dumps(metadata).encode(), "application/json"))]
        files += [(name, (name, content, ctype)) for name, content, ctype in modules]
        path = f"{self._script(script)}/versions"
        state = f"no version tagged {tag} on {script}, or one that takes no traffic"
        attempt = lambda: version_from_api(  # noqa: E731
            self._call("POST", path, operation=operation, files=files, state_left=state)["result"]
        )
        return self._policy().run(
            attempt,
            self._give_up(operation, state),
            before_retry=self._look_before_retry(lambda: self.find_version_by_tag(script, tag)),
        )

    def upload_version(
        self, script: str, bundle: Bundle, *, vars: dict[str, str], tag: str, message: str
    ) -> Version:
        """The bundle as a new version (no traffic). Idempotent: an existing tag is reused."""
        existing = self.find_version_by_tag(script, tag)
        if existing is not None:
            return existing
        metadata = bundle.with_vars(vars).metadata()
        metadata["keep_bindings"] = KEEP_SECRETS
        metadata["annotations"] = {"workers/tag": tag, "workers/message": message[:50]}
        modules = [(m.name, m.content, m.content_type) for m in bundle.modules]
        return self._post_version(script, metadata, modules, tag, f"upload a version of {script}")

    def version_content(
        self, script: str, version_id: str
    ) -> tuple[str, list[tuple[str, bytes, str]]]:
        """(main module, modules) of a version, byte for byte."""
        response: httpx.Response = self.request(
            "GET",
            f"{self._script(script)}/content/v2",
            operation=f"download the code of version {version_id}",
            params={"version": version_id},
            raw=True,
        )
        modules = parse_multipart(response.headers.get("content-type", ""), response.content)
        main = response.headers.get("cf-entrypoint") or (modules[0][0] if modules else "")
        return main, modules

    def version_parts(self, script: str, version_id: str) -> VersionParts:
        """A version's detail (bindings, runtime) and its code, read at once."""
        return tuple(  # type: ignore[return-value]
            self.concurrently(
                lambda: self._version_detail(script, version_id),
                lambda: self.version_content(script, version_id),
            )
        )

    def _version_detail(self, script: str, version_id: str) -> dict[str, Any]:
        return self.request(
            "GET",
            f"{self._script(script)}/versions/{version_id}",
            operation=f"get version {version_id}",
        )["result"]

    def derive_version(
        self,
        script: str,
        base_version_id: str,
        *,
        vars: dict[str, str] | None = None,
        add_secrets: Sequence[SecretValue] = (),
        remove_secrets: Sequence[str] = (),
        tag: str | None = None,
        message: str = "",
        check_existing: bool = True,
        parts: Callable[[str, str], VersionParts] | None = None,
    ) -> Version:
        """A version with ``base``'s code and bindings but these changes (CLOUDFLARE-API.md trap 2).

        Every binding that stays is ``inherit``-ed from the base version; vars get
        their new ``plain_text`` values; secrets are added with their value or
        dropped. With a tag the call is idempotent (``check_existing=False``: the
        caller has just listed the versions and knows the tag is new). When no
        binding would change, no version is made: the base is the answer.
        """
        if tag and check_existing:
            existing = self.find_version_by_tag(script, tag)
            if existing is not None:
                return existing
        tag = tag or f"tgk-{uuid.uuid4().hex[:12]}"
        detail, (main, modules) = (parts or self.version_parts)(script, base_version_id)
        current = (detail.get("resources") or {}).get("bindings") or []
        present = {b.get("name"): b for b in current}
        if (
            not add_secrets
            and not any(name in present for name in remove_secrets)
            and all(
                present.get(k, {}).get("type") == "plain_text" and present[k].get("text") == v
                for k, v in (vars or {}).items()
            )
        ):
            return version_from_api(detail)
        changed = set(vars or {}) | {s.name for s in add_secrets} | set(remove_secrets)
        bindings: list[dict[str, Any]] = [
            {"type": "inherit", "name": b["name"], "version_id": base_version_id}
            for b in current
            if b.get("name") not in changed
        ]
        bindings += [
            {"type": "plain_text", "name": k, "text": v} for k, v in sorted((vars or {}).items())
        ]
        bindings += [
            {"type": "secret_text", "name": s.name, "text": s.reveal()} for s in add_secrets
        ]
        runtime = (detail.get("resources") or {}).get("script_runtime") or {}
        metadata = {
            "main_module": main,
            "compatibility_date": runtime.get("compatibility_date") or "2024-09-23",
            "compatibility_flags": runtime.get("compatibility_flags") or [],
            "bindings": bindings,
            # Named, never left to the API's default (which keeps secret bindings when
            # keep_bindings is absent, as `wrangler deploy` relies on): every binding
            # that stays is an inherit above, so a removed secret is really gone.
            "keep_bindings": KEEP_ONLY_LISTED,
            "annotations": {"workers/tag": tag, "workers/message": message[:50]},
        }
        return self._post_version(
            script, metadata, modules, tag, f"create a version of {script} from {base_version_id}"
        )

    # ------------------------------------------------------------------ deployments

    def deployments(self, script: str) -> list[Deployment]:
        """Newest first, read from ``result.deployments`` (the SDK's list reads ``items``)."""
        body = self.request(
            "GET", f"{self._script(script)}/deployments", operation=f"list deployments of {script}"
        )
        items = (body.get("result") or {}).get("deployments") or []
        deployments = [deployment_from_api(item) for item in items]
        return sorted(deployments, key=lambda d: d.created_on, reverse=True)

    def live_deployment(self, script: str) -> Deployment | None:
        deployments = self.deployments(script)
        return deployments[0] if deployments else None

    def deploy(
        self,
        script: str,
        shares: dict[str, float],
        *,
        message: str | None = None,
        allow_force: bool = False,
    ) -> Deployment:
        """A percentage deployment: at most two versions summing to 100, checked before any call.

        A POST whose response is lost is not blindly repeated: the live deployment
        is read first, and if it already is this split with this message, that is
        the answer.
        """
        from tgk_deploy.errors import ConfigError as InputError

        if not 1 <= len(shares) <= 2:
            raise InputError(f"a deployment holds one or two versions, not {len(shares)}")
        # 0 % is allowed: a version in the deployment without traffic, which a version
        # override (the smoke check) can reach; wrangler `versions deploy` sends it too
        if abs(sum(shares.values()) - 100) > 1e-9 or any(p < 0 for p in shares.values()):
            raise InputError(f"deployment percentages must be 0 or more and sum to 100: {shares}")
        body: dict[str, Any] = {
            "strategy": "percentage",
            "versions": [{"version_id": v, "percentage": p} for v, p in shares.items()],
        }
        if message:
            body["annotations"] = {"workers/message": message[:50]}
        path = f"{self._script(script)}/deployments"
        operation = f"deploy {self._split_text(shares)} on {script}"
        state = f"traffic on {script} unchanged"

        sent_message = (body.get("annotations") or {}).get("workers/message")

        def already_there() -> Deployment | None:
            live = self.live_deployment(script)
            wanted = {k: float(v) for k, v in shares.items()}
            if (
                live
                and {v.version_id: v.percentage for v in live.versions} == wanted
                and live.message == sent_message  # what Cloudflare keeps: the first 50
            ):
                return live
            return None

        def attempt(force: bool = False) -> Deployment:
            params = {"force": "true"} if force else None
            result = self._call(
                "POST", path, operation=operation, body=body, params=params, state_left=state
            )
            return deployment_from_api(result["result"])

        look = self._look_before_retry(already_there)
        try:
            return self._policy().run(attempt, self._give_up(operation, state), before_retry=look)
        except CloudflareError as error:
            if SECRETS_CHANGED_SINCE_VERSION in error.codes and allow_force:
                return self._policy().run(
                    lambda: attempt(force=True),
                    self._give_up(operation, state),
                    before_retry=look,
                )
            if SECRETS_CHANGED_SINCE_VERSION in error.codes:
                error.hint = (
                    "secrets changed since that version; re-run with --force to deploy it anyway"
                )
            raise

    @staticmethod
    def _split_text(shares: dict[str, float]) -> str:
        return " / ".join(f"{v[:8]} {p:g} %" for v, p in shares.items())

    # ------------------------------------------------------------------ secrets

    def list_secrets(self, script: str) -> list[str]:
        body = self.request(
            "GET", f"{self._script(script)}/secrets", operation=f"list secrets of {script}"
        )
        return sorted(item["name"] for item in body.get("result") or [])

    def put_secret(self, script: str, secret: SecretValue) -> None:
        """Script-level PUT: Cloudflare copies the latest version with the secret and deploys it.

        Not blindly retried: each PUT that lands makes a version and a
        deployment, so after a lost answer the secret list is read first, and
        a secret that is there now was put by the attempt whose answer was lost.
        """
        path = f"{self._script(script)}/secrets"
        operation = f"put secret {secret.name} on {script}"
        state = f"secret {secret.name} not put on {script}, or put by the lost attempt"
        body = {"name": secret.name, "text": secret.reveal(), "type": "secret_text"}

        def landed() -> bool | None:
            return True if secret.name in self.list_secrets(script) else None

        self._policy().run(
            lambda: self._call("PUT", path, operation=operation, body=body, state_left=state),
            self._give_up(operation, state),
            before_retry=self._look_before_retry(landed),
        )

    def delete_secret(self, script: str, name: str) -> None:
        try:
            self.request(
                "DELETE",
                f"{self._script(script)}/secrets/{name}",
                operation=f"delete secret {name} from {script}",
            )
        except CloudflareError as error:
            if error.status != 404:
                raise  # already gone is what we wanted

    # ------------------------------------------------------------------ email routing

    def _zone(self) -> str:
        if not self.zone_id:
            raise ConfigError("the zone id is not set", hint="export CLOUDFLARE_ZONE_ID=…")
        return f"/zones/{self.zone_id}/email/routing/rules"

    def email_rules(self) -> list[EmailRule]:
        from tgk_deploy.errors import MissingResource

        rules: list[EmailRule] = []
        page = 1
        while True:
            try:
                body = self.request(
                    "GET",
                    self._zone(),
                    operation="list email routing rules",
                    params={"page": page, "per_page": 50},
                )
            except CloudflareError as error:
                if error.status == 404:
                    raise MissingResource(
                        [f"zone {self.zone_id} (email_routing.zone_id) or its Email Routing"]
                    ) from None
                raise
            items = body.get("result") or []
            rules += [email_rule_from_api(item) for item in items]
            total = (body.get("result_info") or {}).get("total_count")
            if not items or total is None or len(rules) >= total:
                return rules
            page += 1

    def get_email_rule(self, rule_id: str) -> EmailRule:
        return email_rule_from_api(
            self.request("GET", f"{self._zone()}/{rule_id}", operation=f"get email rule {rule_id}")[
                "result"
            ]
        )

    def update_email_rule(self, rule: EmailRule) -> EmailRule:
        """PUT replaces the whole rule: actions and matchers go every time."""
        body = {
            "name": rule.name,
            "enabled": rule.enabled,
            "matchers": rule.matchers,
            "actions": rule.actions,
        }
        if rule.priority is not None:
            body["priority"] = rule.priority
        result = self.request(
            "PUT",
            f"{self._zone()}/{rule.id}",
            operation=f"update email rule {rule.name!r}",
            body=body,
        )
        return email_rule_from_api(result["result"])

    def set_email_rule_enabled(
        self, routing: EmailRoutingSpec, rule: EmailRule, enabled: bool
    ) -> EmailRule:
        current = rule if rule.matchers and rule.actions else self.get_email_rule(rule.id)
        if current.enabled == enabled:
            return current
        return self.update_email_rule(current.model_copy(update={"enabled": enabled}))

    def catch_all(self) -> dict[str, Any]:
        return self.request("GET", f"{self._zone()}/catch_all", operation="get the catch-all rule")[
            "result"
        ]

    def update_catch_all(self, rule: dict[str, Any]) -> dict[str, Any]:
        body = {k: rule[k] for k in ("name", "enabled", "matchers", "actions") if k in rule}
        return self.request(
            "PUT", f"{self._zone()}/catch_all", operation="update the catch-all rule", body=body
        )["result"]

    # ------------------------------------------------------------------ D1, R2, scripts

    def export_d1(self, database: D1Spec, target: Path, *, poll_interval: float = 1.0) -> Path:
        """Export to a SQL file: poll with the bookmark until complete, then download it."""
        database_id = _ref(database.database_id, self.refs)
        path = f"/accounts/{self.account_id}/d1/database/{database_id}/export"
        bookmark: str | None = None
        operation = f"export D1 database {database.name}"
        deadline = Deadline(
            self.timeout, clock=self.monotonic
        )  # a big database: a bigger --timeout
        while True:
            body: dict[str, Any] = {"output_format": "polling"}
            if bookmark:
                body["current_bookmark"] = bookmark
            result = self.request("POST", path, operation=operation, body=body)["result"]
            status = result.get("status")
            bookmark = result.get("at_bookmark") or bookmark
            if status == "complete":
                url = (result.get("result") or {}).get("signed_url") or result.get("signed_url")
                break
            if status == "error":
                raise CloudflareError(
                    operation,
                    errors=[CloudflareErrorDetail(None, str(result.get("error")))],
                    state_left="no export; the database is available again",
                )
            if deadline.remaining() < poll_interval:
                raise CloudflareUnreachable(
                    operation,
                    state_left="the export was abandoned (Cloudflare cancels it when polling stops)",
                )
            self._sleep(poll_interval)
        if url.startswith("https://") and not self._verify:
            response = httpx.get(url, timeout=self._http.timeout)  # a real signed URL: verified
        else:
            response = self._http.get(url)
        response.raise_for_status()
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        partial.write_bytes(response.content)
        partial.replace(target)
        return target

    def _confirm(self, kind: str, name: str, confirm: str | None) -> None:
        if confirm != name:
            raise ConfigError(
                f"deleting {kind} {name!r} needs confirm={name!r}: it cannot be undone"
            )

    def delete_script(self, script: str, *, confirm: str | None) -> None:
        self._confirm("Worker script", script, confirm)
        self.request(
            "DELETE",
            self._script(script),
            operation=f"delete Worker {script}",
            params={"force": "true"},
        )

    def delete_d1(self, database: D1Spec, *, confirm: str | None) -> None:
        self._confirm("D1 database", database.name, confirm)
        database_id = _ref(database.database_id, self.refs)
        self.request(
            "DELETE",
            f"/accounts/{self.account_id}/d1/database/{database_id}",
            operation=f"delete D1 database {database.name}",
        )

    def delete_r2_bucket(self, bucket: str, *, confirm: str | None) -> None:
        self._confirm("R2 bucket", bucket, confirm)
        self.request(
            "DELETE",
            f"/accounts/{self.account_id}/r2/buckets/{bucket}",
            operation=f"delete R2 bucket {bucket}",
        )


def _redact_library_logs() -> None:
    """CLOUDFLARE_LOG=debug makes the SDK log request bodies, secret values included: mask them.

    A logger's filter sees only records made on that logger, a handler's sees
    propagated ones too, so both get the redacting filter.
    """
    import logging

    from tgk_deploy.secret_values import RedactingFilter

    redacting = RedactingFilter()
    for name in ("cloudflare", "cloudflare._base_client", "httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(redacting)
        for handler in logger.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(redacting)


def _retry_after(response: httpx.Response | None) -> float | None:
    if response is None:
        return None
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, moment.timestamp() - time.time())


def _json_or_none(response: httpx.Response | None) -> Any:
    if response is None:
        return None
    try:
        return response.json()
    except ValueError:
        return None
