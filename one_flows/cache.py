"""ONE cache tables: build, update, read and write ``sessions.pqt`` and ``datasets.pqt``.

The tables have ONE-api's schemas, so ONE-api's ``One(cache_dir=..., mode='local')`` reads the
tables built here, and ``load_tables`` reads the tables ONE-api builds:

- ``sessions.pqt``: index ``id`` (str); columns ``lab``, ``subject`` (str), ``date``
  (``datetime.date``, stored as date32), ``number`` (uint16), ``task_protocol``, ``projects``
  (str, empty when unknown).
- ``datasets.pqt``: index (``eid``, ``id``) (str); columns ``rel_path`` (str, relative to the
  session folder: ``collection/#revision#/filename``), ``file_size`` (nullable UInt64), ``hash``
  (str md5, empty when not computed), ``exists`` (bool) and ``qc`` (ordered categorical of
  ``QC_LEVELS``).
- Both files carry the parquet key-value metadata ``one_metadata``: a JSON object with
  ``date_created`` ("YYYY-MM-DD HH:MM") and ``origin`` (the indexed folder).

Differences from ONE-api's ``one.alf.cache.make_parquet_db``, each one deliberate:

- Ids are stable: ``session_id`` and ``dataset_id`` are uuid5s of the session key
  (``lab/subject/date/number``, number zero-padded, lab omitted when empty) and of the dataset's
  relative path, in a fixed namespace. ONE draws a new random namespace on each build, and gives
  equal dataset ids to equal relative paths of different sessions.
- Hashing is optional, parallel and can reuse a persistent ``DigestCache``.
- ``update_tables`` rescans a folder and rehashes only files whose size or mtime changed.
- Writes are atomic per file: a reader sees the old table or the new one, never a partial one.
- Files under an invalid collection folder (e.g. one with a space) are skipped; ONE records them
  with the collection dropped. A session folder nested in another session is scanned as part of
  the outer session; ONE fails to build the tables in that case.
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
import uuid
import warnings
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from one_flows.alf import ALFError, is_valid, rel_path_parts, session_path_parts
from one_flows.hashing import DigestCache, hash_files

__all__ = [
    "DATASETS_COLUMNS",
    "ID_NAMESPACE",
    "QC",
    "QC_LEVELS",
    "QC_TYPE",
    "SESSIONS_COLUMNS",
    "STATE_FILE",
    "CacheTables",
    "UpdateSummary",
    "dataset_id",
    "load_tables",
    "make_parquet_db",
    "save_tables",
    "session_id",
    "session_key",
    "table_metadata",
    "update_tables",
    "write_parquet_atomic",
]


class QC(IntEnum):
    """Dataset QC outcomes with Alyx's numeric values; the tables store their names."""

    NOT_SET = 0
    PASS = 10
    WARNING = 30
    FAIL = 40
    CRITICAL = 50

    @classmethod
    def validate(cls, value: QC | int | str) -> QC:
        """Return the QC member for a member, its numeric value or its (case-insensitive) name."""
        if isinstance(value, QC):
            return value
        if isinstance(value, str):
            if value.isdigit():
                value = int(value)
            elif value.upper() in cls.__members__:
                return cls[value.upper()]
            else:
                raise ValueError(f"{value!r} is not a QC outcome; use one of {QC_LEVELS}")
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a QC outcome; use one of {QC_LEVELS}") from None


QC_LEVELS = tuple(q.name for q in sorted(QC))
QC_TYPE = pd.CategoricalDtype(categories=list(QC_LEVELS), ordered=True)
"""The dtype of the ``qc`` column: QC names ordered from best (NOT_SET) to worst (CRITICAL)."""

SESSIONS_COLUMNS = ("lab", "subject", "date", "number", "task_protocol", "projects")
DATASETS_COLUMNS = ("rel_path", "file_size", "hash", "exists", "qc")

ID_NAMESPACE = uuid.UUID("5b1e2d2a-8f0c-5c6e-9a43-0ae1f10f1a05")
"""The fixed uuid5 namespace of session and dataset ids."""

STATE_FILE = "_scan_state.parquet"
"""Sidecar of the datasets table: each dataset's mtime, so updates know what changed."""

_SESSIONS_FILE = "sessions.pqt"
_DATASETS_FILE = "datasets.pqt"


def session_key(lab: str, subject: str, date: datetime.date | str, number: int | str) -> str:
    """Return the canonical relative session path ``lab/subject/date/NNN`` (no lab if empty)."""
    return "/".join(filter(None, [lab, subject, str(date), f"{int(number):03d}"]))


def session_id(key: str) -> str:
    """Return the stable session id (uuid5 string) of a session key."""
    return str(uuid.uuid5(ID_NAMESPACE, key))


def dataset_id(key: str, rel_path: str) -> str:
    """Return the stable dataset id (uuid5 string) of a dataset of the session ``key``."""
    return str(uuid.uuid5(ID_NAMESPACE, f"{key}/{rel_path}"))


@dataclass
class CacheTables:
    """The two cache tables, indexed as ONE-api indexes them, and their parquet metadata."""

    sessions: pd.DataFrame
    datasets: pd.DataFrame
    metadata: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> CacheTables:
        """Return tables with no rows and the right columns and dtypes."""
        return cls(_empty_sessions(), _empty_datasets())


def _empty_sessions() -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "id": pd.Series([], dtype="str"),
            "lab": pd.Series([], dtype="str"),
            "subject": pd.Series([], dtype="str"),
            "date": pd.Series([], dtype=object),
            "number": pd.Series([], dtype=np.uint16),
            "task_protocol": pd.Series([], dtype="str"),
            "projects": pd.Series([], dtype="str"),
        }
    )
    return frame.set_index("id")


def _empty_datasets() -> pd.DataFrame:
    empty = np.zeros(0, dtype=np.int64)
    return _datasets_frame([], [], [], empty, [], np.zeros(0, dtype=np.int8)).set_index(
        ["eid", "id"]
    )


def _datasets_frame(
    eids: Sequence[str],
    ids: Sequence[str],
    rel_paths: Sequence[str],
    sizes: np.ndarray,
    hashes: Sequence[str],
    qc_codes: np.ndarray,
) -> pd.DataFrame:
    """The datasets table as a flat frame (eid and id as columns); every file exists."""
    return pd.DataFrame(
        {
            "eid": pd.array(eids, dtype="str"),
            "id": pd.array(ids, dtype="str"),
            "rel_path": pd.array(rel_paths, dtype="str"),
            "file_size": pd.array(sizes, dtype="UInt64"),
            "hash": pd.array(hashes, dtype="str"),
            "exists": np.ones(len(ids), dtype=bool),
            "qc": pd.Categorical.from_codes(qc_codes, dtype=QC_TYPE),
        }
    )


# ------------------------------------------------------------------------------------------------
# Reading and writing
# ------------------------------------------------------------------------------------------------


def write_parquet_atomic(frame: pd.DataFrame, path: str | os.PathLike, metadata: dict) -> Path:
    """Write ``frame`` (with its index) to parquet at ``path`` with ONE's ``one_metadata``.

    The file is written under a temporary name in the same folder, flushed to disk and renamed
    over ``path``, so readers see either the previous file or the complete new one.
    """
    path = Path(path)
    table = pa.Table.from_pandas(frame, preserve_index=True)
    schema_meta = dict(table.schema.metadata or {})
    schema_meta[b"one_metadata"] = json.dumps(metadata).encode()
    table = table.replace_schema_metadata(schema_meta)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            pq.write_table(table, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not supported on every platform/filesystem.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def table_metadata(origin: str | os.PathLike) -> dict:
    """The ``one_metadata`` of a table made now from ``origin``; ONE-api skips tables without it."""
    created = datetime.datetime.now().isoformat(sep=" ", timespec="minutes")
    return {"date_created": created, "origin": str(origin)}


def save_tables(tables: CacheTables, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write both tables atomically into ``out_dir``; return (sessions path, datasets path)."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise NotADirectoryError(f"Cache tables folder does not exist: {out_dir}")
    meta = tables.metadata
    fn_dsets = write_parquet_atomic(
        tables.datasets, out_dir / _DATASETS_FILE, meta.get("datasets", {})
    )
    fn_ses = write_parquet_atomic(
        tables.sessions, out_dir / _SESSIONS_FILE, meta.get("sessions", {})
    )
    return fn_ses, fn_dsets


def _read_table(path: Path) -> tuple[pd.DataFrame, dict]:
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(b"one_metadata")
    meta = json.loads(raw) if raw else {}
    frame = table.to_pandas()
    if isinstance(frame.index, pd.RangeIndex):
        index = sorted(c for c in frame.columns if c in ("id", "eid"))
        if not index:
            raise ValueError(f"{path} has no 'id' column or index: not a ONE cache table")
        frame = frame.set_index(index)
    if "project" in frame.columns and "projects" not in frame.columns:
        frame = frame.rename(columns={"project": "projects"})
    return frame, meta


def load_tables(cache_dir: str | os.PathLike) -> CacheTables:
    """Read ``sessions.pqt`` and ``datasets.pqt`` from ``cache_dir`` (ours or ONE-api's).

    Ids are returned as strings. A missing table is returned empty; a datasets table without a
    ``qc`` column (older ONE versions) gets ``NOT_SET`` everywhere.
    """
    cache_dir = Path(cache_dir)
    tables = CacheTables.empty()
    for name in ("sessions", "datasets"):
        path = cache_dir / f"{name}.pqt"
        if not path.exists():
            continue
        frame, meta = _read_table(path)
        frame.index = _str_index(frame.index)
        if name == "datasets" and "qc" not in frame.columns:
            frame["qc"] = pd.Categorical.from_codes(np.zeros(len(frame), dtype=np.int8), QC_TYPE)
        elif name == "datasets":
            # Parquet keeps only the categories in use: an empty table would come back with none.
            frame["qc"] = frame["qc"].astype(QC_TYPE)
        setattr(tables, name, frame)
        tables.metadata[name] = meta
    return tables


def _str_index(index: pd.Index) -> pd.Index:
    if isinstance(index, pd.MultiIndex):
        levels = [index.get_level_values(i).astype("str") for i in range(index.nlevels)]
        return pd.MultiIndex.from_arrays(levels, names=index.names)
    return index.astype("str")


# ------------------------------------------------------------------------------------------------
# Scanning
# ------------------------------------------------------------------------------------------------


@dataclass
class _Scan:
    """Column lists of one scan of a folder tree."""

    session_rows: list[tuple[str, str, str, datetime.date, int]] = field(default_factory=list)
    folders: dict[str, str] = field(default_factory=dict)  # session id → absolute folder
    eids: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    rel_paths: list[str] = field(default_factory=list)
    sizes: array = field(default_factory=lambda: array("q"))
    mtimes: array = field(default_factory=lambda: array("q"))

    def path(self, i: int) -> str:
        """Absolute path of the i-th file."""
        return f"{self.folders[self.eids[i]]}/{self.rel_paths[i]}"


def _is_session_candidate(parts: tuple[str, ...]) -> bool:
    """Cheap pre-check of the last three folder names before parsing them as a session."""
    if len(parts) < 3:
        return False
    number, date = parts[-1], parts[-2]
    return number.isdigit() and len(number) <= 3 and len(date) == 10 and date[4] == "-"


def _iter_sessions(root: Path) -> Iterator[tuple[str, tuple[str, str, datetime.date, int]]]:
    """Yield (absolute folder, (lab, subject, date, number)) of every session folder under root."""
    stack: list[tuple[str, tuple[str, ...]]] = [(str(root), ())]
    seen: set[tuple[int, int]] = set()
    while stack:
        folder, parts = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            warnings.warn(f"Cannot list {folder}: {exc}", RuntimeWarning, stacklevel=3)
            continue
        for entry in entries:
            if not entry.is_dir():
                continue
            if entry.is_symlink():
                st = entry.stat()
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
            sub = (*parts, entry.name)
            info = _session_info(sub) if _is_session_candidate(sub) else None
            if info is None:
                stack.append((entry.path, sub))
            else:
                yield entry.path, info


def _session_info(parts: tuple[str, ...]) -> tuple[str, str, datetime.date, int] | None:
    tail = parts[-5:]
    try:
        lab, subject, date, number = session_path_parts("/".join(tail), assert_valid=True)
        day = datetime.date.fromisoformat(date)
    except (ALFError, ValueError):
        return None
    return lab or "", subject, day, int(number)


class _CollectionCheck:
    """Memoised validity of collection/revision folders relative to a session."""

    def __init__(self) -> None:
        self._known: dict[str, bool] = {"": True}

    def __call__(self, rel_dir: str) -> bool:
        ok = self._known.get(rel_dir)
        if ok is None:
            try:
                collection, revision, *_ = rel_path_parts(f"{rel_dir}/a.b.c", assert_valid=True)
            except ALFError:
                ok = False
            else:
                rebuilt = "/".join(filter(None, [collection, f"#{revision}#" if revision else ""]))
                ok = rebuilt == rel_dir
            self._known[rel_dir] = ok
        return ok


def _scan(root: Path, lab: str | None) -> _Scan:
    scan = _Scan()
    valid_name: dict[str, bool] = {}
    valid_dir = _CollectionCheck()
    found: dict[str, str] = {}
    for folder, (folder_lab, subject, day, number) in sorted(_iter_sessions(root)):
        if lab and folder_lab and folder_lab != lab:
            raise ValueError(f"lab={lab!r} conflicts with the lab folder of session {folder}")
        ses_lab = folder_lab or lab or ""
        key = session_key(ses_lab, subject, day, number)
        if key in found:
            warnings.warn(
                f"Skipping {folder}: same session as {found[key]}", RuntimeWarning, stacklevel=3
            )
            continue
        found[key] = folder
        eid = session_id(key)
        scan.session_rows.append((eid, ses_lab, subject, day, number))
        scan.folders[eid] = folder
        stack = [(folder, "")]
        while stack:
            current, rel_dir = stack.pop()
            for entry in os.scandir(current):
                if entry.is_dir():
                    sub = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                    stack.append((entry.path, sub))
                    continue
                name = entry.name
                ok = valid_name.get(name)
                if ok is None:
                    ok = valid_name[name] = is_valid(name)
                if not ok or not valid_dir(rel_dir):
                    continue
                try:
                    st = entry.stat()
                except OSError:  # broken symlink or vanished file
                    continue
                scan.eids.append(eid)
                scan.keys.append(key)
                scan.rel_paths.append(f"{rel_dir}/{name}" if rel_dir else name)
                scan.sizes.append(st.st_size)
                scan.mtimes.append(st.st_mtime_ns)
    return scan


def _sessions_from_scan(scan: _Scan, hash_ids: bool) -> pd.DataFrame:
    if not scan.session_rows:
        return _empty_sessions()
    eids, labs, subjects, dates, numbers = zip(*scan.session_rows, strict=True)
    if not hash_ids:
        eids = tuple(session_key(*row[1:]) for row in scan.session_rows)
    n = len(eids)
    frame = pd.DataFrame(
        {
            "id": pd.array(eids, dtype="str"),
            "lab": pd.array(labs, dtype="str"),
            "subject": pd.array(subjects, dtype="str"),
            "date": pd.Series(dates, dtype=object),
            "number": np.asarray(numbers, dtype=np.uint16),
            "task_protocol": pd.array([""] * n, dtype="str"),
            "projects": pd.array([""] * n, dtype="str"),
        }
    )
    return frame.set_index("id").sort_index()


def _dataset_ids(scan: _Scan, hash_ids: bool) -> tuple[list[str], list[str]]:
    """Return (eid, id) lists: uuid5s, or as ONE-api does without hashing, relative paths."""
    if not hash_ids:
        return scan.keys, scan.rel_paths
    return scan.eids, list(map(dataset_id, scan.keys, scan.rel_paths))


# ------------------------------------------------------------------------------------------------
# Building and updating
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UpdateSummary:
    """What ``update_tables`` changed, in numbers of rows."""

    sessions_added: int
    sessions_removed: int
    datasets_added: int
    datasets_removed: int
    datasets_changed: int
    datasets_unchanged: int
    files_hashed: int


def _hash(
    paths: list[str], workers: int | None, digest_cache: str | os.PathLike | None
) -> list[str]:
    if not paths:
        return []
    cache = DigestCache(digest_cache) if digest_cache is not None else None
    try:
        results = hash_files(paths, workers=workers, cache=cache)
    finally:
        if cache is not None:
            cache.close()
    return [r.md5 or "" for r in results]


def _build(
    root: Path,
    out_dir: Path,
    hash_ids: bool,
    hash_files_: bool | None,
    lab: str | None,
    workers: int | None,
    digest_cache: str | os.PathLike | None,
    previous: CacheTables | None,
) -> tuple[CacheTables, pd.DataFrame, UpdateSummary]:
    """Scan ``root`` into new tables, reusing rows of ``previous`` whose file is unchanged.

    Returns the tables, each dataset's mtime_ns (columns id, mtime_ns) and what changed.
    """
    scan = _scan(root, lab)
    sessions = _sessions_from_scan(scan, hash_ids)
    eids, ids = _dataset_ids(scan, hash_ids)
    n = len(ids)
    sizes = np.asarray(scan.sizes, dtype=np.int64)
    mtimes = np.asarray(scan.mtimes, dtype=np.int64)
    hashes = np.full(n, "", dtype=object)
    qc_codes = np.zeros(n, dtype=np.int8)
    known = np.zeros(n, dtype=bool)  # the id was in the previous table
    same = np.zeros(n, dtype=bool)  # ... with the same size and mtime
    n_old = sessions_removed = 0
    sessions_added = len(sessions)
    if previous is not None:
        old = previous.datasets.reset_index()
        n_old = len(old)
        pos = pd.Index(ids).get_indexer(old["id"])
        kept = pos >= 0
        pos, old = pos[kept], old[kept]
        known[pos] = True
        old_mtime = _read_state(out_dir, previous).reindex(old["id"]).to_numpy()
        old_size = old["file_size"].to_numpy(dtype="float64", na_value=np.nan)
        unchanged = (old_size == sizes[pos]) & (old_mtime == mtimes[pos])
        same[pos[unchanged]] = True
        hashes[pos[unchanged]] = old["hash"].fillna("").to_numpy(dtype=object)[unchanged]
        qc_codes[pos[unchanged]] = pd.Categorical(old["qc"], dtype=QC_TYPE).codes[unchanged]
        old_ses = previous.sessions
        common = sessions.index.intersection(old_ses.index)
        fields = [c for c in ("task_protocol", "projects") if c in old_ses.columns]
        sessions.loc[common, fields] = old_ses.loc[common, fields]
        sessions_added = len(sessions.index.difference(old_ses.index))
        sessions_removed = len(old_ses.index.difference(sessions.index))
        if hash_files_ is None:
            hash_files_ = bool(old["hash"].fillna("").astype(bool).any())
    to_hash = np.flatnonzero(~same) if hash_files_ else np.empty(0, dtype=int)
    if len(to_hash):
        hashes[to_hash] = _hash([scan.path(i) for i in to_hash], workers, digest_cache)
    frame = _datasets_frame(eids, ids, scan.rel_paths, sizes, hashes, qc_codes)
    del scan, eids, ids, hashes
    frame["mtime_ns"] = mtimes
    frame = frame.sort_values(["eid", "id"], ignore_index=True)
    state = frame[["id", "mtime_ns"]]
    datasets = frame.drop(columns="mtime_ns").set_index(["eid", "id"])
    meta = table_metadata(root)
    tables = CacheTables(sessions, datasets, {"sessions": meta, "datasets": dict(meta)})
    n_known = int(known.sum())
    summary = UpdateSummary(
        sessions_added=sessions_added,
        sessions_removed=sessions_removed,
        datasets_added=n - n_known,
        datasets_removed=n_old - n_known,
        datasets_changed=n_known - int(same.sum()),
        datasets_unchanged=int(same.sum()),
        files_hashed=len(to_hash),
    )
    return tables, state, summary


def _read_state(out_dir: Path, previous: CacheTables) -> pd.Series:
    """Return the recorded mtime_ns of each dataset id; empty if missing or stale."""
    path = out_dir / STATE_FILE
    if not path.exists():
        return pd.Series(dtype="float64")
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(b"one_metadata")
    stamp = json.loads(raw).get("date_created") if raw else None
    if stamp != previous.metadata.get("datasets", {}).get("date_created"):
        return pd.Series(dtype="float64")
    frame = table.to_pandas()
    return frame["mtime_ns"].astype("float64").set_axis(frame["id"].astype("str"))


def _write(tables: CacheTables, state: pd.DataFrame, out_dir: Path) -> tuple[Path, Path]:
    paths = save_tables(tables, out_dir)
    write_parquet_atomic(state, out_dir / STATE_FILE, tables.metadata["datasets"])
    return paths


def make_parquet_db(
    root_dir: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    hash_ids: bool = True,
    hash_files: bool = False,
    lab: str | None = None,
    *,
    workers: int | None = None,
    digest_cache: str | os.PathLike | None = None,
) -> tuple[Path, Path]:
    """Index the ALF datasets under ``root_dir`` and write the cache tables.

    Tables go to ``out_dir`` (default ``root_dir``). ``hash_ids=False`` uses relative paths as
    ids, as ONE-api does. ``hash_files`` stores each file's md5, hashed by ``workers`` threads,
    answered from the sqlite ``digest_cache`` file when given. ``lab`` fills in the lab of
    sessions not under a ``lab/Subjects`` folder. Returns (sessions path, datasets path).
    """
    root = Path(root_dir).resolve()
    if not root.is_dir():
        raise NotADirectoryError(f"Data folder does not exist: {root}")
    out = Path(out_dir) if out_dir is not None else root
    tables, state, _ = _build(root, out, hash_ids, hash_files, lab, workers, digest_cache, None)
    if tables.sessions.empty or tables.datasets.empty:
        what = "sessions" if tables.sessions.empty else "datasets"
        warnings.warn(f"No {what} found in {root}", RuntimeWarning, stacklevel=2)
    return _write(tables, state, out)


def update_tables(
    root_dir: str | os.PathLike,
    cache_dir: str | os.PathLike | None = None,
    hash_ids: bool = True,
    hash_files: bool | None = None,
    lab: str | None = None,
    *,
    workers: int | None = None,
    digest_cache: str | os.PathLike | None = None,
) -> UpdateSummary:
    """Bring the tables in ``cache_dir`` (default ``root_dir``) up to date with ``root_dir``.

    Every file is stat'ed, but only new files and files whose size or mtime changed are hashed;
    rows of unchanged files (hash, qc) and session fields (task_protocol, projects) are kept, and
    a changed file's QC is reset to NOT_SET.
    ``hash_files=None`` hashes when the existing table has hashes. Without existing tables this
    is a full build. The result equals a full build of the same folder, up to row order.
    """
    root = Path(root_dir).resolve()
    if not root.is_dir():
        raise NotADirectoryError(f"Data folder does not exist: {root}")
    out = Path(cache_dir) if cache_dir is not None else root
    has_tables = (out / _SESSIONS_FILE).exists() and (out / _DATASETS_FILE).exists()
    previous = load_tables(out) if has_tables else None
    tables, state, summary = _build(
        root, out, hash_ids, hash_files, lab, workers, digest_cache, previous
    )
    _write(tables, state, out)
    return summary
