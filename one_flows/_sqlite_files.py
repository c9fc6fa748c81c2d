"""SQLite files shared by threads and processes: the digest cache and the registration ledger."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import ClassVar, Self


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


class SharedSQLiteFile:
    """Base of an SQLite file with a fixed schema, shared by threads and processes.

    Subclasses name their ``KIND`` (for messages), the ``TABLES`` they create and the
    ``SCHEMA_VERSION`` they read; a file of another version is refused. ``ADDED_COLUMNS`` are
    (table, column, type) of nullable columns added to ``TABLES`` within the version: they are
    added to files made before, whose rows get NULL there, and older code that does not know
    them still reads and writes the file. ``":memory:"`` gives a private database that lives as
    long as the instance. Instances are thread-safe: methods hold ``_lock`` around their use of
    ``_db``.
    """

    KIND: ClassVar[str]
    TABLES: ClassVar[tuple[str, ...]]
    SCHEMA_VERSION: ClassVar[int] = 1
    ADDED_COLUMNS: ClassVar[tuple[tuple[str, str, str], ...]] = ()

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 60.0) -> None:
        self.path = path if path == ":memory:" else Path(path)
        self._lock = threading.Lock()
        try:
            self._db = connect_shared(self.path, timeout=timeout)
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"cannot open {self.KIND} {path}: {exc}") from exc
        try:
            self._create_tables()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise ValueError(f"cannot open {self.KIND} {path}: {exc}") from exc

    def _create_tables(self) -> None:
        for table in self.TABLES:
            self._db.execute(table)
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            self._db.execute(f"PRAGMA user_version={self.SCHEMA_VERSION}")
        elif version != self.SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"schema version {version}, this version of one_flows reads {self.SCHEMA_VERSION}"
            )
        for table, column, kind in self.ADDED_COLUMNS:
            columns = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if column in columns:
                continue
            try:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            except sqlite3.OperationalError as exc:
                if "duplicate column" not in str(exc):  # else another process added it first
                    raise

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"
