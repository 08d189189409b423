"""D1: databases, found by id or by name, and the polling SQL export."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from tgk_deploy.emulator import bodies
from tgk_deploy.emulator.context import DEFAULT_ACCOUNT_ID, Shared, iso
from tgk_deploy.emulator.wire import (
    ApiError,
    Code,
    JsonDict,
    Request,
    Response,
    envelope,
    json_body,
    page_envelope,
    paginate,
    router,
    validate,
)

DEFAULT_EXPORT_POLLS = 2
DEMO_SQL = """PRAGMA defer_foreign_keys=TRUE;
CREATE TABLE emails (id TEXT PRIMARY KEY, received_at TEXT NOT NULL, subject TEXT);
INSERT INTO "emails" VALUES('e1','2026-01-01T00:00:00Z','hello');
"""


@dataclass
class ExportTask:
    bookmark: str
    polls_left: int
    filename: str
    token: str


@dataclass
class D1Database:
    account_id: str
    uuid: str
    name: str
    created_at: datetime
    sql: str
    exports: dict[str, ExportTask] = field(default_factory=dict)

    def to_api(self) -> JsonDict:
        return {
            "uuid": self.uuid,
            "name": self.name,
            "created_at": iso(self.created_at),
            "version": "production",
            "num_tables": self.sql.upper().count("CREATE TABLE"),
            "file_size": len(self.sql.encode()),
        }


class D1:
    """Every D1 database, and the SQL dumps finished exports point at."""

    def __init__(self, shared: Shared, export_polls: int = DEFAULT_EXPORT_POLLS) -> None:
        self._shared = shared
        self.export_polls = export_polls
        self.databases: dict[tuple[str, str], D1Database] = {}
        self.dumps: dict[str, str] = {}

    def _database(self, account_id: str, database_id: str) -> D1Database:
        database = self.databases.get((account_id, database_id))
        if database is None:
            raise ApiError(404, Code.D1_NOT_FOUND, f"The database {database_id} could not be found")
        return database

    def list_databases(self, account_id: str, *, name: str | None = None) -> list[JsonDict]:
        """``GET .../d1/database?name=``: how wrangler finds a database by its name."""
        with self._shared.lock:
            return [
                d.to_api()
                for (account, _), d in sorted(self.databases.items(), key=lambda i: i[1].name)
                if account == account_id and name in (None, d.name)
            ]

    def get_database(self, account_id: str, database_id: str) -> JsonDict:
        with self._shared.lock:
            return self._database(account_id, database_id).to_api()

    def delete_database(self, account_id: str, database_id: str) -> None:
        with self._shared.lock:
            self._database(account_id, database_id)
            del self.databases[(account_id, database_id)]

    def export_database(
        self, account_id: str, database_id: str, body: bodies.D1ExportBody
    ) -> tuple[int, JsonDict]:
        """(HTTP status, result): 202 while active, 200 once complete."""
        with self._shared.lock:
            database = self._database(account_id, database_id)
            if body.current_bookmark is None:
                serial = self._shared.rng.getrandbits(32)
                bookmark = f"{serial:08x}-00000001-00004e{len(database.exports):02x}"
                task = ExportTask(
                    bookmark=bookmark,
                    polls_left=self.export_polls,
                    filename=f"{database.name}-{bookmark}.sql",
                    token=self._shared.hex32(),
                )
                database.exports[bookmark] = task
                return 202, _export_active(task, "Generating SQL export")
            task = database.exports.get(body.current_bookmark)
            if task is None:
                raise ApiError(
                    400,
                    Code.D1_VALIDATION,
                    f"no export running at bookmark {body.current_bookmark}",
                )
            task.polls_left -= 1
            if task.polls_left > 0:
                return 202, _export_active(task, "Still exporting")
            self.dumps[task.token] = database.sql
            return 200, {
                "type": "export",
                "success": True,
                "at_bookmark": task.bookmark,
                "status": "complete",
                "messages": ["Export complete"],
                "result": {
                    "filename": task.filename,
                    "signed_url": f"{self._shared.public_origin}/__emulator/d1-exports/{task.token}",
                },
            }

    def dump(self, token: str) -> str | None:
        with self._shared.lock:
            return self.dumps.get(token)

    def seed_d1(
        self,
        name: str,
        *,
        account_id: str = DEFAULT_ACCOUNT_ID,
        database_id: str | None = None,
        sql: str = DEMO_SQL,
    ) -> D1Database:
        with self._shared.lock:
            database = D1Database(
                account_id, database_id or self._shared.uuid(), name, self._shared.clock(), sql
            )
            self.databases[(account_id, database.uuid)] = database
            return database


def _export_active(task: ExportTask, message: str) -> JsonDict:
    return {
        "type": "export",
        "success": True,
        "at_bookmark": task.bookmark,
        "status": "active",
        "messages": [message],
    }


# --- HTTP --------------------------------------------------------------------------------------

route = router("d1")
D1_DATABASES = "/accounts/{account_id}/d1/database"
D1_DATABASE = D1_DATABASES + "/{database_id}"


@route("GET", D1_DATABASES)
def _list_databases(d1: D1, request: Request, params: dict[str, str]) -> Response:
    page = paginate(
        d1.list_databases(params["account_id"], name=request.param("name")),
        request.int_param("page", 1),
        request.int_param("per_page", 1000),
    )
    return page_envelope(page)


@route("GET", D1_DATABASE)
def _get_database(d1: D1, request: Request, params: dict[str, str]) -> Response:
    return envelope(d1.get_database(params["account_id"], params["database_id"]))


@route("DELETE", D1_DATABASE)
def _delete_database(d1: D1, request: Request, params: dict[str, str]) -> Response:
    d1.delete_database(params["account_id"], params["database_id"])
    return envelope(None)


@route("POST", D1_DATABASE + "/export")
def _export_database(d1: D1, request: Request, params: dict[str, str]) -> Response:
    body = validate(bodies.D1ExportBody, json_body(request, Code.D1_VALIDATION), Code.D1_VALIDATION)
    status, result = d1.export_database(params["account_id"], params["database_id"], body)
    return envelope(result, status=status)
