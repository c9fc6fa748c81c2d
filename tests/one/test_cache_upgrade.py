"""Tables of earlier versions (uuid5 ids, state files beside the tables) are converted by the next
writer, keeping every row's fields and the scan state."""

from __future__ import annotations

import shutil
import uuid

import numpy as np
import pandas as pd
import pytest
from one.api import One

from one_flows import cache
from one_flows.cache import load_tables, make_parquet_db, save_tables, update_tables
from one_flows.targets import FileBatch, LocalTarget
from one_flows.walk import SessionKey

from .conftest import KS, age, as_written_by_uuid5_versions

NEW = "KS007/2019-05-01/001"
OLD_STATE_FILES = ("_scan_state.parquet", "_scan_dirs.parquet")


def _uuid3_rule(tables: cache.CacheTables) -> None:
    """Every id is the uuid3 of its session key (and relative path) in the fixed namespace."""
    keys = {
        eid: SessionKey.of(r["subject"], r["date"], r["number"], r["lab"]).canonical
        for eid, r in tables.sessions.iterrows()
    }
    assert all(eid == str(uuid.uuid3(cache.ids.ID_NAMESPACE, key)) for eid, key in keys.items())
    for (eid, did), rel_path in tables.datasets["rel_path"].items():
        assert did == str(uuid.uuid3(cache.ids.ID_NAMESPACE, f"{keys[eid]}/{rel_path}"))


def _without_ids(tables: cache.CacheTables) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tables' rows, ids left out, in a fixed order."""
    sessions = tables.sessions.reset_index(drop=True).sort_values(["subject", "date", "number"])
    datasets = tables.datasets.reset_index(drop=True).sort_values("rel_path", kind="stable")
    return sessions.reset_index(drop=True), datasets.reset_index(drop=True)


def _new_session(root) -> None:
    (root / NEW / "alf").mkdir(parents=True)
    np.save(root / NEW / "alf" / "_ibl_trials.choice.npy", np.arange(3))


def _state_files_moved(root) -> None:
    assert not any((root / name).exists() for name in OLD_STATE_FILES)
    assert (root / cache.files.STATE_FILE).is_file() and (root / cache.files.DIRS_FILE).is_file()


@pytest.fixture
def old_tables(alf_tree):
    """A tree whose tables (hashed, with session fields and a QC) an earlier version wrote."""
    age(alf_tree)
    make_parquet_db(alf_tree, hash_files=True)
    tables = load_tables(alf_tree)
    tables.sessions["task_protocol"] = "ephys"
    qc = tables.datasets["qc"].copy()
    qc.iloc[0] = "FAIL"
    tables.datasets["qc"] = qc
    save_tables(tables, alf_tree)
    update_tables(alf_tree)  # the scan state, as that version left it after its last update
    before = load_tables(alf_tree)
    ids = as_written_by_uuid5_versions(alf_tree)
    assert (root_ids := set(load_tables(alf_tree).sessions.index)) == {
        ids[eid] for eid in before.sessions.index
    }
    assert all(uuid.UUID(eid).version == 5 for eid in root_ids)
    return alf_tree, before


@pytest.mark.parametrize("rescan", ["all", "changed"])
def test_an_update_converts_uuid5_tables_and_keeps_rows_and_state(old_tables, monkeypatch, rescan):
    root, before = old_tables
    monkeypatch.setattr(
        cache.build, "hash_files", pytest.fail
    )  # the state survives: nothing to hash
    summary = update_tables(root, rescan=rescan)
    after = load_tables(root)
    assert summary.files_hashed == 0 and summary.sessions_added == 0
    assert summary.datasets_unchanged == len(before.datasets)
    _uuid3_rule(after)
    assert after.sessions.index.sort_values().equals(before.sessions.index.sort_values())
    for got, expected in zip(_without_ids(after), _without_ids(before), strict=True):
        pd.testing.assert_frame_equal(got, expected)
    _state_files_moved(root)


def test_an_update_of_given_new_sessions_converts_uuid5_tables(old_tables, monkeypatch):
    # The new sessions' rows are not appended to the old rows: the tables are converted first.
    root, before = old_tables
    _new_session(root)
    summary = update_tables(root, sessions=[NEW])
    after = load_tables(root)
    assert (summary.sessions_added, summary.files_hashed) == (1, 1)
    _uuid3_rule(after)
    assert len(after.sessions) == len(before.sessions) + 1
    _state_files_moved(root)


def test_a_build_over_uuid5_tables_writes_uuid3_ids(old_tables):
    root, before = old_tables
    make_parquet_db(root, hash_files=True)
    after = load_tables(root)
    _uuid3_rule(after)
    assert set(after.datasets.index) == set(before.datasets.index)
    _state_files_moved(root)


def test_registration_into_uuid5_tables_converts_them_with_their_state(old_tables, monkeypatch):
    root, before = old_tables
    target = LocalTarget(root)
    ks = KS.split("/")
    # Read before any change: the target answers with the uuid3 ids already.
    (found,) = target.find_sessions(ks[0], ks[1], int(ks[2]))
    assert found["id"] == cache.session_id(KS)

    _new_session(root)
    record = {"subject": "KS007", "start_time": "2019-05-01T10:00:00", "number": 1}
    eid = target.create_session(record)["id"]
    target.register_files(FileBatch(NEW, ["alf/_ibl_trials.choice.npy"], ["0" * 32], [152], [None]))
    after = load_tables(root)
    _uuid3_rule(after)
    assert eid in after.sessions.index and len(after.sessions) == len(before.sessions) + 1
    assert after.datasets.index.is_unique
    assert len(after.datasets) == len(before.datasets) + 1
    _state_files_moved(root)

    # The scan state was converted with the ids: an update rehashes only the registered file.
    hashed = []
    real = cache.build.hash_files
    monkeypatch.setattr(
        cache.build, "hash_files", lambda paths, **kw: hashed.extend(paths) or real(paths, **kw)
    )
    update_tables(root)
    assert hashed == [str(root / NEW / "alf" / "_ibl_trials.choice.npy")]


def test_state_files_move_into_the_hidden_folder(alf_tree, monkeypatch):
    age(alf_tree)
    make_parquet_db(alf_tree)
    # Where earlier versions kept them
    for old, now in zip(
        OLD_STATE_FILES, (cache.files.STATE_FILE, cache.files.DIRS_FILE), strict=True
    ):
        (alf_tree / now).rename(alf_tree / old)
    shutil.rmtree(alf_tree / cache.files.STATE_DIR)
    scanned = []
    real_scan = cache.build.scan_sessions
    monkeypatch.setattr(
        cache.build, "scan_sessions", lambda found: scanned.extend(found) or real_scan(found)
    )

    summary = update_tables(alf_tree, rescan="changed")
    # The moved state is used: no folder changed, so no session was scanned.
    assert scanned == [] and summary.datasets_unchanged == len(load_tables(alf_tree).datasets)
    _state_files_moved(alf_tree)
    assert sorted(p.name for p in alf_tree.iterdir() if p.is_file()) == [
        "datasets.pqt",
        "sessions.pqt",
    ]
    # ONE-api's local mode is not confused by the hidden folder.
    one = One(cache_dir=alf_tree, mode="local")
    assert sorted(map(str, one.search())) == sorted(load_tables(alf_tree).sessions.index)


def test_any_writer_moves_the_state_files(alf_tree):
    make_parquet_db(alf_tree)
    for old, now in zip(
        OLD_STATE_FILES, (cache.files.STATE_FILE, cache.files.DIRS_FILE), strict=True
    ):
        (alf_tree / now).rename(alf_tree / old)
    LocalTarget(alf_tree).create_session(
        {"subject": "KS007", "start_time": "2019-05-01T10:00:00", "number": 1}
    )
    _state_files_moved(alf_tree)
