"""The local journal: every run, action, verdict and error, in SQLite (stdlib ``sqlite3``).

The journal is for ``history`` and audits. Losing it loses history, never the
ability to roll forward or back: Cloudflare holds the truth. So writing is
best-effort: each statement waits at most ``JOURNAL_TIMEOUT`` for a lock held
by another process; the first failure is reported once (``on_failure``) and
the rest of the run is not recorded, so a locked journal delays a rollback by
one timeout at most and never fails it. Nothing written
here may contain a secret value: callers pass summaries, and every text field
goes through the redactor as a second line of defence.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tgk_deploy.secret_values import redact

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id          TEXT PRIMARY KEY,
    command     TEXT NOT NULL,
    phase       INTEGER,
    step        TEXT,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    status      TEXT NOT NULL,
    operator    TEXT,
    host        TEXT,
    detail      TEXT
);
CREATE TABLE IF NOT EXISTS actions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      TEXT NOT NULL REFERENCES runs(id),
    kind        TEXT NOT NULL,
    environment TEXT,
    description TEXT NOT NULL,
    status      TEXT NOT NULL,
    result      TEXT,
    error       TEXT,
    at          TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS verdicts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      TEXT NOT NULL REFERENCES runs(id),
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    verdict     TEXT NOT NULL,
    detail      TEXT NOT NULL,
    at          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_phase ON runs(phase, started_at);
"""


class RunRecord(BaseModel):
    id: str
    command: str
    phase: int | None
    step: str | None
    started_at: str
    finished_at: str | None
    status: str
    operator: str | None
    host: str | None
    detail: dict[str, Any] | None = None
    actions: list[dict[str, Any]] = []
    verdicts: list[dict[str, Any]] = []


def journal_path(project_dir: Path, configured: str) -> Path:
    """``TGK_DEPLOY_JOURNAL``, else the project file's ``journal``, relative to that file."""
    explicit = os.environ.get("TGK_DEPLOY_JOURNAL")
    return Path(explicit) if explicit else project_dir / configured


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return redact(text)


JOURNAL_TIMEOUT = 2.0  # seconds a write waits for another process's lock


class Journal:
    def __init__(
        self,
        path: Path,
        *,
        timeout: float = JOURNAL_TIMEOUT,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self.path = path
        self.on_failure = on_failure
        self.failure: str | None = None  # set by the first failed write: the rest are skipped
        self._lock = threading.Lock()  # one transaction at a time on the shared connection
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            path, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            # WAL with synchronous=NORMAL: no fsync per commit, still never corrupt; a power
            # cut may lose the last records, which loses history only (never a rollout's
            # state, which lives on Cloudflare). A rehearsal writes thousands of verdicts.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
        except sqlite3.Error:
            self._db.close()
            raise

    def _write(self, statement: str, params: tuple[Any, ...]) -> None:
        """One statement, best-effort: a locked or broken journal never stops the run."""
        if self.failure is not None:
            return
        try:
            with self._lock:
                self._db.execute(statement, params)
        except sqlite3.Error as error:
            self.failure = f"journal {self.path}: {error}; the rest of this run is not recorded"
            if self.on_failure is not None:
                self.on_failure(self.failure)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- writing

    def start_run(
        self,
        run_id: str,
        command: str,
        phase: int | None = None,
        step: str | None = None,
        **detail: Any,
    ) -> None:
        self._write(
            "INSERT OR REPLACE INTO runs (id, command, phase, step, started_at, status, operator, host, detail)"
            " VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?)",
            (
                run_id,
                command,
                phase,
                step,
                _now(),
                os.environ.get("USER"),
                socket.gethostname(),
                _text(detail or None),
            ),
        )

    def finish_run(self, run_id: str, status: str, step: str | None = None, **detail: Any) -> None:
        self._write(
            "UPDATE runs SET finished_at = ?, status = ?, step = COALESCE(?, step),"
            " detail = COALESCE(?, detail) WHERE id = ?",
            (_now(), status, step, _text(detail or None), run_id),
        )

    def action(
        self,
        run_id: str,
        kind: str,
        description: str,
        status: str,
        environment: str | None = None,
        result: Any = None,
        error: str | None = None,
    ) -> None:
        self._write(
            "INSERT INTO actions (run_id, kind, environment, description, status, result, error, at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                kind,
                environment,
                _text(description),
                status,
                _text(result),
                _text(error),
                _now(),
            ),
        )

    def verdict(self, run_id: str, name: str, kind: str, verdict: str, detail: Any) -> None:
        self.verdicts(run_id, [(name, kind, verdict, detail)])

    def verdicts(self, run_id: str, rows: list[tuple[str, str, str, Any]]) -> None:
        """A gate's verdicts, (name, kind, verdict, detail) each, in one transaction."""
        if self.failure is not None or not rows:
            return
        at = _now()
        values = [
            (run_id, name, kind, verdict, _text(detail), at) for name, kind, verdict, detail in rows
        ]
        try:
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.executemany(
                        "INSERT INTO verdicts (run_id, name, kind, verdict, detail, at)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        values,
                    )
                    self._db.execute("COMMIT")
                except sqlite3.Error:
                    self._db.execute("ROLLBACK")
                    raise
        except sqlite3.Error as error:
            self.failure = f"journal {self.path}: {error}; the rest of this run is not recorded"
            if self.on_failure is not None:
                self.on_failure(self.failure)

    # ---------------------------------------------------------------- reading

    def has_run(self, run_id: str) -> bool:
        return self._db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is not None

    def runs(self, phase: int | None = None, limit: int = 50) -> list[RunRecord]:
        query = "SELECT id, command, phase, step, started_at, finished_at, status, operator, host, detail FROM runs"
        params: tuple[Any, ...] = ()
        if phase is not None:
            query += " WHERE phase = ?"
            params = (phase,)
        query += " ORDER BY started_at DESC, rowid DESC LIMIT ?"
        rows = self._db.execute(query, (*params, limit)).fetchall()
        return [self._record(row) for row in rows]

    def _record(self, row: tuple[Any, ...]) -> RunRecord:
        run_id = row[0]
        actions = [
            {
                "kind": k,
                "environment": e,
                "description": d,
                "status": s,
                "result": json.loads(r) if r else None,
                "error": err,
                "at": at,
            }
            for k, e, d, s, r, err, at in self._db.execute(
                "SELECT kind, environment, description, status, result, error, at FROM actions WHERE run_id = ? ORDER BY id",
                (run_id,),
            )
        ]
        verdicts = [
            {"name": n, "kind": k, "verdict": v, "detail": json.loads(d), "at": at}
            for n, k, v, d, at in self._db.execute(
                "SELECT name, kind, verdict, detail, at FROM verdicts WHERE run_id = ? ORDER BY id",
                (run_id,),
            )
        ]
        return RunRecord(
            id=run_id,
            command=row[1],
            phase=row[2],
            step=row[3],
            started_at=row[4],
            finished_at=row[5],
            status=row[6],
            operator=row[7],
            host=row[8],
            detail=json.loads(row[9]) if row[9] else None,
            actions=actions,
            verdicts=verdicts,
        )

    def dump_text(self) -> Iterator[str]:
        """Every stored text, for audits (and for the test that no secret got in)."""
        yield from self._db.iterdump()


@contextmanager
def open_journal(path: Path) -> Iterator[Journal]:
    journal = Journal(path)
    try:
        yield journal
    finally:
        journal.close()
