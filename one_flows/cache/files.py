"""The files of a tables folder, and how they are written: replaced whole or appended to,
atomically, so that a reader sees the old file or the new one, never a partial one."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import json
import os
import re
import stat
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from one_flows import _parquet_append as parquet_append

__all__ = [
    "DIRS_FILE",
    "LOCK_FILE",
    "STATE_DIR",
    "STATE_FILE",
    "table_metadata",
    "write_parquet_atomic",
]

SESSIONS_FILE = "sessions.pqt"
DATASETS_FILE = "datasets.pqt"

STATE_DIR = ".one_flows"
"""The hidden folder, beside the tables, of one-flows' own files: scan state and lock."""

STATE_FILE = f"{STATE_DIR}/scan_state.parquet"
"""Sidecar of the datasets table: each dataset's file mtime_ns at the last scan, by id."""

DIRS_FILE = f"{STATE_DIR}/scan_dirs.parquet"
"""Sidecar of the datasets table: the mtime_ns of each folder of each session at the last scan."""

LOCK_FILE = f"{STATE_DIR}/tables.lock"
"""The file writers of the tables ``flock`` (see `one_flows.cache.lock_tables`)."""

OLD_STATE_FILES = {"_scan_state.parquet": STATE_FILE, "_scan_dirs.parquet": DIRS_FILE}
"""Where earlier versions kept the state files (beside the tables), and where they go now."""

_TABLE_NAMES = "|".join(
    re.escape(Path(name).name) for name in (SESSIONS_FILE, DATASETS_FILE, STATE_FILE, DIRS_FILE)
)
TMP_NAME = re.compile(rf"\.({_TABLE_NAMES})\.[0-9a-f]{{32}}\.tmp")
"""The temporary files `write_parquet_atomic` writes beside the tables and their state files."""


def table_metadata(origin: str | os.PathLike) -> dict:
    """The ``one_metadata`` of a table made now from ``origin``; ONE-api skips tables without it."""
    created = datetime.datetime.now().isoformat(sep=" ", timespec="minutes")
    return {"date_created": created, "origin": str(origin)}


def write_parquet_atomic(frame: pd.DataFrame, path: str | os.PathLike, metadata: dict) -> Path:
    """Write ``frame`` (with its index) to parquet at ``path`` with ONE's ``one_metadata``.

    The file is written under a temporary name in the same folder, flushed to disk and renamed
    over ``path``, so readers see either the previous file or the complete new one.
    """
    return write_atomic(pa.Table.from_pandas(frame, preserve_index=True), path, metadata)


def write_atomic(table: pa.Table, path: str | os.PathLike, metadata: dict | None) -> Path:
    """Write ``table`` as ``write_parquet_atomic`` does; no ``one_metadata`` if None."""
    table = _with_metadata(table, metadata)
    return _replace(Path(path), lambda f: _write_parquet(table, f))


def append_atomic(table: pa.Table, path: Path, metadata: dict) -> Path:
    """Add the rows of ``table`` at the end of the parquet file at ``path``, atomically.

    The file's rows are copied as they are, not decoded; its metadata becomes ``metadata``.

    Raises
    ------
    ParquetAppendError
        The file is not in ``table``'s schema.
    """
    new = io.BytesIO()
    _write_parquet(_with_metadata(table, metadata), new)
    with open(path, "rb") as old:
        return _replace(path, lambda f: parquet_append.append(old, new.getvalue(), f))


def footer_md5(path: Path) -> str:
    """The md5 of a parquet file's footer: it changes whenever the file is rewritten."""
    with open(path, "rb") as f:
        return hashlib.md5(parquet_append.footer(f)[0]).hexdigest()


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
