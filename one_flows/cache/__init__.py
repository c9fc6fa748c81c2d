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
- one-flows' own files are in the hidden folder ``.one_flows`` beside the tables (ONE-api reads
  only ``*.pqt`` files of the tables folder): the incremental update's state files
  (``scan_state.parquet``, ``scan_dirs.parquet``) and the writers' lock file.

Any number of threads and processes may write the tables of one folder at once
(`make_parquet_db`, `update_tables`, `save_tables`, `one_flows.targets.LocalTarget`): each
change is made under `lock_tables`, an exclusive ``flock`` of ``.one_flows/tables.lock``, by
reading the tables under the lock, so no writer loses another's rows. A writer killed mid-write
leaves the old tables and a temporary file, which the next writer removes. On NFS, Linux
clients pass ``flock`` to the server as a whole-file lock, so writers on several machines are
serialised too, and a dead machine's lock is freed when its lease expires (NFSv4: about 90 s);
a share mounted with ``local_lock=flock`` or ``local_lock=all`` (or CIFS with ``nobrl``) locks
each machine apart, and writers on two machines can then lose rows. A file system that refuses
``flock`` makes writers fail with `TablesLockError` rather than write unlocked.

Tables written by earlier versions of one-flows, whose ids were uuid5s (which ONE-api refuses
as eids), and their state files (then beside the tables) are converted by the next writer, with
nothing to do by hand: `update_tables` (``one-flows cache``, the nightly update) and
`make_parquet_db` write uuid3 ids, and a ``LocalTarget`` registration converts the ids of the
whole tables it writes. Each id keeps its rows (hashes, QC, session fields) through the change.

Differences from ONE-api's ``one.alf.cache.make_parquet_db``, each one deliberate:

- Ids are stable: ``session_id`` and ``dataset_id`` are uuid3s (name-based, as ONE's, and
  accepted by ONE-api's ``is_uuid``) of the session key (``lab/subject/date/number``, number
  zero-padded, lab omitted when empty) and of the dataset's relative path, in a fixed
  namespace. ONE draws a new random namespace on each build, and gives equal dataset ids to
  equal relative paths of different sessions.
- Hashing is optional, parallel and can reuse a persistent ``DigestCache``.
- ``update_tables`` rescans only the sessions given, or those whose folders changed (state
  files in ``.one_flows`` record each file's and folder's mtime), and rehashes only files whose
  size or mtime changed. When all it finds is new sessions, it appends their rows to the files
  (`one_flows.parquet_append`) instead of re-encoding every row.
- Writes are atomic per file: a reader sees the old table or the new one, never a partial one.
  A rewritten file keeps the permissions of the one it replaces.
- Columns are zstd-compressed (ONE writes snappy): half the size for hex ids and md5s, read as
  fast, and read by the same parquet readers.
- Files under an invalid collection folder (e.g. one with a space) are skipped; ONE records them
  with the collection dropped. A session folder nested in another session is scanned as part of
  the outer session; ONE fails to build the tables in that case.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import hashlib
import io
import json
import logging
import os
import re
import stat
import threading
import time
import uuid
import warnings
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from one_flows import parquet_append
from one_flows.alf import ALFError, is_valid, rel_path_parts, session_path_parts
from one_flows.errors import OneFlowsError
from one_flows.flags import is_flag_file
from one_flows.hashing import DigestCache, hash_files

try:
    import fcntl
except ImportError:  # Windows: no flock; writers are serialised within one process only
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "DATASETS_COLUMNS",
    "DIRS_FILE",
    "ID_NAMESPACE",
    "LOCK_FILE",
    "QC",
    "QC_LEVELS",
    "QC_TYPE",
    "SESSIONS_COLUMNS",
    "STATE_DIR",
    "STATE_FILE",
    "CacheError",
    "CacheTables",
    "NotACacheTable",
    "SessionFolderError",
    "TablesFolderMissing",
    "TablesLock",
    "TablesLockError",
    "UpdateSummary",
    "dataset_id",
    "load_tables",
    "lock_tables",
    "make_parquet_db",
    "save_tables",
    "session_id",
    "session_key",
    "table_metadata",
    "tables_generation",
    "update_tables",
    "upgrade_ids",
    "upgrade_tables",
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
"""The fixed namespace of the name-based (uuid3) session and dataset ids."""

STATE_DIR = ".one_flows"
"""The hidden folder, beside the tables, of one-flows' own files: scan state and lock."""

STATE_FILE = f"{STATE_DIR}/scan_state.parquet"
"""Sidecar of the datasets table: each dataset's file mtime_ns at the last scan, by id."""

DIRS_FILE = f"{STATE_DIR}/scan_dirs.parquet"
"""Sidecar of the datasets table: the mtime_ns of each folder of each session at the last scan."""

LOCK_FILE = f"{STATE_DIR}/tables.lock"
"""The file writers of the tables ``flock`` (see `lock_tables`)."""

_OLD_STATE_FILES = {"_scan_state.parquet": STATE_FILE, "_scan_dirs.parquet": DIRS_FILE}
"""Where earlier versions kept the state files (beside the tables), and where they go now."""

_SESSIONS_FILE = "sessions.pqt"
_DATASETS_FILE = "datasets.pqt"

logger = logging.getLogger(__name__)


class CacheError(OneFlowsError):
    """The cache tables cannot be built, updated, read or written."""


class TablesFolderMissing(CacheError, NotADirectoryError):
    """The data folder or the tables folder does not exist."""


class NotACacheTable(CacheError, ValueError):
    """A file that should hold a ONE cache table does not."""


class SessionFolderError(CacheError, ValueError):
    """A folder given as a session is not one, or not under the data folder, or its lab folder
    conflicts with the lab given."""


class TablesLockError(CacheError, OSError):
    """The tables folder cannot be locked (e.g. a file system without ``flock``)."""


def session_key(lab: str, subject: str, date: datetime.date | str, number: int | str) -> str:
    """Return the canonical relative session path ``lab/subject/date/NNN`` (no lab if empty)."""
    return "/".join(filter(None, [lab, subject, str(date), f"{int(number):03d}"]))


_NAMESPACE_MD5 = hashlib.md5(ID_NAMESPACE.bytes)


def _uuid3(name: str) -> str:
    """``str(uuid.uuid3(ID_NAMESPACE, name))``, without the cost of building a UUID object."""
    md5 = _NAMESPACE_MD5.copy()
    md5.update(name.encode())
    h = md5.hexdigest()
    # The MD5, with the version nibble set to 3 and the variant bits to 10
    variant = "89ab"[int(h[16], 16) & 3]
    return f"{h[:8]}-{h[8:12]}-3{h[13:16]}-{variant}{h[17:20]}-{h[20:32]}"


def session_id(key: str) -> str:
    """Return the stable session id (uuid3 string) of a session key."""
    return _uuid3(key)


def dataset_id(key: str, rel_path: str) -> str:
    """Return the stable dataset id (uuid3 string) of a dataset of the session ``key``."""
    return _uuid3(f"{key}/{rel_path}")


_UUID5 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def _is_uuid5(ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Which of the id strings are uuid5s: ids written by earlier versions of one-flows."""
    return pc.match_substring_regex(ids, f"^{_UUID5.pattern}$").to_numpy(zero_copy_only=False)


_IdUpgrades = dict[str, tuple[str, str]]
"""Sessions whose ids are uuid5s of an earlier version: {old id: (uuid3 id, session key)}."""


def _id_upgrades(sessions: pd.DataFrame) -> _IdUpgrades:
    """The sessions of a sessions table whose ids are uuid5s, with their uuid3s."""
    old = _is_uuid5(pa.array(sessions.index.to_numpy(dtype=object), pa.large_string()))
    if not old.any():
        return {}
    rows = sessions[old]
    upgrades = {}
    columns = (rows[c] for c in ("lab", "subject", "date", "number"))
    for eid, lab, subject, day, number in zip(rows.index, *columns, strict=True):
        key = session_key(lab if isinstance(lab, str) else "", subject, day, number)
        upgrades[eid] = (session_id(key), key)
    return upgrades


def _upgraded_dataset_ids(
    eids: np.ndarray, ids: np.ndarray, rel_paths: np.ndarray, upgrades: _IdUpgrades
) -> tuple[np.ndarray, np.ndarray]:
    """Datasets' (eids, ids) with the sessions of ``upgrades`` given their uuid3s, and the uuid5
    ids of their datasets replaced by uuid3s."""
    eids, ids = eids.astype(object), ids.astype(object)
    old_ids = _is_uuid5(pa.array(ids, pa.large_string()))
    for i in np.flatnonzero(pd.Index(eids).isin(list(upgrades))).tolist():
        new_eid, key = upgrades[eids[i]]
        eids[i] = new_eid
        if old_ids[i]:
            ids[i] = dataset_id(key, rel_paths[i])
    return eids, ids


def _renamed_sessions(sessions: pd.DataFrame, upgrades: _IdUpgrades) -> pd.DataFrame:
    new = [upgrades.get(eid, (eid,))[0] for eid in sessions.index]
    return sessions.set_axis(pd.Index(new, dtype=sessions.index.dtype, name=sessions.index.name))


def upgrade_ids(tables: CacheTables) -> CacheTables:
    """``tables`` with the uuid5 ids written by earlier versions replaced by their uuid3s.

    Returns ``tables`` itself when it has no uuid5 session id. Ids of other kinds (ONE-api's,
    Alyx's, relative paths) are kept.
    """
    upgrades = _id_upgrades(tables.sessions)
    if not upgrades:
        return tables
    index = tables.datasets.index
    eids, ids = _upgraded_dataset_ids(
        index.get_level_values("eid").to_numpy(dtype=object),
        index.get_level_values("id").to_numpy(dtype=object),
        tables.datasets["rel_path"].to_numpy(dtype=object),
        upgrades,
    )
    levels = [pd.Index(v, dtype=index.levels[i].dtype) for i, v in enumerate((eids, ids))]
    datasets = tables.datasets.set_axis(pd.MultiIndex.from_arrays(levels, names=index.names))
    sessions = _renamed_sessions(tables.sessions, upgrades)
    return dataclasses.replace(tables, sessions=sessions, datasets=datasets)


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
# Writers: one at a time per tables folder
# ------------------------------------------------------------------------------------------------

_TABLE_NAMES = "|".join(
    re.escape(Path(name).name) for name in (_SESSIONS_FILE, _DATASETS_FILE, STATE_FILE, DIRS_FILE)
)
_TMP_NAME = re.compile(rf"\.({_TABLE_NAMES})\.[0-9a-f]{{32}}\.tmp")
"""The temporary files `write_parquet_atomic` writes beside the tables and their state files."""


class TablesLock:
    """The exclusive right of one thread of one process to change the tables of a folder.

    Taken (and re-entered by the thread holding it) with `lock_tables`.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._threads = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    def mark_changed(self) -> None:
        """Record that the tables changed, for `tables_generation`; the caller holds the lock."""
        assert self._fd is not None, "mark_changed without the lock"
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.write(self._fd, uuid.uuid4().hex.encode())

    def _acquire(self) -> None:
        if not self._threads.acquire(blocking=False):
            logger.info("Waiting for another thread writing the tables in %s", self.folder)
            self._threads.acquire()
        try:
            if self._depth == 0:
                self._fd = _flocked(self.folder / LOCK_FILE)
                _tidy(self.folder)
        except BaseException:
            self._close()
            self._threads.release()
            raise
        self._depth += 1

    def _release(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._close()
        self._threads.release()

    def _close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # drops the flock


def _flocked(path: Path) -> int:
    """A descriptor of the lock file at ``path``, created if need be, exclusively flock'ed."""
    path.parent.mkdir(exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    if fcntl is None:
        return fd
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("Waiting for another process writing the tables in %s", path.parent.parent)
            fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError as exc:
        os.close(fd)
        raise TablesLockError(
            exc.errno, f"cannot lock the tables: {exc.strerror} (flock)", str(path)
        ) from exc
    return fd


def _tidy(folder: Path) -> None:
    """Clear what killed writers left in a tables folder and move earlier versions' state files;
    the caller holds the folder's lock, so no temporary file there is being written."""
    for where in (folder, folder / STATE_DIR):
        with os.scandir(where) as entries:
            stale = [e.path for e in entries if _TMP_NAME.fullmatch(e.name)]
        for path in stale:
            logger.warning("Removing %s, left by a writer that did not finish", path)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    for old, new in _OLD_STATE_FILES.items():
        with contextlib.suppress(FileNotFoundError):
            if (folder / new).exists():
                os.unlink(folder / old)
            else:
                os.replace(folder / old, folder / new)


_LOCKS: dict[str, TablesLock] = {}
_LOCKS_GUARD = threading.Lock()


def _forget_locks() -> None:
    """In a forked child: the parent's locks are the parent's (its descriptors and threads)."""
    global _LOCKS, _LOCKS_GUARD
    for lock in _LOCKS.values():
        if lock._fd is not None:
            os.close(lock._fd)  # the parent's descriptor still holds the flock
    _LOCKS, _LOCKS_GUARD = {}, threading.Lock()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_forget_locks)


@contextlib.contextmanager
def lock_tables(cache_dir: str | os.PathLike) -> Iterator[TablesLock]:
    """Hold the exclusive lock of the tables in ``cache_dir`` (waiting for it if need be).

    Every change one-flows makes to the tables (`save_tables`, `make_parquet_db`,
    `update_tables`, `one_flows.targets.LocalTarget`) is made under this lock, by reading the
    tables after taking it: of any number of threads and processes writing one folder, each
    sees the others' changes and none is lost. The lock is an ``flock`` on
    ``.one_flows/tables.lock``, which the kernel drops when its holder dies however it dies;
    the thread holding it may take it again. On taking it, temporary files left by a writer
    that was killed are removed, and state files of earlier versions are moved into
    ``.one_flows/``. Readers need no lock: each table is replaced atomically.

    Raises:
        TablesLockError: the file system does not support ``flock``.
    """
    folder = Path(os.path.realpath(cache_dir))
    if not folder.is_dir():
        raise TablesFolderMissing(f"Cache tables folder does not exist: {cache_dir}")
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(str(folder), TablesLock(folder))
    lock._acquire()
    try:
        yield lock
    finally:
        lock._release()


@contextlib.contextmanager
def _changing(cache_dir: str | os.PathLike) -> Iterator[None]:
    """Hold the lock of the tables in ``cache_dir`` and mark them changed when done."""
    with lock_tables(cache_dir) as lock:
        try:
            yield
        finally:
            lock.mark_changed()


def tables_generation(cache_dir: str | os.PathLike) -> bytes:
    """A token that one-flows changes whenever it changes the tables in ``cache_dir``.

    Read under `lock_tables`, an unchanged token means that no one-flows writer changed the
    tables since it was last read (stat alone can miss a rewrite: a recycled inode, same size,
    same clock tick). Empty when one-flows never locked the folder.
    """
    try:
        with open(Path(cache_dir) / LOCK_FILE, "rb") as f:
            return f.read(64)
    except FileNotFoundError:
        return b""


# ------------------------------------------------------------------------------------------------
# Reading and writing
# ------------------------------------------------------------------------------------------------


def write_parquet_atomic(frame: pd.DataFrame, path: str | os.PathLike, metadata: dict) -> Path:
    """Write ``frame`` (with its index) to parquet at ``path`` with ONE's ``one_metadata``.

    The file is written under a temporary name in the same folder, flushed to disk and renamed
    over ``path``, so readers see either the previous file or the complete new one.
    """
    return _write_atomic(pa.Table.from_pandas(frame, preserve_index=True), path, metadata)


def _write_atomic(table: pa.Table, path: str | os.PathLike, metadata: dict | None) -> Path:
    """Write ``table`` as ``write_parquet_atomic`` does; no ``one_metadata`` if None."""
    table = _with_metadata(table, metadata)
    return _replace(Path(path), lambda f: _write_parquet(table, f))


def _append_atomic(table: pa.Table, path: Path, metadata: dict) -> Path:
    """Add the rows of ``table`` at the end of the parquet file at ``path``, atomically.

    The file's rows are copied as they are, not decoded; its metadata becomes ``metadata``.

    Raises:
        ParquetAppendError: the file is not in ``table``'s schema.
    """
    new = io.BytesIO()
    _write_parquet(_with_metadata(table, metadata), new)
    with open(path, "rb") as old:
        return _replace(path, lambda f: parquet_append.append(old, new.getvalue(), f))


def _with_metadata(table: pa.Table, metadata: dict | None) -> pa.Table:
    if metadata is None:
        return table
    schema_meta = dict(table.schema.metadata or {})
    schema_meta[b"one_metadata"] = json.dumps(metadata).encode()
    return table.replace_schema_metadata(schema_meta)


def _write_parquet(table: pa.Table, sink: BinaryIO) -> None:
    # Unique strings (ids, md5s) gain nothing from dictionary encoding but its cost. zstd makes
    # the files half the size of snappy's (hex ids and md5s) at no cost in reading or writing
    # time, and every parquet reader that ONE-api uses reads it.
    unique = ("id", "hash")
    dictionary = [c for c in table.column_names if c not in unique]
    pq.write_table(table, sink, use_dictionary=dictionary, compression="zstd")


def _replace(path: Path, write: Callable[[BinaryIO], object]) -> Path:
    """Replace ``path`` by what ``write`` writes to a temporary file beside it, made durable.

    The new file keeps the permissions of the file it replaces; a first one gets those of any
    new file (0666 less the umask), so that a lab's other accounts can read the tables.
    """
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            with contextlib.suppress(FileNotFoundError):
                os.fchmod(f.fileno(), stat.S_IMODE(os.stat(path).st_mode))
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _footer_md5(path: Path) -> str:
    """The md5 of a parquet file's footer: it changes whenever the file is rewritten."""
    with open(path, "rb") as f:
        return hashlib.md5(parquet_append.footer(f)[0]).hexdigest()


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
    """Write both tables atomically into ``out_dir``; return (sessions path, datasets path).

    The tables are written under `lock_tables`; to change the tables on disk without losing
    another writer's change, read them under that lock too.
    """
    out_dir = Path(out_dir)
    meta = tables.metadata
    with _changing(out_dir):
        fn_dsets = write_parquet_atomic(
            tables.datasets, out_dir / _DATASETS_FILE, meta.get("datasets", {})
        )
        fn_ses = write_parquet_atomic(
            tables.sessions, out_dir / _SESSIONS_FILE, meta.get("sessions", {})
        )
    return fn_ses, fn_dsets


def _read_table(path: Path) -> tuple[pd.DataFrame, list[str], dict]:
    """A table with its ids as str columns, the names of those columns, and its one_metadata."""
    table = pq.ParquetFile(path).read()
    schema_meta = dict(table.schema.metadata or {})
    raw = schema_meta.get(b"one_metadata")
    meta = json.loads(raw) if raw else {}
    if b"pandas" in schema_meta:
        # The index stays columns: a MultiIndex of 500,000 ids takes longer than reading them.
        pandas_meta = json.loads(schema_meta[b"pandas"])
        pandas_meta["index_columns"] = []
        schema_meta[b"pandas"] = json.dumps(pandas_meta).encode()
        table = table.replace_schema_metadata(schema_meta)
    frame = table.to_pandas()
    index = sorted(c for c in frame.columns if c in ("id", "eid"))
    if not index:
        raise NotACacheTable(f"{path} has no 'id' column or index: not a ONE cache table")
    for column in index:
        if not isinstance(frame[column].dtype, pd.StringDtype):
            frame[column] = frame[column].astype("str")
    if "project" in frame.columns and "projects" not in frame.columns:
        frame = frame.rename(columns={"project": "projects"})
    return frame, index, meta


def load_tables(cache_dir: str | os.PathLike, *, datasets_index: bool = True) -> CacheTables:
    """Read ``sessions.pqt`` and ``datasets.pqt`` from ``cache_dir`` (ours or ONE-api's).

    Ids are returned as strings. A missing table is returned empty; a datasets table without a
    ``qc`` column (older ONE versions) gets ``NOT_SET`` everywhere. ``datasets_index=False``
    leaves ``eid`` and ``id`` as columns of the datasets table (much faster on large tables).
    """
    cache_dir = Path(cache_dir)
    tables = CacheTables.empty()
    for name in ("sessions", "datasets"):
        path = cache_dir / f"{name}.pqt"
        if not path.exists():
            continue
        frame, meta = _load_table(path, name, index=datasets_index or name == "sessions")
        setattr(tables, name, frame)
        tables.metadata[name] = meta
    return tables


def _load_table(path: Path, name: str, index: bool = True) -> tuple[pd.DataFrame, dict]:
    """One table (``name`` is sessions or datasets) with str ids, and its ``one_metadata``."""
    frame, id_columns, meta = _read_table(path)
    if index:
        frame = frame.set_index(id_columns)
    if name == "datasets" and "qc" not in frame.columns:
        frame["qc"] = pd.Categorical.from_codes(np.zeros(len(frame), dtype=np.int8), QC_TYPE)
    elif name == "datasets":
        # Parquet keeps only the categories in use: an empty table would come back with none.
        frame["qc"] = frame["qc"].astype(QC_TYPE)
    return frame, meta


# ------------------------------------------------------------------------------------------------
# Scanning
# ------------------------------------------------------------------------------------------------

_RACY_NS = 2_000_000_000
"""A folder modified this close before a scan started is recorded as unknown (rescanned next
time): a change in the same tick of the filesystem clock would leave its mtime unchanged."""


@dataclass(frozen=True, order=True)
class _Session:
    """A session folder; sessions sort by id."""

    eid: str
    key: str
    folder: str
    lab: str
    subject: str
    day: datetime.date
    number: int


@dataclass
class _Scan:
    """Column lists of the files and folders of scanned sessions, session after session."""

    sessions: list[_Session]
    eids: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    rel_paths: list[str] = field(default_factory=list)
    sizes: array = field(default_factory=lambda: array("q"))
    mtimes: array = field(default_factory=lambda: array("q"))
    dir_eids: list[str] = field(default_factory=list)
    dir_paths: list[str] = field(default_factory=list)  # relative to the session, "" for itself
    dir_mtimes: array = field(default_factory=lambda: array("q"))

    def path(self, i: int, folders: dict[str, str]) -> str:
        """Absolute path of the i-th file, given each session's folder by id."""
        return f"{folders[self.eids[i]]}/{self.rel_paths[i]}"


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


def _session(
    folder: str, info: tuple[str, str, datetime.date, int], lab: str | None, hash_ids: bool
) -> _Session:
    folder_lab, subject, day, number = info
    if lab and folder_lab and folder_lab != lab:
        raise SessionFolderError(f"lab={lab!r} conflicts with the lab folder of session {folder}")
    ses_lab = folder_lab or lab or ""
    key = session_key(ses_lab, subject, day, number)
    eid = session_id(key) if hash_ids else key
    return _Session(eid, key, folder, ses_lab, subject, day, number)


def _find_sessions(root: Path, lab: str | None, hash_ids: bool) -> list[_Session]:
    """Every session folder under ``root``, the first of each session key, in id order."""
    found: dict[str, _Session] = {}
    for folder, info in sorted(_iter_sessions(root)):
        session = _session(folder, info, lab, hash_ids)
        if session.key in found:
            warnings.warn(
                f"Skipping {folder}: same session as {found[session.key].folder}",
                RuntimeWarning,
                stacklevel=4,
            )
            continue
        found[session.key] = session
    return sorted(found.values(), key=lambda s: s.eid)


def _given_sessions(
    root: Path, paths: Iterable[str | os.PathLike], lab: str | None, hash_ids: bool
) -> tuple[list[_Session], list[_Session]]:
    """The sessions of folders under ``root`` (absolute or relative): (present, absent)."""
    present: dict[str, _Session] = {}
    absent: dict[str, _Session] = {}
    if isinstance(paths, (str, os.PathLike)):
        raise TypeError("sessions must be a list of session folders, not a single path")
    for path in paths:
        folder = Path(os.path.abspath(root / path))
        try:
            parts = folder.relative_to(root).parts
        except ValueError:
            raise SessionFolderError(f"Session folder {path} is not under {root}") from None
        info = _session_info(parts) if _is_session_candidate(parts) else None
        if info is None:
            raise SessionFolderError(
                f"{path} is not a session folder ([lab/Subjects/]subject/date/nnn)"
            )
        session = _session(str(folder), info, lab, hash_ids)
        (present if folder.is_dir() else absent)[session.key] = session
    return sorted(present.values()), sorted(absent.values())


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


def _scan(sessions: list[_Session]) -> _Scan:
    """Stat the ALF files and the folders of ``sessions``; files sorted by path per session."""
    scan = _Scan(sessions)
    valid_name: dict[str, bool] = {}
    valid_dir = _CollectionCheck()
    for session in sessions:
        eid = session.eid
        files: list[tuple[str, int, int]] = []
        stack = [(session.folder, "")]
        while stack:
            current, rel_dir = stack.pop()
            # The folder's mtime is read before its listing: a file added meanwhile changes it.
            scan.dir_eids.append(eid)
            scan.dir_paths.append(rel_dir)
            scan.dir_mtimes.append(os.stat(current).st_mtime_ns)
            for entry in os.scandir(current):
                if entry.is_dir():
                    sub = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                    stack.append((entry.path, sub))
                    continue
                name = entry.name
                ok = valid_name.get(name)
                if ok is None:
                    ok = valid_name[name] = is_valid(name) and not is_flag_file(name)
                if not ok or not valid_dir(rel_dir):
                    continue
                try:
                    st = entry.stat()
                except OSError:  # broken symlink or vanished file
                    continue
                files.append((f"{rel_dir}/{name}" if rel_dir else name, st.st_size, st.st_mtime_ns))
        files.sort()
        for rel_path, size, mtime in files:
            scan.eids.append(eid)
            scan.keys.append(session.key)
            scan.rel_paths.append(rel_path)
            scan.sizes.append(size)
            scan.mtimes.append(mtime)
    return scan


def _sessions_frame(sessions: list[_Session]) -> pd.DataFrame:
    n = len(sessions)
    frame = pd.DataFrame(
        {
            "id": pd.array([s.eid for s in sessions], dtype="str"),
            "lab": pd.array([s.lab for s in sessions], dtype="str"),
            "subject": pd.array([s.subject for s in sessions], dtype="str"),
            "date": pd.Series([s.day for s in sessions], dtype=object),
            "number": np.asarray([s.number for s in sessions], dtype=np.uint16),
            "task_protocol": pd.array([""] * n, dtype="str"),
            "projects": pd.array([""] * n, dtype="str"),
        }
    )
    return frame.set_index("id")


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


@dataclass
class _Previous:
    """The tables an update starts from and what the last scan recorded about them.

    ``recorded`` is True when the datasets table comes from a scan (make_parquet_db or
    update_tables, possibly edited and saved back with its metadata) whose state files are
    beside it: then ids are ours, ``mtimes`` holds each row's file mtime_ns at that scan and
    ``dirs`` the mtime_ns of each session's folders (-1 where unknown). Otherwise mtimes are
    -1 and dirs empty.
    """

    sessions: pd.DataFrame
    datasets: pa.Table
    mtimes: np.ndarray
    dirs: pa.Table
    recorded: bool


def _changed_sessions(found: list[_Session], dirs: pa.Table) -> list[_Session]:
    """The sessions of ``found`` with a folder whose mtime differs from the one recorded in
    ``dirs`` (or that is gone), and those with no folder recorded, in ``found``'s order."""
    folder_of = {s.eid: s.folder for s in found}
    changed = set(folder_of).difference(dirs.column("eid").to_pylist())
    columns = (dirs.column(c).to_pylist() for c in ("eid", "rel_dir", "mtime_ns"))
    for eid, rel_dir, mtime in zip(*columns, strict=True):
        folder = folder_of.get(eid)
        if folder is None or eid in changed:
            continue
        try:
            now = os.stat(f"{folder}/{rel_dir}" if rel_dir else folder).st_mtime_ns
        except OSError:
            now = None
        if now != mtime:
            changed.add(eid)
    return [s for s in found if s.eid in changed]


def _read_previous(out_dir: Path) -> _Previous | None:
    """The tables in ``out_dir`` and their scan state; None without tables."""
    datasets_path = out_dir / _DATASETS_FILE
    if not ((out_dir / _SESSIONS_FILE).exists() and datasets_path.exists()):
        return None
    datasets = pq.ParquetFile(datasets_path).read()
    state = _read_state(out_dir, datasets)
    if state is not None:
        sessions, _ = _load_table(out_dir / _SESSIONS_FILE, "sessions")
        mtimes, dirs = state
        return _Previous(sessions, datasets, mtimes, dirs, True)
    tables = load_tables(out_dir)
    flat = tables.datasets.reset_index()
    datasets = pa.table(
        {
            "eid": pa.array(flat["eid"].to_numpy(dtype=object), pa.large_string()),
            "id": pa.array(flat["id"].to_numpy(dtype=object), pa.large_string()),
            "rel_path": pa.array(flat["rel_path"].to_numpy(dtype=object), pa.large_string()),
            "file_size": pa.array(flat["file_size"].to_numpy(dtype="float64", na_value=np.nan)),
            "hash": pa.array(flat["hash"].fillna("").to_numpy(dtype=object), pa.large_string()),
            "qc": pa.array(flat["qc"].to_numpy(dtype=object), pa.large_string()),
        }
    )
    no_mtimes = np.full(len(flat), -1, dtype=np.int64)
    return _Previous(tables.sessions, datasets, no_mtimes, _dirs_table([], [], []), False)


def _upgraded_previous(previous: _Previous) -> _Previous:
    """``previous`` with the uuid5 ids of earlier versions replaced by uuid3s."""
    upgrades = _id_upgrades(previous.sessions)
    if not upgrades:
        return previous
    datasets, dirs = previous.datasets, previous.dirs
    eids, ids = _upgraded_dataset_ids(
        *(datasets.column(c).to_numpy(zero_copy_only=False) for c in ("eid", "id", "rel_path")),
        upgrades,
    )
    for name, values in (("eid", eids), ("id", ids)):
        i = datasets.schema.get_field_index(name)
        datasets = datasets.set_column(i, name, pa.array(values, datasets.schema.field(i).type))
    dir_eids = [upgrades.get(e, (e,))[0] for e in dirs.column("eid").to_pylist()]
    dirs = dirs.set_column(0, "eid", pa.array(dir_eids, pa.large_string()))
    sessions = _renamed_sessions(previous.sessions, upgrades)
    return dataclasses.replace(previous, sessions=sessions, datasets=datasets, dirs=dirs)


_SCAN_KEY = "scan_id"
"""Key of the ``one_metadata`` entry naming the scan that wrote a datasets table and its state."""

_FOOTER_KEY = "datasets_footer_md5"
"""Key of the state files' ``one_metadata`` entry: the md5 of the datasets file's footer as
written by that scan. Equal now, the file is as the scan left it (not edited and saved since)."""

_MAX_ROW_GROUPS = 64
"""Appends to a datasets file with this many row groups rewrite it whole instead."""


def _scan_id(table: pa.Table) -> str | None:
    raw = (table.schema.metadata or {}).get(b"one_metadata")
    return json.loads(raw).get(_SCAN_KEY) if raw else None


def _read_state(out_dir: Path, datasets: pa.Table) -> tuple[np.ndarray, pa.Table] | None:
    """The recorded (mtime_ns per datasets row, -1 if unknown; folders table), or None.

    None when the state files are missing or come from another scan than the table's.
    """
    paths = (out_dir / STATE_FILE, out_dir / DIRS_FILE)
    scan_id = _scan_id(datasets)
    if scan_id is None or not all(p.exists() for p in paths):
        return None
    state, dirs = (pq.ParquetFile(p).read() for p in paths)
    if _scan_id(state) != scan_id or _scan_id(dirs) != scan_id:
        return None
    ids = datasets.column("id")
    if state.column("id").equals(ids):
        return state.column("mtime_ns").to_numpy(), dirs
    # The table was edited and saved back since (rows added, removed or reordered).
    at = pd.Index(state.column("id").to_numpy()).get_indexer(ids.to_numpy())
    mtimes = state.column("mtime_ns").to_numpy()[at]
    mtimes[at < 0] = -1
    return mtimes, dirs


def _dirs_table(eids: Sequence[str], rel_dirs: Sequence[str], mtimes: Sequence[int]) -> pa.Table:
    return pa.table(
        {
            "eid": pa.array(eids, pa.large_string()),
            "rel_dir": pa.array(rel_dirs, pa.large_string()),
            "mtime_ns": pa.array(mtimes, pa.int64()),
        }
    )


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


@dataclass
class _Result:
    """New tables and scan state, ready to be written."""

    sessions: pd.DataFrame
    datasets: pa.Table
    mtimes: np.ndarray
    dirs: pa.Table
    summary: UpdateSummary


def _build(
    root: Path,
    hash_ids: bool,
    hash_files_: bool | None,
    lab: str | None,
    workers: int | None,
    digest_cache: str | os.PathLike | None,
    previous: _Previous | None,
    sessions: Iterable[str | os.PathLike] | None = None,
    rescan: str = "changed",
    only: list[_Session] | None = None,
) -> _Result:
    """Rescan sessions of ``root`` into ``previous``'s tables (everything without previous).

    Sessions rescanned: ``only``, else those given, else those whose folder mtimes changed (all
    of them with ``rescan="all"``, or when nothing was recorded). Rows of unchanged files keep
    their hash and QC; rows of other sessions are kept as they are.
    """
    started = time.time_ns()
    recorded = previous is not None and previous.recorded
    if only is not None:
        found, gone = only, set()
    elif sessions is not None and recorded:
        found, absent = _given_sessions(root, sessions, lab, hash_ids)
        gone = {s.eid for s in absent}
    else:
        found = _find_sessions(root, lab, hash_ids)
        gone = set()
        if previous is not None:
            old_eids = set(previous.sessions.index)
            old_eids.update(pc.unique(previous.datasets.column("eid")).to_pylist())
            gone = old_eids - {s.eid for s in found}
            if recorded and rescan != "all":
                found = _changed_sessions(found, previous.dirs)
    scan = _scan(found)
    folders = {s.eid: s.folder for s in found}
    n = len(scan.rel_paths)
    sizes = np.asarray(scan.sizes, dtype=np.int64)
    mtimes = np.asarray(scan.mtimes, dtype=np.int64)
    hashes = np.full(n, "", dtype=object)
    qc_codes = np.zeros(n, dtype=np.int8)
    pos = np.full(n, -1, dtype=np.int64)  # row of the file in the previous table
    same = np.zeros(n, dtype=bool)  # ... with the same size and mtime
    ids = scan.rel_paths if not hash_ids else None
    kept = pa.table({})
    kept_mtimes = np.zeros(0, dtype=np.int64)
    kept_dirs = _dirs_table([], [], [])
    n_dropped = 0
    old_sessions = _empty_sessions()
    if previous is not None:
        old = previous.datasets
        drop = pa.array(sorted({s.eid for s in found} | gone), pa.large_string())
        dropped_mask = pc.is_in(old.column("eid"), value_set=drop).to_numpy(zero_copy_only=False)
        kept = old.filter(pa.array(~dropped_mask))
        kept_mtimes = previous.mtimes[~dropped_mask]
        keep_dir = pc.invert(pc.is_in(previous.dirs.column("eid"), value_set=drop))
        kept_dirs = previous.dirs.filter(keep_dir)
        dropped = old.filter(pa.array(dropped_mask))
        n_dropped = dropped.num_rows
        lookup = {
            k: i
            for i, k in enumerate(
                zip(
                    dropped.column("eid").to_pylist(),
                    dropped.column("rel_path").to_pylist(),
                    strict=True,
                )
            )
        }
        pos = np.fromiter(
            (lookup.get(k, -1) for k in zip(scan.eids, scan.rel_paths, strict=True)),
            dtype=np.int64,
            count=n,
        )
        known = np.flatnonzero(pos >= 0)
        at = pos[known]
        old_size = pc.cast(dropped.column("file_size"), pa.float64()).to_numpy()
        old_mtime = previous.mtimes[dropped_mask]
        unchanged = (old_size[at] == sizes[known]) & (old_mtime[at] == mtimes[known])
        unchanged &= old_mtime[at] >= 0
        same[known[unchanged]] = True
        old_hash = dropped.column("hash").to_numpy(zero_copy_only=False)
        hashes[known[unchanged]] = old_hash[at[unchanged]]
        qc_codes[known[unchanged]] = _qc_codes(dropped.column("qc"))[at[unchanged]]
        if hash_ids and recorded:
            # The ids of known files are those computed when they were first scanned.
            old_ids = dropped.column("id").to_numpy(zero_copy_only=False)
            ids = [
                old_ids[p] if p >= 0 else dataset_id(k, r)
                for p, k, r in zip(pos.tolist(), scan.keys, scan.rel_paths, strict=True)
            ]
        old_sessions = previous.sessions
        if hash_files_ is None:
            longest = pc.max(pc.binary_length(old.column("hash"))).as_py()
            hash_files_ = bool(longest)
    if ids is None:
        ids = list(map(dataset_id, scan.keys, scan.rel_paths))
    to_hash = np.flatnonzero(~same) if hash_files_ else np.empty(0, dtype=int)
    if len(to_hash):
        paths = [scan.path(i, folders) for i in to_hash]
        hashes[to_hash] = _hash(paths, workers, digest_cache)
    datasets = _datasets_table(scan.eids, ids, scan.rel_paths, sizes, hashes, qc_codes)
    if kept.num_rows:
        datasets = pa.concat_tables([_conform(kept), datasets])
    new_sessions = [s for s in found if s.eid not in old_sessions.index]
    removed = old_sessions.index.intersection(list(gone))
    parts = [f for f in (old_sessions.drop(index=removed), _sessions_frame(new_sessions)) if len(f)]
    sessions_table = pd.concat(parts).sort_index() if parts else _empty_sessions()
    racy = np.asarray(scan.dir_mtimes, dtype=np.int64)
    racy[racy >= started - _RACY_NS] = -1
    dirs = pa.concat_tables([kept_dirs, _dirs_table(scan.dir_eids, scan.dir_paths, racy)])
    n_known, n_same = int((pos >= 0).sum()), int(same.sum())
    summary = UpdateSummary(
        sessions_added=len(new_sessions),
        sessions_removed=len(removed),
        datasets_added=n - n_known,
        datasets_removed=n_dropped - n_known,
        datasets_changed=n_known - n_same,
        datasets_unchanged=n_same + kept.num_rows,
        files_hashed=len(to_hash),
    )
    return _Result(sessions_table, datasets, np.concatenate([kept_mtimes, mtimes]), dirs, summary)


def _qc_codes(qc: pa.ChunkedArray) -> np.ndarray:
    """Positions in QC_LEVELS of a column of QC names (-1 where missing or unknown)."""
    parts = [np.zeros(0, dtype=np.int8)]
    for chunk in qc.chunks:
        encoded = chunk if pa.types.is_dictionary(chunk.type) else chunk.dictionary_encode()
        names = encoded.dictionary.to_pylist()
        # Each dictionary entry's level, and -1 (the last entry) for missing values
        levels = [QC_LEVELS.index(v) if v in QC_LEVELS else -1 for v in names] + [-1]
        indices = pc.fill_null(encoded.indices, len(names)).to_numpy()
        parts.append(np.asarray(levels, dtype=np.int8)[indices])
    return np.concatenate(parts)


def _qc_array(codes: np.ndarray) -> pa.DictionaryArray:
    indices = pa.array(codes, pa.int8(), mask=codes < 0)
    return pa.DictionaryArray.from_arrays(
        indices, pa.array(QC_LEVELS, pa.large_string()), ordered=True
    )


def _datasets_table(
    eids: Sequence[str],
    ids: Sequence[str],
    rel_paths: Sequence[str],
    sizes: np.ndarray,
    hashes: np.ndarray,
    qc_codes: np.ndarray,
) -> pa.Table:
    """The datasets table in the arrow schema pandas gives it; every file exists."""
    columns = {
        "rel_path": pa.array(rel_paths, pa.large_string()),
        "file_size": pa.array(sizes, pa.uint64()),
        "hash": pa.array(hashes, pa.large_string()),
        "exists": pa.array(np.ones(len(sizes), dtype=bool)),
        "qc": _qc_array(qc_codes),
        "eid": pa.array(eids, pa.large_string()),
        "id": pa.array(ids, pa.large_string()),
    }
    return pa.table(columns, schema=_datasets_schema())


def _conform(table: pa.Table) -> pa.Table:
    """A datasets table as written by this module, in ``_datasets_schema`` with full QC levels."""
    schema = _datasets_schema()
    columns = [
        _qc_array(_qc_codes(table.column(f.name)))
        if f.name == "qc"
        else table.column(f.name).cast(f.type)
        for f in schema
    ]
    return pa.table(columns, schema=schema)


@functools.cache
def _datasets_schema() -> pa.Schema:
    return pa.Schema.from_pandas(_empty_datasets(), preserve_index=True)


def _write(root: Path, result: _Result, out_dir: Path, append: bool = False) -> tuple[Path, Path]:
    """Write both tables, then the scan state stamped with the datasets table's identity.

    With ``append``, the datasets rows and state of ``result`` are added to those of the files.
    """
    meta = table_metadata(root)
    scan_meta = {**meta, _SCAN_KEY: uuid.uuid4().hex}
    put = _append_atomic if append else _write_atomic
    datasets_path = put(result.datasets, out_dir / _DATASETS_FILE, scan_meta)
    sessions_path = write_parquet_atomic(result.sessions, out_dir / _SESSIONS_FILE, meta)
    ids = result.datasets.column("id")
    state = pa.table({"id": ids, "mtime_ns": pa.array(result.mtimes, pa.int64())})
    state_meta = {**scan_meta, _FOOTER_KEY: _footer_md5(datasets_path)}
    for table, name in ((state, STATE_FILE), (result.dirs, DIRS_FILE)):
        put(table, out_dir / name, state_meta)
    return sessions_path, datasets_path


def upgrade_tables(cache_dir: str | os.PathLike) -> bool:
    """Convert tables of earlier versions in ``cache_dir``, and their scan state, to uuid3 ids.

    Takes `lock_tables`. Every row keeps its fields, and the scan state its mtimes (the next
    update hashes nothing more for it). Returns False, having changed nothing, when the tables
    have no uuid5 session id.
    """
    out = Path(cache_dir)
    with lock_tables(out):
        if not (out / _SESSIONS_FILE).exists():
            return False
        sessions, _ = _load_table(out / _SESSIONS_FILE, "sessions")
        previous = _read_previous(out) if _id_upgrades(sessions) else None
        if previous is None:
            return False
        logger.info("Converting the ids of the tables in %s to uuid3s", out)
        with _changing(out):
            if not previous.recorded:
                save_tables(upgrade_ids(load_tables(out)), out)
                return True
            upgraded = _upgraded_previous(previous)
            raw = (previous.datasets.schema.metadata or {}).get(b"one_metadata", b"{}")
            origin = Path(json.loads(raw).get("origin") or out)
            datasets = _conform(upgraded.datasets)
            summary = UpdateSummary(0, 0, 0, 0, 0, datasets.num_rows, 0)
            sessions = upgraded.sessions.sort_index()
            _write(
                origin, _Result(sessions, datasets, upgraded.mtimes, upgraded.dirs, summary), out
            )
        return True


def _has_hashes(datasets: pq.FileMetaData) -> bool | None:
    """Whether any row of a datasets file has a hash, from its statistics; None if unknown."""
    column = datasets.schema.names.index("hash")
    longest = ""
    for i in range(datasets.num_row_groups):
        stats = datasets.row_group(i).column(column).statistics
        if stats is None or not stats.has_min_max:
            return None
        longest = max(longest, stats.max)
    return bool(longest)


def _append_new_sessions(
    root: Path,
    out: Path,
    hash_ids: bool,
    hash_files_: bool | None,
    lab: str | None,
    workers: int | None,
    digest_cache: str | os.PathLike | None,
    sessions: Iterable[str | os.PathLike] | None,
    rescan: str,
) -> UpdateSummary | None:
    """Update the tables in ``out`` by appending rows, when all there is to add is new sessions.

    Only the new sessions' rows are encoded; the rest of each file is copied. None, having
    changed nothing, when that is not enough: the tables or their state files are missing or
    were edited since the last scan (their footer fingerprint differs), a session to rescan
    is already in the tables, one in the tables is gone, or ``rescan="all"``.
    """
    paths = [out / name for name in (_DATASETS_FILE, _SESSIONS_FILE, STATE_FILE, DIRS_FILE)]
    if (sessions is None and rescan == "all") or not all(p.exists() for p in paths):
        return None
    datasets_path, sessions_path, state_path, dirs_path = paths
    datasets_meta = pq.read_metadata(datasets_path)
    scan_id = json.loads((datasets_meta.metadata or {}).get(b"one_metadata", b"{}")).get(_SCAN_KEY)
    fingerprint = {_SCAN_KEY: scan_id, _FOOTER_KEY: _footer_md5(datasets_path)}
    for sidecar in (state_path, dirs_path):
        raw = (pq.read_schema(sidecar).metadata or {}).get(b"one_metadata", b"{}")
        recorded = json.loads(raw)
        if scan_id is None or any(recorded.get(k) != v for k, v in fingerprint.items()):
            return None
    if datasets_meta.num_row_groups >= _MAX_ROW_GROUPS:
        return None
    dirs = pq.ParquetFile(dirs_path).read(columns=["eid"] if sessions is not None else None)
    old_sessions, _ = _load_table(sessions_path, "sessions")
    if _id_upgrades(old_sessions):
        return None  # ids of an earlier version, converted by a full update
    session_ids = pa.array(old_sessions.index.to_numpy(dtype=object), pa.large_string())
    known = pa.chunked_array([*dirs.column("eid").chunks, session_ids], pa.large_string())

    def any_known(candidates: Iterable[_Session]) -> bool:
        eids = pa.array([s.eid for s in candidates], pa.large_string())
        return pc.any(pc.is_in(known, value_set=eids)).as_py() or False

    if sessions is not None:
        found, absent = _given_sessions(root, sessions, lab, hash_ids)
        if any_known((*found, *absent)):
            return None
    else:
        found = _find_sessions(root, lab, hash_ids)
        present = pa.array([s.eid for s in found], pa.large_string())
        if not pc.all(pc.is_in(known, value_set=present)).as_py():
            return None  # a session was removed
        found = _changed_sessions(found, dirs)
        if any_known(found):
            return None
    if hash_files_ is None:
        hash_files_ = _has_hashes(datasets_meta)
        if hash_files_ is None:
            return None
    if not found:
        return UpdateSummary(0, 0, 0, 0, 0, datasets_meta.num_rows, 0)
    result = _build(root, hash_ids, hash_files_, lab, workers, digest_cache, None, only=found)
    result.sessions = pd.concat([old_sessions, result.sessions]).sort_index()
    _write(root, result, out, append=True)
    unchanged = datasets_meta.num_rows
    return dataclasses.replace(result.summary, datasets_unchanged=unchanged)


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

    The tables folder is locked (`lock_tables`) from the scan to the last write.

    Raises:
        TablesFolderMissing: ``root_dir`` or ``out_dir`` does not exist.
    """
    root, out = _folders(root_dir, out_dir)
    with _changing(out):
        result = _build(root, hash_ids, hash_files, lab, workers, digest_cache, None)
        if result.sessions.empty or not result.datasets.num_rows:
            what = "sessions" if result.sessions.empty else "datasets"
            warnings.warn(f"No {what} found in {root}", RuntimeWarning, stacklevel=3)
        return _write(root, result, out)


def _folders(root_dir: str | os.PathLike, out_dir: str | os.PathLike | None) -> tuple[Path, Path]:
    """The data folder (absolute) and the tables folder (default: the data folder)."""
    root = Path(root_dir).resolve()
    if not root.is_dir():
        raise TablesFolderMissing(f"Data folder does not exist: {root}")
    out = Path(out_dir) if out_dir is not None else root
    if not out.is_dir():
        raise TablesFolderMissing(f"Cache tables folder does not exist: {out}")
    return root, out


def update_tables(
    root_dir: str | os.PathLike,
    cache_dir: str | os.PathLike | None = None,
    hash_ids: bool = True,
    hash_files: bool | None = None,
    lab: str | None = None,
    *,
    sessions: Iterable[str | os.PathLike] | None = None,
    rescan: Literal["changed", "all"] = "all",
    workers: int | None = None,
    digest_cache: str | os.PathLike | None = None,
) -> UpdateSummary:
    """Bring the tables in ``cache_dir`` (default ``root_dir``) up to date with ``root_dir``.

    Which sessions are rescanned (their files stat'ed and compared with the table):

    - ``sessions``: only these session folders (absolute or relative to ``root_dir``); a folder
      that no longer exists has its session removed. Nothing else is looked at: for callers
      that know what changed, such as a registration.
    - ``rescan="all"`` (default): every session; sees files added, removed, renamed, and
      rewritten in place (by size and mtime), as pipelines that re-extract a session do.
    - ``rescan="changed"``: new sessions, and sessions in which a folder's mtime changed since
      the last scan; sessions whose folder is gone are removed. This sees files added, removed
      or renamed, but not a file rewritten in place (same name, its folder's mtime unchanged).

    Without state files from the last ``make_parquet_db``/``update_tables`` of these tables
    (e.g. tables made by ONE-api or edited by a ``LocalTarget``), every session is rescanned.
    In a rescanned session only new files and files whose size or mtime changed are hashed;
    rows of unchanged files (id, hash, qc) and session fields (task_protocol, projects) are
    kept, and a changed file's QC is reset to NOT_SET. ``hash_files=None`` hashes when the
    existing table has hashes. Without existing tables this is a full build. The result equals
    a full build of the same folder up to row order, for the changes each mode sees.

    When the sessions to rescan are all new and the tables are as the last scan wrote them,
    their rows are appended to the files, whose other rows are copied without being decoded:
    the cost is that of the new sessions, not of the tables (each append adds a parquet row
    group; a file with 64 of them is rewritten whole at the next update).

    The tables folder is locked (`lock_tables`) from the reading of the tables to the last
    write, scan and hashing included: registrations into the same tables wait for it. Ids of
    tables written by earlier versions (uuid5s) are converted to uuid3s.

    Raises:
        TablesFolderMissing: ``root_dir`` or ``cache_dir`` does not exist.
        SessionFolderError: a folder of ``sessions`` is not a session folder under ``root_dir``.
    """
    if rescan not in ("changed", "all"):
        raise ValueError(f"rescan={rescan!r}: use 'changed' or 'all'")
    root, out = _folders(root_dir, cache_dir)
    with _changing(out):
        try:
            appended = _append_new_sessions(
                root, out, hash_ids, hash_files, lab, workers, digest_cache, sessions, rescan
            )
        except parquet_append.ParquetAppendError as exc:
            logger.warning("Cannot append to the tables in %s (%s): rewriting them", out, exc)
            appended = None
        if appended is not None:
            return appended
        previous = _read_previous(out)
        if previous is not None:
            previous = _upgraded_previous(previous)
        result = _build(
            root, hash_ids, hash_files, lab, workers, digest_cache, previous, sessions, rescan
        )
        _write(root, result, out)
        return result.summary
