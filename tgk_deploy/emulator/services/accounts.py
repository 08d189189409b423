"""Accounts, zones and API tokens: how a client finds the ids the other services are under.

wrangler resolves a domain to its zone with ``GET /zones?name=`` and checks its
token with ``GET /user/tokens/verify``; the emulator always has one account
and one zone (``DEFAULT_ACCOUNT_ID``, ``DEFAULT_ZONE_ID`` named
``DEFAULT_ZONE_NAME``), and ``seed_zone`` adds more.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from tgk_deploy.emulator.context import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_ZONE_ID,
    DEFAULT_ZONE_NAME,
    Shared,
    iso,
)
from tgk_deploy.emulator.wire import (
    ApiError,
    Code,
    JsonDict,
    Request,
    Response,
    envelope,
    page_envelope,
    paginate,
    router,
)

ACCOUNT_NAME = "tgk-deploy emulator"


@dataclass
class Zone:
    id: str
    name: str
    account_id: str
    created_on: datetime

    def to_api(self) -> JsonDict:
        return {
            "id": self.id,
            "name": self.name,
            "status": "active",
            "paused": False,
            "type": "full",
            "development_mode": 0,
            "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
            "original_name_servers": [],
            "original_registrar": None,
            "original_dnshost": None,
            "created_on": iso(self.created_on),
            "modified_on": iso(self.created_on),
            "activated_on": iso(self.created_on),
            "meta": {},
            "owner": {"id": None, "type": "user", "email": None},
            "account": {"id": self.account_id, "name": ACCOUNT_NAME},
            "permissions": [],
            "plan": {},
        }


class Accounts:
    """The accounts and zones that exist, and which bearer tokens are accepted."""

    def __init__(self, shared: Shared, tokens: Iterable[str] | None = None) -> None:
        self._shared = shared
        self.accepted_tokens: frozenset[str] | None = frozenset(tokens) if tokens else None
        self.zones: dict[str, Zone] = {}
        self.seed_zone(DEFAULT_ZONE_NAME, zone_id=DEFAULT_ZONE_ID)

    # ---- tokens

    def set_tokens(self, tokens: Iterable[str] | None) -> None:
        """Accept only these bearer tokens; ``None``: any non-empty token."""
        with self._shared.lock:
            self.accepted_tokens = frozenset(tokens) if tokens is not None else None

    def authenticate(self, authorization: str | None) -> str:
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        accepted = self.accepted_tokens
        if (
            scheme.lower() != "bearer"
            or not token
            or (accepted is not None and token not in accepted)
        ):
            raise ApiError(401, Code.AUTH, "Authentication error")
        return token

    def verify_token(self, authorization: str | None) -> JsonDict:
        token = self.authenticate(authorization)
        return {"id": hashlib.md5(token.encode()).hexdigest(), "status": "active"}

    # ---- accounts and zones

    def accounts(self) -> list[JsonDict]:
        with self._shared.lock:
            ids = sorted({DEFAULT_ACCOUNT_ID, *(z.account_id for z in self.zones.values())})
            return [{"id": a, "name": ACCOUNT_NAME, "type": "standard"} for a in ids]

    def list_zones(self, *, name: str | None = None, account_id: str | None = None) -> list[Zone]:
        with self._shared.lock:
            return [
                z
                for z in self.zones.values()
                if name in (None, z.name) and account_id in (None, z.account_id)
            ]

    def get_zone(self, zone_id: str) -> Zone:
        with self._shared.lock:
            zone = self.zones.get(zone_id)
            if zone is None:
                raise ApiError(404, Code.ZONE_NOT_FOUND, "Invalid zone identifier")
            return zone

    def seed_zone(
        self, name: str, *, zone_id: str | None = None, account_id: str = DEFAULT_ACCOUNT_ID
    ) -> Zone:
        with self._shared.lock:
            zone = Zone(zone_id or self._shared.hex32(), name, account_id, self._shared.clock())
            self.zones[zone.id] = zone
            return zone


# --- HTTP --------------------------------------------------------------------------------------

route = router("accounts")


@route("GET", "/user/tokens/verify")
def _verify(accounts: Accounts, request: Request, params: dict[str, str]) -> Response:
    return envelope(
        accounts.verify_token(request.headers.get("authorization")),
        messages=[{"code": 10000, "message": "This API Token is valid and active"}],
    )


@route("GET", "/accounts")
def _list_accounts(accounts: Accounts, request: Request, params: dict[str, str]) -> Response:
    page = paginate(
        accounts.accounts(), request.int_param("page", 1), request.int_param("per_page", 20)
    )
    return page_envelope(page)


@route("GET", "/zones")
def _list_zones(accounts: Accounts, request: Request, params: dict[str, str]) -> Response:
    zones = accounts.list_zones(name=request.param("name"), account_id=request.param("account.id"))
    page = paginate(
        [z.to_api() for z in zones],
        request.int_param("page", 1),
        request.int_param("per_page", 20),
    )
    return page_envelope(page)


@route("GET", "/zones/{zone_id}")
def _get_zone(accounts: Accounts, request: Request, params: dict[str, str]) -> Response:
    return envelope(accounts.get_zone(params["zone_id"]).to_api())
