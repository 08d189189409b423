"""Workers KV: namespaces only, listed (``wrangler delete`` looks for its Sites namespace).

tgk-email-orchestrator binds no KV namespace; the emulator keeps the list so a
client that looks finds an empty account rather than a missing route.
"""

from __future__ import annotations

from dataclasses import dataclass

from tgk_deploy.emulator.context import DEFAULT_ACCOUNT_ID, Shared
from tgk_deploy.emulator.wire import JsonDict, Request, Response, page_envelope, paginate, router


@dataclass
class Namespace:
    account_id: str
    id: str
    title: str

    def to_api(self) -> JsonDict:
        return {"id": self.id, "title": self.title, "supports_url_encoding": True}


class KV:
    def __init__(self, shared: Shared) -> None:
        self._shared = shared
        self.namespaces: dict[str, Namespace] = {}

    def list_namespaces(self, account_id: str) -> list[JsonDict]:
        with self._shared.lock:
            found = [n for n in self.namespaces.values() if n.account_id == account_id]
            return [n.to_api() for n in sorted(found, key=lambda n: n.title)]

    def seed_namespace(self, title: str, *, account_id: str = DEFAULT_ACCOUNT_ID) -> Namespace:
        with self._shared.lock:
            namespace = Namespace(account_id, self._shared.hex32(), title)
            self.namespaces[namespace.id] = namespace
            return namespace


route = router("kv")


@route("GET", "/accounts/{account_id}/storage/kv/namespaces")
def _list_namespaces(kv: KV, request: Request, params: dict[str, str]) -> Response:
    page = paginate(
        kv.list_namespaces(params["account_id"]),
        request.int_param("page", 1),
        request.int_param("per_page", 20),
    )
    return page_envelope(page)
