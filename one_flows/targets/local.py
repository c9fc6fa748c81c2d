"""`LocalTarget`: registration into ONE cache tables on disk, without a database."""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import os
import tempfile
import threading
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pandas as pd

from one_flows.cache import (
    CacheTables,
    dataset_id,
    load_tables,
    lock_tables,
    save_tables,
    session_id,
)
from one_flows.cache.files import table_metadata
from one_flows.cache.lock import tables_generation
from one_flows.cache.upgrade import upgrade_ids, upgrade_tables
from one_flows.targets.base import (
    DatasetType,
    FileBatch,
    RegisteredDataset,
    RegistrationRefused,
    TargetUnavailable,
    dataset_record,
)
from one_flows.walk import SessionKey

__all__ = ["LocalTarget"]

_CARE_FILES = {"weighings": "weighings.jsonl", "water": "water_administrations.jsonl"}
_TABLE_FILES = ("sessions.pqt", "datasets.pqt")

_Signature = tuple[bytes, tuple[tuple[int, int, int, int, int] | None, ...]]
"""Identifies the version of the tables on disk: `tables_generation`, and a stat summary per
table file (None if absent) for changes made by others than one-flows."""


class LocalTarget:
    """Registers into ``sessions.pqt`` and ``datasets.pqt`` in ``cache_dir``.

    Creating a session adds a row to the sessions table and registering files adds rows, with
    their hashes and sizes, to the datasets table; ONE-api's ``One(cache_dir=..., mode="local")``
    reads the result. Ids are `one_flows.cache`'s stable uuid3s, so registering a folder again
    finds the same rows.

    There are no reference tables: every subject and user is accepted, and without
    ``dataset_types`` every valid ALF file is a dataset of type ``object.attribute``.
    Weighings and water administrations are appended to JSON-lines files in ``cache_dir``.
    The tables are kept in memory and read again only once the files on disk have changed, so a
    change made by another process or by ONE-api is seen by the next call. Each change holds
    the tables' lock (`one_flows.cache.lock_tables`), reads them again if another writer changed
    them, and rewrites them atomically: any number of targets, threads and processes may
    register into one folder. Tables of earlier versions get uuid3 ids at the first change.
    """

    def __init__(
        self,
        cache_dir: str | Path,
        *,
        dataset_types: list[DatasetType] | None = None,
        user: str | None = None,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._dataset_types = None if dataset_types is None else list(dataset_types)
        self._user = user
        self._lock = threading.Lock()
        # The tables as on disk when the signature was taken, with uuid3 ids, and whether those
        # on disk have the uuid5 ids of an earlier version.
        self._cached: tuple[_Signature, CacheTables, bool] | None = None

    def __repr__(self) -> str:
        return f"LocalTarget({str(self.cache_dir)!r})"

    @property
    def user(self) -> str | None:
        """The user given at creation, if any."""
        return self._user

    @property
    def label(self) -> str:
        """``local:<cache dir>``."""
        return f"local:{self.cache_dir}"

    def check(self, repository: str | None = None) -> None:
        """Make sure a file can be written in the tables folder and its tables read.

        Parameters
        ----------
        repository : str or None
            Ignored: the tables record files as on this machine, in no data repository.

        Raises
        ------
        TargetUnavailable
            they cannot.
        """
        try:
            tempfile.TemporaryFile(dir=self.cache_dir).close()
            with self._lock:
                self._tables()
        except (OSError, ValueError) as exc:
            advice = f"check {self.cache_dir} and its tables"
            raise TargetUnavailable(self.label, "tables unusable", str(exc), advice) from exc

    def dataset_types(self) -> list[DatasetType] | None:
        """The dataset types given at creation, or None (any ``object.attribute``)."""
        return None if self._dataset_types is None else list(self._dataset_types)

    def file_extensions(self) -> None:
        """None: any extension."""
        return None

    def lookup(self, endpoint: str, member: str) -> dict[str, Any]:
        """A stand-in record: the local tables hold no subjects, users or other references."""
        key = "nickname" if endpoint.strip("/") == "subjects" else "name"
        return {key: member}

    # -- sessions ---------------------------------------------------------------------------

    def _signature(self) -> _Signature:
        stats = []
        for name in _TABLE_FILES:
            try:
                st = os.stat(self.cache_dir / name)
            except FileNotFoundError:
                stats.append(None)
            else:
                stats.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
        return tables_generation(self.cache_dir), tuple(stats)

    def _tables(self, changing: bool = False) -> CacheTables:
        """The tables on disk, with uuid3 ids; the caller holds ``self._lock`` and must not
        modify them. ``changing``: the caller holds the tables' lock too, to change them."""
        # The signature is taken before the files are read: a change during the read alters
        # it, so the next call reads them again.
        signature = self._signature()
        if self._cached is None or self._cached[0] != signature:
            on_disk = load_tables(self.cache_dir)
            tables = upgrade_ids(on_disk)
            self._cached = (signature, tables, tables is not on_disk)
        if changing and self._cached[2]:
            # Converted on disk first, with the scan state of `one_flows.cache.update_tables`.
            upgrade_tables(self.cache_dir)
            self._cached = None
            return self._tables()
        return self._cached[1]

    def _save(self, tables: CacheTables) -> None:
        """Write new tables (the caller holds both locks) and keep them in memory."""
        fresh = table_metadata(self.label)
        metadata = {
            name: fresh | tables.metadata.get(name, {}) for name in ("sessions", "datasets")
        }
        tables = dataclasses.replace(tables, metadata=metadata)
        # On failure the cache keeps the previous tables; if one file was written, the changed
        # signature makes the next call read the files again.
        try:
            save_tables(tables, self.cache_dir)
        except OSError as exc:  # a full disk, a read-only or failing file system: not the session's
            advice = f"check {self.cache_dir}: free space, permissions, the file system"
            raise TargetUnavailable(self.label, "tables not written", str(exc), advice) from exc
        self._cached = (self._signature(), tables, False)

    @staticmethod
    def _session_record(eid: str, row: pd.Series) -> dict[str, Any]:
        return {
            "id": eid,
            "subject": row["subject"],
            "lab": row["lab"] or None,
            "number": int(row["number"]),
            "start_time": datetime.datetime.combine(row["date"], datetime.time()).isoformat(),
            "task_protocol": row["task_protocol"],
            "projects": [p for p in row["projects"].split(",") if p],
        }

    def find_sessions(
        self, subject: str, date: str, number: int | None = None, lab: str | None = None
    ) -> list[dict[str, Any]]:
        """The rows of the sessions table with that subject, date (number and lab)."""
        with self._lock:
            sessions = self._tables().sessions
        return self._matching(sessions, subject, date, number, lab)

    def session_record(self, eid: str) -> dict[str, Any] | None:
        """The row of the sessions table of ``eid``, as a record; None when there is none."""
        with self._lock:
            sessions = self._tables().sessions
        return self._session_record(eid, sessions.loc[eid]) if eid in sessions.index else None

    @classmethod
    def _matching(
        cls, sessions: pd.DataFrame, subject: str, date: str, number: int | None, lab: str | None
    ) -> list[dict[str, Any]]:
        day = datetime.date.fromisoformat(date)
        mask = (sessions["subject"] == subject) & (sessions["date"] == day)
        if number is not None:
            mask &= sessions["number"] == int(number)
        if lab:
            mask &= sessions["lab"] == lab
        return [cls._session_record(eid, row) for eid, row in sessions[mask].iterrows()]

    def create_session(self, record: dict[str, Any]) -> dict[str, Any]:
        """Add a row to the sessions table (or replace the row of the same session)."""
        if "start_time" not in record:
            raise ValueError("a local session record needs a start_time for its date")
        day = datetime.date.fromisoformat(str(record["start_time"])[:10])
        lab = record.get("lab") or ""
        eid = session_id(SessionKey.of(record["subject"], day, record["number"], lab))
        row = {
            "lab": lab,
            "subject": record["subject"],
            "date": day,
            "number": int(record["number"]),
            "task_protocol": record.get("task_protocol") or "",
            "projects": ",".join(record.get("projects") or []),
        }
        with lock_tables(self.cache_dir), self._lock:
            tables = self._tables(changing=True)
            sessions = _upsert(tables.sessions, pd.DataFrame([row], index=[eid]), "sessions")
            self._save(dataclasses.replace(tables, sessions=sessions))
        return self._session_record(eid, sessions.loc[eid])

    def update_session(self, eid: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change the lab, task protocol or projects of a row of the sessions table."""
        with lock_tables(self.cache_dir), self._lock:
            tables = self._tables(changing=True)
            if eid not in tables.sessions.index:
                raise KeyError(f"no session {eid} in {self.cache_dir}")
            sessions = tables.sessions.copy()
            if changes.get("task_protocol") is not None:
                sessions.loc[eid, "task_protocol"] = changes["task_protocol"]
            if changes.get("projects") is not None:
                sessions.loc[eid, "projects"] = ",".join(changes["projects"])
            if changes.get("lab") is not None:
                sessions.loc[eid, "lab"] = changes["lab"]
            self._save(dataclasses.replace(tables, sessions=sessions))
        return self._session_record(eid, sessions.loc[eid])

    def holds(self, eid: str, dataset_ids: Collection[str]) -> bool:
        """Whether the tables hold the session ``eid`` and each of ``dataset_ids`` as its
        datasets (from the tables in memory, read again only if changed on disk)."""
        with self._lock:
            tables = self._tables()
        if eid not in tables.sessions.index:
            return False
        wanted = pd.MultiIndex.from_arrays([[eid] * len(dataset_ids), list(dataset_ids)])
        return bool(wanted.isin(tables.datasets.index).all())

    # -- datasets ---------------------------------------------------------------------------

    def session_datasets(self, eid: str) -> list[RegisteredDataset]:
        """The rows of the datasets table of a session."""
        with self._lock:
            datasets = self._tables().datasets
        if eid not in datasets.index.get_level_values("eid"):
            return []
        return [
            RegisteredDataset(
                id=did,
                rel_path=row["rel_path"],
                hash=row["hash"] or None,
                file_size=None if pd.isna(row["file_size"]) else int(row["file_size"]),
                exists=bool(row["exists"]),
            )
            for did, row in datasets.xs(eid, level="eid").iterrows()
        ]

    def mark_missing(self, eid: str, rel_paths: list[str]) -> bool:
        """Set ``exists`` to False in the rows of these datasets of a session."""
        with lock_tables(self.cache_dir), self._lock:
            tables = self._tables(changing=True)
            datasets = tables.datasets.copy()
            gone = (datasets.index.get_level_values("eid") == eid) & datasets["rel_path"].isin(
                rel_paths
            )
            datasets.loc[gone, "exists"] = False
            self._save(dataclasses.replace(tables, datasets=datasets))
        return True

    def register_files(self, batch: FileBatch) -> list[dict[str, Any]]:
        """Add or update the rows of the files in the datasets table.

        Raises
        ------
        RegistrationRefused
            the batch's session is not in the sessions table.
        """
        subject, date, number = batch.session_path.split("/")
        with lock_tables(self.cache_dir), self._lock:
            tables = self._tables(changing=True)
            # As Alyx: the session is its subject, date and number; the lab only breaks ties.
            found = self._matching(tables.sessions, subject, date, int(number), None)
            if not found:
                raise RegistrationRefused(
                    f"no session {batch.session_path} in {self.cache_dir}", status=400
                )
            session = next((s for s in found if s["lab"] == batch.lab), found[0])
            key = SessionKey.of(subject, date, number, session["lab"])
            ids = [dataset_id(key, name) for name in batch.filenames]
            rows = pd.DataFrame(
                {
                    "rel_path": batch.filenames,
                    "file_size": pd.array(batch.sizes, dtype="UInt64"),
                    "hash": [h or "" for h in batch.hashes],
                    "exists": [batch.exists] * len(ids),
                    "qc": ["NOT_SET"] * len(ids),
                },
                index=pd.MultiIndex.from_arrays([[session["id"]] * len(ids), ids]),
            )
            datasets = _upsert(tables.datasets, rows, "datasets")
            self._save(dataclasses.replace(tables, datasets=datasets))
        return [
            dataset_record(did, name, session=session["id"])
            for did, name in zip(ids, batch.filenames, strict=True)
        ]

    # -- animal care ------------------------------------------------------------------------

    def _append(self, kind: str, record: dict[str, Any]) -> dict[str, Any]:
        with self._lock, open(self.cache_dir / _CARE_FILES[kind], "a") as f:
            f.write(json.dumps(record) + "\n")
        return dict(record)

    def register_weight(self, record: dict[str, Any]) -> dict[str, Any]:
        """Append the weighing to ``weighings.jsonl``."""
        return self._append("weighings", record)

    def register_water_administration(self, record: dict[str, Any]) -> dict[str, Any]:
        """Append the water administration to ``water_administrations.jsonl``."""
        return self._append("water", record)


def _upsert(frame: pd.DataFrame, rows: pd.DataFrame, table: str) -> pd.DataFrame:
    """``frame`` with ``rows`` added, replacing the rows of the same index, in the dtypes of
    the cache ``table``."""
    dtypes = _dtypes(table)
    rows = rows[list(dtypes)].astype(dtypes)
    rows.index.names = frame.index.names
    kept = frame[~frame.index.isin(rows.index)].astype(dtypes)
    return pd.concat([kept, rows]) if len(kept) else rows


@functools.cache
def _dtypes(table: str) -> dict[str, Any]:
    """The column dtypes of the empty cache ``table`` (sessions or datasets); do not modify."""
    return getattr(CacheTables.empty(), table).dtypes.to_dict()
