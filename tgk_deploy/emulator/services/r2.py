"""R2: buckets (what tgk-deploy reads and deletes; objects only count toward "not empty")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from tgk_deploy.emulator.context import DEFAULT_ACCOUNT_ID, Shared, iso
from tgk_deploy.emulator.wire import ApiError, Code, JsonDict, Request, Response, envelope, router


@dataclass
class R2Bucket:
    account_id: str
    name: str
    creation_date: datetime
    objects: dict[str, bytes] = field(default_factory=dict)

    def to_api(self) -> JsonDict:
        return {
            "name": self.name,
            "creation_date": iso(self.creation_date),
            "location": "enam",
            "storage_class": "Standard",
        }


class R2:
    """Every R2 bucket of the emulated accounts."""

    def __init__(self, shared: Shared) -> None:
        self._shared = shared
        self.buckets: dict[tuple[str, str], R2Bucket] = {}

    def _bucket(self, account_id: str, bucket: str) -> R2Bucket:
        found = self.buckets.get((account_id, bucket))
        if found is None:
            raise ApiError(404, Code.R2_NO_SUCH_BUCKET, "The specified bucket does not exist.")
        return found

    def get_bucket(self, account_id: str, bucket: str) -> JsonDict:
        with self._shared.lock:
            return self._bucket(account_id, bucket).to_api()

    def delete_bucket(self, account_id: str, bucket: str) -> None:
        with self._shared.lock:
            if self._bucket(account_id, bucket).objects:
                raise ApiError(
                    409, Code.R2_NOT_EMPTY, "The bucket you tried to delete is not empty."
                )
            del self.buckets[(account_id, bucket)]

    def seed_r2(
        self,
        name: str,
        *,
        account_id: str = DEFAULT_ACCOUNT_ID,
        objects: Mapping[str, bytes] | None = None,
    ) -> R2Bucket:
        with self._shared.lock:
            bucket = R2Bucket(account_id, name, self._shared.clock(), dict(objects or {}))
            self.buckets[(account_id, name)] = bucket
            return bucket


# --- HTTP --------------------------------------------------------------------------------------

route = router("r2")
BUCKET = "/accounts/{account_id}/r2/buckets/{bucket_name}"


@route("GET", BUCKET)
def _get_bucket(r2: R2, request: Request, params: dict[str, str]) -> Response:
    return envelope(r2.get_bucket(params["account_id"], params["bucket_name"]))


@route("DELETE", BUCKET)
def _delete_bucket(r2: R2, request: Request, params: dict[str, str]) -> Response:
    r2.delete_bucket(params["account_id"], params["bucket_name"])
    return envelope({})
