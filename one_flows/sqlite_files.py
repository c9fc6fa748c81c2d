"""SQLite files shared by threads and processes: the digest cache and the registration ledger."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path


def connect_shared(path: str | os.PathLike[str], *, timeout: float) -> sqlite3.Connection:
    """A connection usable from any thread, in autocommit mode, with write-ahead logging.

    Waits up to ``timeout`` seconds for locks, including while another process switches a new
    file to write-ahead logging, which SQLite's own busy timeout does not wait for.
    ``":memory:"`` gives a private database.
    """
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    deadline = time.monotonic() + timeout
    pause = 0.01
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                db.close()
                raise
            time.sleep(pause)
            pause = min(2 * pause, 0.5)
    # In WAL mode NORMAL loses at most the last commits on power loss, never consistency.
    db.execute("PRAGMA synchronous=NORMAL")
    return db
