"""Everything one engine run needs, gathered once: spec, Cloudflare, metrics, journal, clock.

Commands build a ``Context`` with ``open_context`` and hand it to the engine
functions; tests and ``rehearse`` build one around the emulator, a scenario
and a simulated clock. The engine reports progress through ``events`` and
never prints.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tgk_deploy.engine.clock import Clock, SystemClock
from tgk_deploy.planner.observed import ObservedState
from tgk_deploy.spec.files import find_project_file
from tgk_deploy.spec.models import Spec

if TYPE_CHECKING:
    from concurrent.futures import Future

    from tgk_deploy.cloudflare.api import CloudflareAPI
    from tgk_deploy.journal.store import Journal
    from tgk_deploy.notify import Notifier
    from tgk_deploy.planner.plan import Plan
    from tgk_deploy.secret_values import SecretValue
    from tgk_deploy.smoke import SmokeReport
    from tgk_deploy.triggers.samples import MetricsProvider


@dataclass(frozen=True)
class Event:
    """Something a person watching should see now (a live display, a log line)."""

    kind: str  # step, action, verdict, wait, response, note
    message: str
    data: dict[str, Any] = field(default_factory=dict)


def new_run_id() -> str:
    return "r" + secrets.token_hex(4)


@dataclass
class Context:
    spec: Spec
    project_dir: Path
    api: CloudflareAPI
    clock: Clock = field(default_factory=SystemClock)
    metrics: MetricsProvider | None = None
    journal: Journal | None = None
    run_id: str = field(default_factory=new_run_id)
    events: Callable[[Event], None] = lambda event: None
    allow_force: bool = False
    operator: str = "unknown"
    backups: Path | None = None  # default: backups/ beside the project file
    notifier: Notifier | None = None
    pending: list[Any] = field(default_factory=list)
    early: dict[tuple[tuple[str, ...], bool], Future[ObservedState]] = field(
        default_factory=dict, repr=False
    )
    worker_urls: dict[str, str] = field(default_factory=dict)  # environment -> URL (rehearsals)
    worker_http: Any = None  # an httpx.Client for the Worker's self-test (tests hand one)
    hashes: dict[str, tuple[tuple[tuple[str, int, int], ...], str]] = field(
        default_factory=dict, repr=False
    )  # environment -> (the files' stat signature, the bundle's hash)

    @property
    def bundle_dir(self) -> Path:
        return self.project_dir / self.spec.project.bundle

    @property
    def backups_dir(self) -> Path:
        return self.backups or self.project_dir / "backups"

    @property
    def lock_path(self) -> Path:
        journal = (
            self.journal.path if self.journal else self.project_dir / self.spec.project.journal
        )
        return journal.parent / "run.lock"

    def emit(self, kind: str, message: str, **data: Any) -> None:
        self.events(Event(kind, message, data))

    def notify(self, kind: str, summary: str, **fields: Any) -> None:
        """Tell people (Slack, PagerDuty) without waiting: sends go out beside the work."""
        if self.notifier is None:
            return
        from tgk_deploy.notify import Event as Notification

        if kind == "rollback-finished":
            # after "started" has landed (or timed out): a resolve must not overtake its trigger;
            # the rollback itself is done by now, so this waits on nothing that matters
            self.finish_notifications()
        self.pending.append(self.notifier.start(Notification(kind=kind, summary=summary, **fields)))

    def finish_notifications(self) -> list[Any]:
        """Wait for what was sent, at most the notifier's own timeout; journal the outcome."""
        reports = [pending.wait() for pending in self.pending]
        self.pending.clear()
        for report in reports:
            if self.journal is not None and not report.ok:
                self.journal.action(
                    self.run_id, "notify", "notification not delivered", "failed", result=report
                )
        return reports

    def scripts(self) -> dict[str, str]:
        return {name: env.script for name, env in self.spec.project.environments.items()}

    def observe_soon(self, environments: list[str] | None = None, *, details: bool = True) -> None:
        """Send ``observe``'s reads now, on a thread; ``observe`` with the same arguments takes them.

        A command imports what it needs after the first round trip (planner,
        applier, rich) while that round trip is in flight, instead of before it.
        """
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="observe")
        key = (tuple(environments or ()), details)
        self.early[key] = pool.submit(self._observe, environments, details, True)
        pool.shutdown(wait=False)  # the thread ends with its reads

    def observe(
        self, environments: list[str] | None = None, *, details: bool = True, require: bool = True
    ) -> ObservedState:
        """What Cloudflare says now, plus the local D1 backups already taken."""
        early = self.early.pop((tuple(environments or ()), details), None) if require else None
        if early is not None:
            return early.result()
        return self._observe(environments, details, require)

    def _observe(
        self, environments: list[str] | None, details: bool, require: bool
    ) -> ObservedState:
        from tgk_deploy.cloudflare.observe import observe

        observed = observe(
            self.api,
            self.spec.project,
            now=self.clock.now(),
            environments=environments,
            with_details=details,
            require=require,
        )
        if self.backups_dir.is_dir():
            observed.backups = sorted(p.stem for p in self.backups_dir.glob("*.sql"))
        return observed

    def plan(self, observed: ObservedState, phase: int) -> Plan:
        """Plan with the hash of the bundle the next step uploads: its environment's."""
        from tgk_deploy.planner.plan import find_position, next_step, plan

        upcoming = next_step(self.spec, find_position(self.spec, observed))
        environment = upcoming[1].environment if upcoming is not None else "production"
        return plan(self.spec, observed, phase, self.bundle_hash(environment))

    def worker_url(self, environment: str) -> str:
        from tgk_deploy.smoke import worker_url

        return self.worker_urls.get(environment) or worker_url(
            self.spec, self.bundle_dir, environment
        )

    def smoke_inputs(self, environment: str) -> tuple[SecretValue, str]:
        """The self-test's token and the Worker's URL: checked while planning (bad input,
        exit 2, before any call) and read again when the check runs."""
        from tgk_deploy.smoke import smoke_token

        return smoke_token(self.spec), self.worker_url(environment)

    def smoke(self, environment: str, version_id: str) -> SmokeReport:
        """The Worker's self-test on ``version_id``, retried on this context's clock; its
        verdict is told to whoever watches."""
        import httpx

        from tgk_deploy.smoke import run_smoke

        settings = self.spec.project.smoke
        token, url = self.smoke_inputs(environment)
        with ExitStack() as stack:
            http = self.worker_http or stack.enter_context(
                httpx.Client(timeout=settings.timeout.total_seconds(), follow_redirects=False)
            )
            report = run_smoke(
                http,
                environment=environment,
                script=self.spec.project.environments[environment].script,
                url=url,
                version_id=version_id,
                token=token,
                attempts=settings.attempts,
                interval=settings.retry_interval,
                sleep=self.clock.sleep,
            )
        self.emit("verdict", f"smoke {report.outcome}: {report.why}", smoke=report)
        return report

    def bundle_hash(self, environment: str) -> str:
        """The hash of the bundle for ``environment``, re-read only when a file of it changed.

        ``advance --wait`` and rehearsals plan hundreds of times; an upload still
        re-reads the bundle and compares, so a stale hash can never be uploaded.
        """
        from tgk_deploy.bundle import read_bundle

        signature = _signature(self.bundle_dir)
        cached = self.hashes.get(environment)
        if cached is not None and cached[0] == signature:
            return cached[1]
        content_hash = read_bundle(self.bundle_dir, environment).content_hash
        self.hashes[environment] = (signature, content_hash)
        return content_hash


def _signature(bundle_dir: Path) -> tuple[tuple[str, int, int], ...]:
    """Name, mtime and size of wrangler.toml and of every file and folder beside it but
    node_modules: what a bundle can be read from, one stat each."""
    found: list[tuple[str, int, int]] = []
    stack = [bundle_dir]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.name in ("node_modules", ".git") or entry.name.startswith(".wrangler"):
                continue
            info = entry.stat(follow_symlinks=True)
            found.append((entry.path, info.st_mtime_ns, info.st_size))
            if entry.is_dir():
                stack.append(Path(entry.path))
    return tuple(sorted(found))


def load_project_spec(project_file: Path | None) -> tuple[Spec, Path]:
    """The spec a command acts on: from the spec cache when its files have not changed."""
    from tgk_deploy.errors import ConfigError
    from tgk_deploy.spec.cache import load_spec_cached

    path = project_file or find_project_file()
    if path is None:
        raise ConfigError("no tgk-deploy.yaml here or in a parent folder; pass --project FILE")
    return load_spec_cached(path), path.parent.resolve()


def require_phase(spec: Spec, phase: int) -> None:
    """An unknown phase number is bad input (exit 2), said before any call."""
    from tgk_deploy.errors import ConfigError

    try:
        spec.phase(phase)
    except KeyError:
        known = ", ".join(str(p.phase) for p in spec.phases)
        raise ConfigError(f"there is no phase {phase}; the spec has phases {known}") from None


def live_plan(spec: Spec, project_file: Path | None, phase: int, *, timeout: float = 60.0) -> Plan:
    """``plan --phase N`` against Cloudflare: observe, hash the bundle the next step uploads, plan.

    Reads only (no journal, no Prometheus): the bundle hash is of the
    environment the next step deploys to, since wrangler.toml's env sections
    make staging's upload differ from production's.
    """
    from tgk_deploy.cloudflare.api import CloudflareAPI

    require_phase(spec, phase)
    path = project_file or find_project_file()
    project_dir = path.parent.resolve() if path is not None else Path.cwd()
    with CloudflareAPI.from_env(spec.project, timeout=timeout) as api:
        context = Context(spec=spec, project_dir=project_dir, api=api)
        observed = context.observe()
    return context.plan(observed, phase)


@contextmanager
def open_context(
    project_file: Path | None,
    *,
    timeout: float = 60.0,
    with_metrics: bool | Literal["optional"] = True,
    with_journal: bool = True,
    events: Callable[[Event], None] | None = None,
    allow_force: bool = False,
    observe_first: list[str] | None = None,
) -> Iterator[Context]:
    """A context on the real (or ``CLOUDFLARE_API_BASE_URL``) API, from the environment.

    ``observe_first``: these environments' reads (without version details, as
    an immediate rollback wants them) go out as soon as the client exists and
    the input is known good, before the notifier and the journal are opened;
    ``ctx.observe(observe_first, details=False)`` takes the answer.
    """
    import getpass
    import os

    from tgk_deploy.cloudflare.api import CloudflareAPI

    spec, project_dir = load_project_spec(project_file)
    with ExitStack() as stack:
        api = stack.enter_context(CloudflareAPI.from_env(spec.project, timeout=timeout))
        metrics = None
        if with_metrics:
            from tgk_deploy.errors import ConfigError
            from tgk_deploy.triggers.prometheus import PrometheusClient

            try:
                metrics = stack.enter_context(PrometheusClient.from_spec(spec.project.prometheus))
            except ConfigError as error:
                if with_metrics != "optional":
                    raise
                # a gradual rollback watches triggers if it can, and goes on if it cannot
                if events is not None:
                    events(Event("note", f"no trigger checks: {error.message}"))
        ctx = Context(
            spec=spec,
            project_dir=project_dir,
            api=api,
            metrics=metrics,
            events=events or (lambda event: None),
            allow_force=allow_force,
            operator=os.environ.get("TGK_DEPLOY_OPERATOR") or getpass.getuser(),
        )
        if observe_first is not None:
            ctx.observe_soon(observe_first, details=False)
        from tgk_deploy.journal.store import Journal, journal_path
        from tgk_deploy.notify import Notifier

        ctx.notifier = stack.enter_context(Notifier.from_project(spec.project))
        if with_journal:
            path = journal_path(project_dir, spec.project.journal)

            def journal_failed(message: str) -> None:
                if events is not None:
                    events(Event("note", f"{message} (history only: the run goes on)"))

            try:
                ctx.journal = stack.enter_context(Journal(path, on_failure=journal_failed))
            except (OSError, sqlite3.Error) as error:
                # the journal is history, never a precondition: a rollback goes on without it
                if events is not None:
                    events(Event("note", f"journal {path} unavailable ({error}); not recording"))
        try:
            yield ctx
        finally:
            ctx.finish_notifications()
