"""One mutating run per machine at a time: an advisory lock file beside the journal.

Two machines are kept apart by Cloudflare itself: each mutation first re-reads
the live deployment and stops with "changed underneath you" if it moved.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from tgk_deploy.errors import ConflictError


@contextmanager
def run_lock(path: Path, run_id: str, command: str) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another run"
            raise ConflictError(
                f"another tgk-deploy run holds the lock {path}: {holder}",
                hint="wait for it to finish; if its process is gone the lock is released already",
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(
            json.dumps(
                {
                    "run": run_id,
                    "command": command,
                    "pid": os.getpid(),
                    "since": datetime.now(UTC).isoformat(timespec="seconds"),
                }
            )
        )
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the flock
