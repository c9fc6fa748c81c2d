"""Bringing tables up to date with their data root: rescanning what changed, appending rows
when all there is to add is new sessions."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from one_flows import _parquet_append as parquet_append
from one_flows.cache.build import BuildOptions, UpdateSummary, folders, index_sessions
from one_flows.cache.files import DATASETS_FILE, DIRS_FILE, SESSIONS_FILE, STATE_FILE, footer_md5
from one_flows.cache.lock import changing
from one_flows.cache.scan import Session, find_sessions, given_sessions
from one_flows.cache.state import FOOTER_KEY, SCAN_KEY, Previous, read_previous, scan_id, write
from one_flows.cache.tables import load_table
from one_flows.cache.upgrade import id_upgrades, upgraded_previous

__all__ = ["update_tables"]

logger = logging.getLogger(__name__)

_MAX_ROW_GROUPS = 64
"""Appends to a datasets file with this many row groups rewrite it whole instead."""


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

    Raises
    ------
    TablesFolderMissing
        ``root_dir`` or ``cache_dir`` does not exist.
    SessionFolderError
        A folder of ``sessions`` is not a session folder under ``root_dir``.
    """
    if rescan not in ("changed", "all"):
        raise ValueError(f"rescan={rescan!r}: use 'changed' or 'all'")
    root, out = folders(root_dir, cache_dir)
    options = BuildOptions(hash_ids, hash_files, lab, workers, digest_cache)
    with changing(out):
        try:
            appended = _append_new_sessions(root, out, options, sessions, rescan)
        except parquet_append.ParquetAppendError as exc:
            logger.warning("Cannot append to the tables in %s (%s): rewriting them", out, exc)
            appended = None
        if appended is not None:
            return appended
        previous = read_previous(out)
        if previous is not None:
            previous = upgraded_previous(previous)
        found, gone = _to_rescan(root, options, previous, sessions, rescan)
        result = index_sessions(root, options, found, gone, previous)
        write(root, result, out)
        return result.summary


def _to_rescan(
    root: Path,
    options: BuildOptions,
    previous: Previous | None,
    sessions: Iterable[str | os.PathLike] | None,
    rescan: str,
) -> tuple[list[Session], set[str]]:
    """The sessions to rescan into ``previous``, and the ids of its sessions that are gone.

    The ``sessions`` given, when the tables' state is recorded; else every session folder,
    or with ``rescan="changed"`` and a recorded state those whose folders changed.
    """
    recorded = previous is not None and previous.recorded
    if sessions is not None and recorded:
        found, absent = given_sessions(root, sessions, options.lab, options.hash_ids)
        return found, {s.eid for s in absent}
    found = find_sessions(root, options.lab, options.hash_ids)
    if previous is None:
        return found, set()
    old_eids = set(previous.sessions.index)
    old_eids.update(pc.unique(previous.datasets.column("eid")).to_pylist())
    gone = old_eids - {s.eid for s in found}
    if recorded and rescan != "all":
        found = changed_sessions(found, previous.dirs)
    return found, gone


def changed_sessions(found: list[Session], dirs: pa.Table) -> list[Session]:
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


def _append_new_sessions(
    root: Path,
    out: Path,
    options: BuildOptions,
    sessions: Iterable[str | os.PathLike] | None,
    rescan: str,
) -> UpdateSummary | None:
    """Update the tables in ``out`` by appending rows, when all there is to add is new sessions.

    Only the new sessions' rows are encoded; the rest of each file is copied. None, having
    changed nothing, when that is not enough: the tables or their state files are missing or
    were edited since the last scan (their footer fingerprint differs), a session to rescan
    is already in the tables, one in the tables is gone, or ``rescan="all"``.
    """
    if sessions is None and rescan == "all":
        return None
    datasets_meta = _as_scanned(out)
    if datasets_meta is None or datasets_meta.num_row_groups >= _MAX_ROW_GROUPS:
        return None
    old_sessions, _ = load_table(out / SESSIONS_FILE, "sessions")
    if id_upgrades(old_sessions):
        return None  # ids of an earlier version, converted by a full update
    found = _new_sessions_only(root, out, options, sessions, old_sessions)
    if found is None:
        return None
    hash_all = options.hash_files
    if hash_all is None:
        hash_all = _hashes_in(datasets_meta)
        if hash_all is None:
            return None
    if not found:
        return UpdateSummary(0, 0, 0, 0, 0, datasets_meta.num_rows, 0)
    result = index_sessions(root, dataclasses.replace(options, hash_files=hash_all), found)
    result.sessions = pd.concat([old_sessions, result.sessions]).sort_index()
    write(root, result, out, append=True)
    return dataclasses.replace(result.summary, datasets_unchanged=datasets_meta.num_rows)


def _as_scanned(out: Path) -> pq.FileMetaData | None:
    """The metadata of the datasets file in ``out`` if it and its state files are as the last
    scan wrote them (the state files name its scan and its footer); else None."""
    paths = [out / name for name in (DATASETS_FILE, SESSIONS_FILE, STATE_FILE, DIRS_FILE)]
    if not all(p.exists() for p in paths):
        return None
    datasets_path, _, *sidecars = paths
    datasets_meta = pq.read_metadata(datasets_path)
    scan = scan_id(datasets_meta.metadata)
    if scan is None:
        return None
    fingerprint = {SCAN_KEY: scan, FOOTER_KEY: footer_md5(datasets_path)}
    for sidecar in sidecars:
        raw = (pq.read_schema(sidecar).metadata or {}).get(b"one_metadata", b"{}")
        recorded = json.loads(raw)
        if any(recorded.get(k) != v for k, v in fingerprint.items()):
            return None
    return datasets_meta


def _new_sessions_only(
    root: Path,
    out: Path,
    options: BuildOptions,
    sessions: Iterable[str | os.PathLike] | None,
    old_sessions: pd.DataFrame,
) -> list[Session] | None:
    """The sessions to add to the tables in ``out`` (``sessions``, else those whose folders
    changed), or None when one of them is in the tables already or one of theirs is gone."""
    dirs = pq.ParquetFile(out / DIRS_FILE).read(columns=["eid"] if sessions is not None else None)
    session_ids = pa.array(old_sessions.index.to_numpy(dtype=object), pa.large_string())
    known = pa.chunked_array([*dirs.column("eid").chunks, session_ids], pa.large_string())

    def any_known(candidates: Iterable[Session]) -> bool:
        eids = pa.array([s.eid for s in candidates], pa.large_string())
        return pc.any(pc.is_in(known, value_set=eids)).as_py() or False

    if sessions is not None:
        found, absent = given_sessions(root, sessions, options.lab, options.hash_ids)
        return None if any_known((*found, *absent)) else found
    found = find_sessions(root, options.lab, options.hash_ids)
    present = pa.array([s.eid for s in found], pa.large_string())
    if not pc.all(pc.is_in(known, value_set=present)).as_py():
        return None  # a session was removed
    found = changed_sessions(found, dirs)
    return None if any_known(found) else found


def _hashes_in(datasets: pq.FileMetaData) -> bool | None:
    """Whether any row of a datasets file has a hash, from its statistics; None if unknown."""
    column = datasets.schema.names.index("hash")
    longest = ""
    for i in range(datasets.num_row_groups):
        stats = datasets.row_group(i).column(column).statistics
        if stats is None or not stats.has_min_max:
            return None
        longest = max(longest, stats.max)
    return bool(longest)
