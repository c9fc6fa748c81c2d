"""SQLite storage of the test server: the schema and a thread-safe connection."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY, username TEXT UNIQUE NOT NULL, email TEXT NOT NULL DEFAULT '',
    password TEXT NOT NULL, is_stock_manager INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS tokens (key TEXT PRIMARY KEY, user_id TEXT UNIQUE NOT NULL);
CREATE TABLE IF NOT EXISTS repositories (
    name TEXT PRIMARY KEY, timezone TEXT, globus_path TEXT, hostname TEXT, data_url TEXT,
    repository_type TEXT, globus_endpoint_id TEXT, globus_is_personal INTEGER, json TEXT);
CREATE TABLE IF NOT EXISTS labs (
    name TEXT PRIMARY KEY, institution TEXT, address TEXT, timezone TEXT,
    reference_weight_pct REAL, zscore_weight_pct REAL, json TEXT);
CREATE TABLE IF NOT EXISTS lab_repositories (lab TEXT NOT NULL, repository TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS projects (name TEXT PRIMARY KEY, description TEXT);
CREATE TABLE IF NOT EXISTS project_users (project TEXT NOT NULL, username TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS locations (name TEXT PRIMARY KEY, lab TEXT, json TEXT);
CREATE TABLE IF NOT EXISTS procedures (
    id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL, description TEXT, json TEXT);
CREATE TABLE IF NOT EXISTS water_types (name TEXT PRIMARY KEY, json TEXT);
CREATE TABLE IF NOT EXISTS data_formats (
    id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL, description TEXT, file_extension TEXT,
    matlab_loader_function TEXT, python_loader_function TEXT, json TEXT);
CREATE TABLE IF NOT EXISTS dataset_types (
    id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL, created_by TEXT, description TEXT,
    filename_pattern TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS subjects (
    id TEXT PRIMARY KEY, nickname TEXT UNIQUE NOT NULL, responsible_user TEXT, birth_date TEXT,
    death_date TEXT, species TEXT, sex TEXT, litter TEXT, strain TEXT, source TEXT, line TEXT,
    lab TEXT, genotype TEXT, description TEXT, alive INTEGER, reference_weight REAL, json TEXT);
CREATE TABLE IF NOT EXISTS subject_projects (subject TEXT NOT NULL, project TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, subject TEXT NOT NULL, lab TEXT, location TEXT, type TEXT,
    task_protocol TEXT NOT NULL DEFAULT '', number INTEGER, start_time TEXT, end_time TEXT,
    narrative TEXT NOT NULL DEFAULT '', parent_session TEXT, n_correct_trials INTEGER,
    n_trials INTEGER, extended_qc TEXT, qc INTEGER NOT NULL DEFAULT 0, auto_datetime TEXT,
    json TEXT);
CREATE TABLE IF NOT EXISTS session_users (
    id INTEGER PRIMARY KEY AUTOINCREMENT, session TEXT NOT NULL, username TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS session_procedures (session TEXT NOT NULL, procedure TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS session_projects (session TEXT NOT NULL, project TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS revisions (
    id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL, description TEXT NOT NULL DEFAULT '',
    created_datetime TEXT, json TEXT);
CREATE TABLE IF NOT EXISTS tags (
    id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL, description TEXT NOT NULL DEFAULT '',
    protected INTEGER NOT NULL DEFAULT 0, public INTEGER NOT NULL DEFAULT 0, hash TEXT, json TEXT);
CREATE TABLE IF NOT EXISTS datasets (
    id TEXT PRIMARY KEY, session TEXT NOT NULL, name TEXT NOT NULL, collection TEXT NOT NULL,
    revision TEXT, dataset_type TEXT NOT NULL, data_format TEXT NOT NULL, created_by TEXT,
    created_datetime TEXT, auto_datetime TEXT, file_size INTEGER, hash TEXT NOT NULL DEFAULT '',
    version TEXT NOT NULL DEFAULT '', default_dataset INTEGER NOT NULL DEFAULT 1,
    qc INTEGER NOT NULL DEFAULT 0, json TEXT);
CREATE INDEX IF NOT EXISTS datasets_session ON datasets (session, collection, name);
CREATE TABLE IF NOT EXISTS dataset_tags (dataset TEXT NOT NULL, tag TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS file_records (
    id TEXT PRIMARY KEY, dataset TEXT NOT NULL, repository TEXT NOT NULL,
    relative_path TEXT NOT NULL, "exists" INTEGER NOT NULL, json TEXT);
CREATE INDEX IF NOT EXISTS file_records_dataset ON file_records (dataset);
CREATE TABLE IF NOT EXISTS weighings (
    id TEXT PRIMARY KEY, subject TEXT NOT NULL, date_time TEXT, weight REAL, user TEXT);
CREATE TABLE IF NOT EXISTS water_administrations (
    id TEXT PRIMARY KEY, subject TEXT NOT NULL, date_time TEXT, water_administered REAL,
    water_type TEXT, user TEXT, session TEXT, adlib INTEGER);
"""


def new_id() -> str:
    """A fresh UUID as Alyx uses for primary keys."""
    return str(uuid.uuid4())


def now() -> str:
    """The server clock as a naive ISO datetime, as Alyx renders auto timestamps."""
    return datetime.now().isoformat()


def dumps(value: Any) -> str | None:
    """A JSON column value (None stays SQL NULL)."""
    return None if value is None else json.dumps(value)


def loads(text: str | None) -> Any:
    """The value of a JSON column."""
    return None if text is None else json.loads(text)


class Store:
    """One SQLite connection (in memory, or a file) guarded by a re-entrant lock.

    Statements autocommit, as Alyx's views do not wrap requests in one transaction: a failure half
    way through a request keeps what was written before it. Callers hold ``lock`` around a whole
    request so that concurrent requests see each other's writes in order.
    """

    def __init__(self, db_path: str | os.PathLike[str] | None = None) -> None:
        self.path = None if db_path is None else os.fspath(db_path)
        self.lock = threading.RLock()
        self._conn = sqlite3.connect(
            self.path or ":memory:", check_same_thread=False, isolation_level=None
        )
        self._conn.row_factory = sqlite3.Row
        if self.path:
            self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(SCHEMA)

    def close(self) -> None:
        """Close the connection."""
        with self.lock:
            self._conn.close()

    def is_empty(self) -> bool:
        """True when nothing was ever seeded (no user)."""
        return self.one("SELECT 1 FROM users LIMIT 1") is None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        with self.lock:
            return self._conn.execute(sql, params).rowcount

    def insert(self, table: str, row: dict[str, Any]) -> None:
        """Insert one row given as a column → value dict."""
        columns = ", ".join(f'"{c}"' for c in row)
        marks = ", ".join("?" for _ in row)
        self.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(row.values()))

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Every row of a query, as dicts."""
        with self.lock:
            return [dict(r) for r in self._conn.execute(sql, params).fetchall()]

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        """The first row of a query, or None."""
        with self.lock:
            row = self._conn.execute(sql, params).fetchone()
        return None if row is None else dict(row)

    def column(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """The first column of every row of a query."""
        with self.lock:
            return [r[0] for r in self._conn.execute(sql, params).fetchall()]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run a block atomically (used by seeding)."""
        with self.lock:
            self._conn.execute("BEGIN")
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
