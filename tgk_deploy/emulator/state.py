"""The emulated Cloudflare account: one of each service, sharing a clock, ids and a lock.

Each service (``services/``) holds its own state and rules and refuses what
Cloudflare would refuse with Cloudflare's error code (``ApiError``). This
class builds them, resets them (moto's ``/moto-api/reset``), answers the
token check for every route, and keeps the seeding verbs tests,
``tgk-deploy rehearse`` and the control plane use.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tgk_deploy.emulator.context import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_AUTHOR,
    DEFAULT_ZONE_ID,
    DEFAULT_ZONE_NAME,
    Clock,
    Shared,
    SimulatedClock,
    wall_clock,
)
from tgk_deploy.emulator.services.accounts import Accounts, Zone
from tgk_deploy.emulator.services.d1 import D1, DEFAULT_EXPORT_POLLS, D1Database
from tgk_deploy.emulator.services.email_routing import EmailRouting, EmailRule
from tgk_deploy.emulator.services.kv import KV
from tgk_deploy.emulator.services.r2 import R2, R2Bucket
from tgk_deploy.emulator.services.workers import (
    Deployment,
    Module,
    Script,
    Upload,
    Version,
    Workers,
)
from tgk_deploy.emulator.wire import ApiError, Code, JsonDict, Page

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_ZONE_ID",
    "DEFAULT_ZONE_NAME",
    "ApiError",
    "Clock",
    "Code",
    "Deployment",
    "EmulatorState",
    "Module",
    "Page",
    "Script",
    "SimulatedClock",
    "Upload",
    "Version",
    "wall_clock",
]


class EmulatorState:
    """One emulated Cloudflare: Workers, Email Routing, D1, R2, KV, accounts, zones. Thread-safe."""

    def __init__(
        self,
        *,
        clock: Clock = wall_clock,
        seed: int = 0,
        tokens: Iterable[str] | None = None,
        author_email: str = DEFAULT_AUTHOR,
        export_polls: int = DEFAULT_EXPORT_POLLS,
    ) -> None:
        self.shared = Shared(clock=clock, seed=seed, author_email=author_email)
        self._tokens: frozenset[str] | None = frozenset(tokens) if tokens else None
        self._export_polls = export_polls
        self.reset()

    def reset(self) -> None:
        """Forget everything; tokens, clock and export polls are kept."""
        with self.shared.lock:
            self.shared.restart_ids()
            self.accounts = Accounts(self.shared, self._tokens)
            self.workers = Workers(self.shared)
            self.email_routing = EmailRouting(self.shared)
            self.d1 = D1(self.shared, self._export_polls)
            self.r2 = R2(self.shared)
            self.kv = KV(self.shared)

    def service(self, name: str) -> Any:
        """The service a route belongs to (``wire.Route.service``)."""
        return getattr(self, name)

    # ---- settings kept across resets

    @property
    def clock(self) -> Clock:
        return self.shared.clock

    @property
    def author_email(self) -> str:
        return self.shared.author_email

    @author_email.setter
    def author_email(self, value: str) -> None:
        self.shared.author_email = value

    @property
    def public_origin(self) -> str:
        return self.shared.public_origin

    @public_origin.setter
    def public_origin(self, origin: str) -> None:
        self.shared.public_origin = origin

    @property
    def export_polls(self) -> int:
        return self._export_polls

    @export_polls.setter
    def export_polls(self, polls: int) -> None:
        self._export_polls = polls
        self.d1.export_polls = polls

    def set_tokens(self, tokens: Iterable[str] | None) -> None:
        """Accept only these bearer tokens; ``None``: any non-empty token."""
        self._tokens = frozenset(tokens) if tokens is not None else None
        self.accounts.set_tokens(tokens)

    def authenticate(self, authorization: str | None) -> str:
        return self.accounts.authenticate(authorization)

    # ---- what tests read directly

    @property
    def scripts(self) -> dict[tuple[str, str], Script]:
        return self.workers.scripts

    @property
    def email_rules(self) -> dict[str, dict[str, EmailRule]]:
        return self.email_routing.email_rules

    @property
    def databases(self) -> dict[tuple[str, str], D1Database]:
        return self.d1.databases

    @property
    def buckets(self) -> dict[tuple[str, str], R2Bucket]:
        return self.r2.buckets

    def get_script(self, account_id: str, name: str) -> Script:
        return self.workers.get_script(account_id, name)

    def list_versions(self, account_id: str, name: str, **kwargs: Any) -> Page:
        return self.workers.list_versions(account_id, name, **kwargs)

    def create_deployment(self, account_id: str, name: str, body: Any, **kwargs: Any) -> JsonDict:
        return self.workers.create_deployment(account_id, name, body, **kwargs)

    def dump(self, token: str) -> str | None:
        return self.d1.dump(token)

    # ---- seeding (the control plane's verbs)

    def seed_script(self, name: str, **kwargs: Any) -> Version:
        """A script with one version deployed at 100 %, as a script PUT would leave it."""
        return self.workers.seed_script(name, **kwargs)

    def seed_version(self, name: str, **kwargs: Any) -> Version:
        """An undeployed version of an existing script (what ``versions upload`` makes)."""
        return self.workers.seed_version(name, **kwargs)

    def seed_email_rule(self, name: str, **kwargs: Any) -> EmailRule:
        return self.email_routing.seed_email_rule(name, **kwargs)

    def seed_d1(self, name: str, **kwargs: Any) -> D1Database:
        return self.d1.seed_d1(name, **kwargs)

    def seed_r2(
        self, name: str, *, objects: Mapping[str, bytes] | None = None, **kwargs: Any
    ) -> R2Bucket:
        return self.r2.seed_r2(name, objects=objects, **kwargs)

    def seed_zone(self, name: str, **kwargs: Any) -> Zone:
        return self.accounts.seed_zone(name, **kwargs)

    def seed_demo(
        self,
        *,
        account_id: str = DEFAULT_ACCOUNT_ID,
        zone_id: str = DEFAULT_ZONE_ID,
        smoke_token: str | None = None,
    ) -> JsonDict:
        """The world of tgk-deploy.yaml before phase 1: both scripts, legacy routing on.

        ``smoke_token``: the SMOKE_TOKEN secret both scripts were given before the
        rollout (``wrangler secret put SMOKE_TOKEN``), for the smoke check.
        """
        with self.shared.lock:
            ids: JsonDict = {"account_id": account_id, "zone_id": zone_id}
            if zone_id not in self.accounts.zones:
                self.accounts.seed_zone(
                    f"{zone_id[:8]}.example", zone_id=zone_id, account_id=account_id
                )
            for script in ("tgk-email-orchestrator", "tgk-email-orchestrator-staging"):
                version = self.seed_script(
                    script,
                    account_id=account_id,
                    vars={"AI_ANALYSIS": "false", "DYNAMIC_ROUTING": "false"},
                    secrets={"TELEGRAM_BOT_TOKEN": "emulated-telegram-token"}
                    | ({"SMOKE_TOKEN": smoke_token} if smoke_token else {}),
                    message="initial upload",
                )
                ids[script] = version.id
            worker = self.seed_email_rule(
                "tgk-email-orchestrator",
                zone_id=zone_id,
                enabled=False,
                worker="tgk-email-orchestrator",
            )
            legacy = self.seed_email_rule("legacy-email-router", zone_id=zone_id, enabled=True)
            database = self.seed_d1("tgk-email-db", account_id=account_id)
            self.seed_r2("tgk-email-attachments", account_id=account_id)
            ids.update(
                zone_name=self.accounts.zones[zone_id].name,
                worker_rule=worker.id,
                legacy_rule=legacy.id,
                d1_database_id=database.uuid,
                r2_bucket="tgk-email-attachments",
            )
            return ids
