"""Indexing sessions into the tables: a full build, or a rescan of some sessions into tables
that exist, keeping what did not change."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from one_flows.cache.errors import TablesFolderMissing
from one_flows.cache.ids import dataset_id
from one_flows.cache.lock import changing
from one_flows.cache.scan import Scan, Session, find_sessions, scan_sessions
from one_flows.cache.state import Previous, Stored, dirs_table, write
from one_flows.cache.tables import conform, datasets_table, empty_sessions, qc_codes
from one_flows.hashing import DigestCache, hash_files

__all__ = ["BuildOptions", "UpdateSummary", "make_parquet_db"]

_RACY_NS = 2_000_000_000
"""A folder modified this close before a scan started is recorded as unknown (rescanned next
time): a change in the same tick of the filesystem clock would leave its mtime unchanged."""


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


@dataclass(frozen=True)
class BuildOptions:
    """How sessions are indexed (`make_parquet_db`'s and `update_tables`' arguments).

    ``hash_files=None`` hashes when the tables the sessions go into have hashes.
    """

    hash_ids: bool = True
    hash_files: bool | None = False
    lab: str | None = None
    workers: int | None = None
    digest_cache: str | os.PathLike | None = None


@dataclass
class Result(Stored):
    """New tables and scan state, ready to be written, and what changed."""

    summary: UpdateSummary


@dataclass
class _Files:
    """Columns of the scanned files, filled in from their sessions' previous rows."""

    sizes: np.ndarray
    mtimes: np.ndarray
    hashes: np.ndarray
    qc_codes: np.ndarray
    pos: np.ndarray  # row of the file among the previous rows of its session, -1 if new
    same: np.ndarray  # ... that has the same size and mtime

    @classmethod
    def of(cls, scan: Scan) -> _Files:
        n = len(scan.rel_paths)
        return cls(
            sizes=np.asarray(scan.sizes, dtype=np.int64),
            mtimes=np.asarray(scan.mtimes, dtype=np.int64),
            hashes=np.full(n, "", dtype=object),
            qc_codes=np.zeros(n, dtype=np.int8),
            pos=np.full(n, -1, dtype=np.int64),
            same=np.zeros(n, dtype=bool),
        )


def index_sessions(
    root: Path,
    options: BuildOptions,
    found: list[Session],
    gone: Iterable[str] = (),
    previous: Previous | None = None,
) -> Result:
    """Scan the sessions ``found`` into ``previous``'s tables (new tables without previous),
    and remove the sessions whose ids are ``gone``.

    Rows of unchanged files (same size and mtime) keep their hash and QC, and with recorded
    tables their id; rows of other sessions are kept as they are.
    """
    started = time.time_ns()
    scan = scan_sessions(found)
    files = _Files.of(scan)
    hash_all = options.hash_files
    old_ids = None
    if previous is None:
        kept, n_dropped = _nothing(), 0
    else:
        kept, dropped, dropped_mtimes = _split(previous, {s.eid for s in found}, set(gone))
        _carry_over(files, scan, dropped, dropped_mtimes)
        n_dropped = dropped.num_rows
        if previous.recorded:
            old_ids = dropped.column("id").to_numpy(zero_copy_only=False)
        if hash_all is None:
            hash_all = _has_hashes(previous.datasets)
    ids = _dataset_ids(scan, files.pos, old_ids, options.hash_ids)
    n_hashed = _hash_changed(scan, files, options) if hash_all else 0
    old_sessions = empty_sessions() if previous is None else previous.sessions
    new_sessions = [s for s in found if s.eid not in old_sessions.index]
    dir_mtimes = np.asarray(scan.dir_mtimes, dtype=np.int64)
    dir_mtimes[dir_mtimes >= started - _RACY_NS] = -1
    new = Stored(
        _sessions_frame(new_sessions),
        datasets_table(scan.eids, ids, scan.rel_paths, files.sizes, files.hashes, files.qc_codes),
        files.mtimes,
        dirs_table(scan.dir_eids, scan.dir_paths, dir_mtimes),
    )
    n, n_known, n_same = len(ids), int((files.pos >= 0).sum()), int(files.same.sum())
    summary = UpdateSummary(
        sessions_added=len(new_sessions),
        sessions_removed=len(old_sessions) - len(kept.sessions),
        datasets_added=n - n_known,
        datasets_removed=n_dropped - n_known,
        datasets_changed=n_known - n_same,
        datasets_unchanged=n_same + kept.datasets.num_rows,
        files_hashed=n_hashed,
    )
    joined = _joined(kept, new)
    return Result(joined.sessions, joined.datasets, joined.mtimes, joined.dirs, summary)


def _nothing() -> Stored:
    return Stored(
        empty_sessions(), pa.table({}), np.zeros(0, dtype=np.int64), dirs_table([], [], [])
    )


def _split(
    previous: Previous, rescanned: set[str], gone: set[str]
) -> tuple[Stored, pa.Table, np.ndarray]:
    """``previous`` parted: what stays as it is (the sessions not ``gone``, the datasets and
    folders of the others), and the datasets rows of both with their recorded mtimes."""
    drop = pa.array(sorted(rescanned | gone), pa.large_string())
    old = previous.datasets
    dropped = pc.is_in(old.column("eid"), value_set=drop).to_numpy(zero_copy_only=False)
    keep_dir = pc.invert(pc.is_in(previous.dirs.column("eid"), value_set=drop))
    kept = Stored(
        previous.sessions.drop(index=previous.sessions.index.intersection(list(gone))),
        old.filter(pa.array(~dropped)),
        previous.mtimes[~dropped],
        previous.dirs.filter(keep_dir),
    )
    return kept, old.filter(pa.array(dropped)), previous.mtimes[dropped]


def _carry_over(files: _Files, scan: Scan, old: pa.Table, old_mtimes: np.ndarray) -> None:
    """Find each scanned file's row among ``old`` (the previous rows of its session), and give
    the files whose size and recorded mtime are unchanged their hash and QC."""
    rows = zip(old.column("eid").to_pylist(), old.column("rel_path").to_pylist(), strict=True)
    lookup = {k: i for i, k in enumerate(rows)}
    files.pos = np.fromiter(
        (lookup.get(k, -1) for k in zip(scan.eids, scan.rel_paths, strict=True)),
        dtype=np.int64,
        count=len(files.pos),
    )
    known = np.flatnonzero(files.pos >= 0)
    at = files.pos[known]
    old_size = pc.cast(old.column("file_size"), pa.float64()).to_numpy()
    unchanged = (old_size[at] == files.sizes[known]) & (old_mtimes[at] == files.mtimes[known])
    unchanged &= old_mtimes[at] >= 0
    files.same[known[unchanged]] = True
    old_hash = old.column("hash").to_numpy(zero_copy_only=False)
    files.hashes[known[unchanged]] = old_hash[at[unchanged]]
    files.qc_codes[known[unchanged]] = qc_codes(old.column("qc"))[at[unchanged]]


def _dataset_ids(
    scan: Scan, pos: np.ndarray, old_ids: np.ndarray | None, hash_ids: bool
) -> list[str]:
    """The scanned files' ids: their relative paths without ``hash_ids``; else the id each
    known file had (``old_ids``, by its row ``pos``), as computed when it was first scanned,
    or a new one."""
    if not hash_ids:
        return scan.rel_paths
    if old_ids is None:
        return list(map(dataset_id, scan.names, scan.rel_paths))
    return [
        old_ids[p] if p >= 0 else dataset_id(k, r)
        for p, k, r in zip(pos.tolist(), scan.names, scan.rel_paths, strict=True)
    ]


def _has_hashes(datasets: pa.Table) -> bool:
    return bool(pc.max(pc.binary_length(datasets.column("hash"))).as_py())


def _hash_changed(scan: Scan, files: _Files, options: BuildOptions) -> int:
    """Hash the files that are new or whose size or mtime changed; return how many."""
    to_hash = np.flatnonzero(~files.same)
    if not len(to_hash):
        return 0
    folders = {s.eid: s.folder for s in scan.sessions}
    paths = [scan.path(i, folders) for i in to_hash]
    cache = DigestCache(options.digest_cache) if options.digest_cache is not None else None
    try:
        results = hash_files(paths, workers=options.workers, cache=cache)
    finally:
        if cache is not None:
            cache.close()
    files.hashes[to_hash] = [r.md5 or "" for r in results]
    return len(to_hash)


def _sessions_frame(sessions: list[Session]) -> pd.DataFrame:
    n = len(sessions)
    frame = pd.DataFrame(
        {
            "id": pd.array([s.eid for s in sessions], dtype="str"),
            "lab": pd.array([s.key.lab or "" for s in sessions], dtype="str"),
            "subject": pd.array([s.key.subject for s in sessions], dtype="str"),
            "date": pd.Series([s.day for s in sessions], dtype=object),
            "number": np.asarray([int(s.key.number) for s in sessions], dtype=np.uint16),
            "task_protocol": pd.array([""] * n, dtype="str"),
            "projects": pd.array([""] * n, dtype="str"),
        }
    )
    return frame.set_index("id")


def _joined(kept: Stored, new: Stored) -> Stored:
    """The kept rows followed by the new ones; sessions sorted by id."""
    parts = [f for f in (kept.sessions, new.sessions) if len(f)]
    sessions = pd.concat(parts).sort_index() if parts else empty_sessions()
    datasets = new.datasets
    if kept.datasets.num_rows:
        datasets = pa.concat_tables([conform(kept.datasets), datasets])
    mtimes = np.concatenate([kept.mtimes, new.mtimes])
    return Stored(sessions, datasets, mtimes, pa.concat_tables([kept.dirs, new.dirs]))


def folders(root_dir: str | os.PathLike, out_dir: str | os.PathLike | None) -> tuple[Path, Path]:
    """The data folder (absolute) and the tables folder (default: the data folder)."""
    root = Path(root_dir).resolve()
    if not root.is_dir():
        raise TablesFolderMissing(f"Data folder does not exist: {root}")
    out = Path(out_dir) if out_dir is not None else root
    if not out.is_dir():
        raise TablesFolderMissing(f"Cache tables folder does not exist: {out}")
    return root, out


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

    Raises
    ------
    TablesFolderMissing
        ``root_dir`` or ``out_dir`` does not exist.
    """
    root, out = folders(root_dir, out_dir)
    options = BuildOptions(hash_ids, hash_files, lab, workers, digest_cache)
    with changing(out):
        result = index_sessions(root, options, find_sessions(root, lab, hash_ids))
        if result.sessions.empty or not result.datasets.num_rows:
            what = "sessions" if result.sessions.empty else "datasets"
            warnings.warn(f"No {what} found in {root}", RuntimeWarning, stacklevel=3)
        return write(root, result, out)
