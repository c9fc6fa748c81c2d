"""What the last scan recorded beside the tables (each file's and folder's mtime), and writing
the tables together with it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from one_flows.cache.files import (
    DATASETS_FILE,
    DIRS_FILE,
    SESSIONS_FILE,
    STATE_FILE,
    append_atomic,
    footer_md5,
    table_metadata,
    write_atomic,
    write_parquet_atomic,
)
from one_flows.cache.tables import load_table, load_tables

SCAN_KEY = "scan_id"
"""Key of the ``one_metadata`` entry naming the scan that wrote a datasets table and its state."""

FOOTER_KEY = "datasets_footer_md5"
"""Key of the state files' ``one_metadata`` entry: the md5 of the datasets file's footer as
written by that scan. Equal now, the file is as the scan left it (not edited and saved since)."""


@dataclass
class Stored:
    """Tables with their scan state, as they are written.

    ``mtimes`` holds each datasets row's file mtime_ns at the scan (-1 where unknown), ``dirs``
    the mtime_ns of each session's folders (`dirs_table`).
    """

    sessions: pd.DataFrame
    datasets: pa.Table
    mtimes: np.ndarray
    dirs: pa.Table


@dataclass
class Previous(Stored):
    """The tables an update starts from and what the last scan recorded about them.

    ``recorded`` is True when the datasets table comes from a scan (make_parquet_db or
    update_tables, possibly edited and saved back with its metadata) whose state files are
    beside it: then ids are ours, and ``mtimes`` and ``dirs`` are that scan's. Otherwise mtimes
    are -1 and dirs empty.
    """

    recorded: bool


def dirs_table(eids: Sequence[str], rel_dirs: Sequence[str], mtimes: Sequence[int]) -> pa.Table:
    """The folders' state: each folder's session, path relative to it ("" for itself), mtime_ns."""
    return pa.table(
        {
            "eid": pa.array(eids, pa.large_string()),
            "rel_dir": pa.array(rel_dirs, pa.large_string()),
            "mtime_ns": pa.array(mtimes, pa.int64()),
        }
    )


def read_previous(out_dir: Path) -> Previous | None:
    """The tables in ``out_dir`` and their scan state; None without tables."""
    datasets_path = out_dir / DATASETS_FILE
    if not ((out_dir / SESSIONS_FILE).exists() and datasets_path.exists()):
        return None
    datasets = pq.ParquetFile(datasets_path).read()
    state = _read_state(out_dir, datasets)
    if state is not None:
        sessions, _ = load_table(out_dir / SESSIONS_FILE, "sessions")
        mtimes, dirs = state
        return Previous(sessions, datasets, mtimes, dirs, True)
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
    return Previous(tables.sessions, datasets, no_mtimes, dirs_table([], [], []), False)


def scan_id(metadata: dict[bytes, bytes] | None) -> str | None:
    """The scan named in a parquet file's key-value metadata, if any."""
    raw = (metadata or {}).get(b"one_metadata")
    return json.loads(raw).get(SCAN_KEY) if raw else None


def _read_state(out_dir: Path, datasets: pa.Table) -> tuple[np.ndarray, pa.Table] | None:
    """The recorded (mtime_ns per datasets row, -1 if unknown; folders table), or None.

    None when the state files are missing or come from another scan than the table's.
    """
    paths = (out_dir / STATE_FILE, out_dir / DIRS_FILE)
    scan = scan_id(datasets.schema.metadata)
    if scan is None or not all(p.exists() for p in paths):
        return None
    state, dirs = (pq.ParquetFile(p).read() for p in paths)
    if scan_id(state.schema.metadata) != scan or scan_id(dirs.schema.metadata) != scan:
        return None
    ids = datasets.column("id")
    if state.column("id").equals(ids):
        return state.column("mtime_ns").to_numpy(), dirs
    # The table was edited and saved back since (rows added, removed or reordered).
    at = pd.Index(state.column("id").to_numpy()).get_indexer(ids.to_numpy())
    mtimes = state.column("mtime_ns").to_numpy()[at]
    mtimes[at < 0] = -1
    return mtimes, dirs


def write(root: Path, stored: Stored, out_dir: Path, append: bool = False) -> tuple[Path, Path]:
    """Write both tables, then the scan state stamped with the datasets table's identity.

    With ``append``, the datasets rows and state of ``stored`` are added to those of the files.
    """
    meta = table_metadata(root)
    scan_meta = {**meta, SCAN_KEY: uuid.uuid4().hex}
    put = append_atomic if append else write_atomic
    datasets_path = put(stored.datasets, out_dir / DATASETS_FILE, scan_meta)
    sessions_path = write_parquet_atomic(stored.sessions, out_dir / SESSIONS_FILE, meta)
    ids = stored.datasets.column("id")
    state = pa.table({"id": ids, "mtime_ns": pa.array(stored.mtimes, pa.int64())})
    state_meta = {**scan_meta, FOOTER_KEY: footer_md5(datasets_path)}
    for table, name in ((state, STATE_FILE), (stored.dirs, DIRS_FILE)):
        put(table, out_dir / name, state_meta)
    return sessions_path, datasets_path
