"""Tables of earlier versions, whose ids were uuid5s, converted to uuid3 ids."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from one_flows.cache.files import SESSIONS_FILE
from one_flows.cache.ids import dataset_id, session_id
from one_flows.cache.lock import changing, lock_tables
from one_flows.cache.state import Previous, Stored, read_previous, write
from one_flows.cache.tables import CacheTables, conform, load_table, load_tables, save_tables
from one_flows.walk import SessionKey

__all__ = ["upgrade_ids", "upgrade_tables"]

logger = logging.getLogger(__name__)

_UUID5 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def _is_uuid5(ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Which of the id strings are uuid5s: ids written by earlier versions of one-flows."""
    return pc.match_substring_regex(ids, f"^{_UUID5.pattern}$").to_numpy(zero_copy_only=False)


IdUpgrades = dict[str, tuple[str, str]]
"""Sessions whose ids are uuid5s of an earlier version: {old id: (uuid3 id, canonical name)}."""


def id_upgrades(sessions: pd.DataFrame) -> IdUpgrades:
    """The sessions of a sessions table whose ids are uuid5s, with their uuid3s."""
    old = _is_uuid5(pa.array(sessions.index.to_numpy(dtype=object), pa.large_string()))
    if not old.any():
        return {}
    rows = sessions[old]
    upgrades = {}
    columns = (rows[c] for c in ("lab", "subject", "date", "number"))
    for eid, lab, subject, day, number in zip(rows.index, *columns, strict=True):
        key = SessionKey.of(subject, day, number, lab if isinstance(lab, str) else None)
        upgrades[eid] = (session_id(key), key.canonical)
    return upgrades


def _upgraded_dataset_ids(
    eids: np.ndarray, ids: np.ndarray, rel_paths: np.ndarray, upgrades: IdUpgrades
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


def _renamed_sessions(sessions: pd.DataFrame, upgrades: IdUpgrades) -> pd.DataFrame:
    new = [upgrades.get(eid, (eid,))[0] for eid in sessions.index]
    return sessions.set_axis(pd.Index(new, dtype=sessions.index.dtype, name=sessions.index.name))


def upgrade_ids(tables: CacheTables) -> CacheTables:
    """``tables`` with the uuid5 ids written by earlier versions replaced by their uuid3s.

    Returns ``tables`` itself when it has no uuid5 session id. Ids of other kinds (ONE-api's,
    Alyx's, relative paths) are kept.
    """
    upgrades = id_upgrades(tables.sessions)
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


def upgraded_previous(previous: Previous) -> Previous:
    """``previous`` with the uuid5 ids of earlier versions replaced by uuid3s."""
    upgrades = id_upgrades(previous.sessions)
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


def upgrade_tables(cache_dir: str | os.PathLike) -> bool:
    """Convert tables of earlier versions in ``cache_dir``, and their scan state, to uuid3 ids.

    Takes `lock_tables`. Every row keeps its fields, and the scan state its mtimes (the next
    update hashes nothing more for it). Returns False, having changed nothing, when the tables
    have no uuid5 session id.
    """
    out = Path(cache_dir)
    with lock_tables(out):
        if not (out / SESSIONS_FILE).exists():
            return False
        sessions, _ = load_table(out / SESSIONS_FILE, "sessions")
        previous = read_previous(out) if id_upgrades(sessions) else None
        if previous is None:
            return False
        logger.info("Converting the ids of the tables in %s to uuid3s", out)
        with changing(out):
            if not previous.recorded:
                save_tables(upgrade_ids(load_tables(out)), out)
                return True
            upgraded = upgraded_previous(previous)
            raw = (previous.datasets.schema.metadata or {}).get(b"one_metadata", b"{}")
            origin = Path(json.loads(raw).get("origin") or out)
            stored = Stored(
                upgraded.sessions.sort_index(),
                conform(upgraded.datasets),
                upgraded.mtimes,
                upgraded.dirs,
            )
            write(origin, stored, out)
        return True
