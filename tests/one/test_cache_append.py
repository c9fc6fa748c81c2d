"""Updates that only add sessions append rows to the table files; anything else rewrites them.

Either way the tables equal a full build of the folder (up to row order), and ONE-api reads them.
"""

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from one.api import One as OneApi

from one_flows import _parquet_append as parquet_append
from one_flows import cache
from one_flows.cache import load_tables, make_parquet_db, update_tables

from .conftest import age

NEW = ["KS007/2019-05-01/001", "KS007/2019-05-02/001"]


def _add_sessions(root, sessions=NEW):
    for session in sessions:
        for rel in ("alf/_ibl_trials.choice.npy", "alf/probe00/spikes.times.npy"):
            path = root / session / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, np.arange(4))


def _row_groups(root) -> int:
    return pq.read_metadata(root / "datasets.pqt").num_row_groups


def _assert_equals_full_build(root, tmp_path):
    make_parquet_db(root, tmp_path / "full", hash_files=None)
    ours, full = load_tables(root), load_tables(tmp_path / "full")
    pd.testing.assert_frame_equal(ours.sessions.sort_index(), full.sessions.sort_index())
    columns = ["rel_path", "file_size", "exists", "qc"]
    pd.testing.assert_frame_equal(
        ours.datasets[columns].sort_index(), full.datasets[columns].sort_index()
    )


@pytest.fixture
def built(alf_tree):
    age(alf_tree)
    make_parquet_db(alf_tree)
    (alf_tree.parent / "full").mkdir()
    return alf_tree


@pytest.mark.parametrize("given", [True, False], ids=["sessions=", "folder mtimes"])
def test_new_sessions_are_appended(built, tmp_path, monkeypatch, given):
    before = load_tables(built)
    _add_sessions(built)
    monkeypatch.setattr(cache.update, "read_previous", pytest.fail)  # the full update is not taken
    summary = update_tables(built, sessions=NEW if given else None, rescan="changed")
    assert (summary.sessions_added, summary.datasets_added) == (2, 4)
    assert summary.datasets_unchanged == len(before.datasets)
    assert _row_groups(built) == 2
    assert pq.read_metadata(built / cache.files.STATE_FILE).num_row_groups == 2
    _assert_equals_full_build(built, tmp_path)


def test_appended_tables_are_read_by_one_api(built, tmp_path):
    _add_sessions(built)
    update_tables(built, sessions=NEW)
    assert _row_groups(built) == 2
    one = OneApi(cache_dir=built, mode="local")
    eids = one.search(subject="KS007")
    assert len(eids) == 2
    assert one.list_datasets(eids[0]) == [
        "alf/_ibl_trials.choice.npy",
        "alf/probe00/spikes.times.npy",
    ]


def test_nothing_new_writes_nothing(built):
    mtime = (built / "datasets.pqt").stat().st_mtime_ns
    summary = update_tables(built, sessions=[], rescan="changed")
    assert summary == cache.UpdateSummary(0, 0, 0, 0, 0, len(load_tables(built).datasets), 0)
    assert (built / "datasets.pqt").stat().st_mtime_ns == mtime


def test_hashes_are_kept_up_with(built):
    make_parquet_db(built, hash_files=True)
    _add_sessions(built)
    summary = update_tables(built, sessions=NEW)  # hash_files=None: as the table does
    assert summary.files_hashed == 4 and _row_groups(built) == 2
    datasets = load_tables(built).datasets
    assert (datasets["hash"].str.len() == 32).all()


@pytest.mark.parametrize(
    "change",
    ["known session", "removed session", "edited tables", "rescan all", "old state files"],
)
def test_other_changes_rewrite_the_tables(built, tmp_path, change):
    _add_sessions(built, NEW[:1])
    given = [NEW[0]]
    rescan = "changed"
    if change == "known session":
        given = ["KS005/2019-04-01/001", NEW[0]]
    elif change == "removed session":
        given = ["KS005/2019-04-01/001", NEW[0]]
        for path in sorted((built / given[0]).rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        (built / given[0]).rmdir()
    elif change == "edited tables":
        tables = load_tables(built)
        cache.save_tables(cache.CacheTables(tables.sessions, tables.datasets[::-1]), built)
    elif change == "rescan all":
        given = None
        rescan = "all"
    else:  # tables whose state files come from before footers were fingerprinted
        for name in (cache.files.STATE_FILE, cache.files.DIRS_FILE):
            table = pq.read_table(built / name)
            meta = json.loads(table.schema.metadata[b"one_metadata"])
            del meta[cache.state.FOOTER_KEY]
            cache.files.write_atomic(table, built / name, meta)
    update_tables(built, sessions=given, rescan=rescan)
    assert _row_groups(built) == 1
    _assert_equals_full_build(built, tmp_path)


def test_many_appends_are_compacted(built, tmp_path, monkeypatch):
    monkeypatch.setattr(cache.update, "_MAX_ROW_GROUPS", 3)
    sessions = [f"KS008/2019-06-0{day}/001" for day in range(1, 5)]
    for i, session in enumerate(sessions):
        _add_sessions(built, [session])
        update_tables(built, sessions=[session])
        assert _row_groups(built) == [2, 3, 1, 2][i]
    _assert_equals_full_build(built, tmp_path)


def test_a_failed_append_leaves_the_tables_as_they_were(built, tmp_path, monkeypatch):
    before = {p.name: p.read_bytes() for p in built.glob("*.p*") if p.is_file()}
    _add_sessions(built)

    def fails(*args):
        raise OSError("disk full")

    monkeypatch.setattr(parquet_append, "append", fails)
    with pytest.raises(OSError, match="disk full"):
        update_tables(built, sessions=NEW)
    assert {p.name: p.read_bytes() for p in built.glob("*.p*") if p.is_file()} == before
    assert not list(built.glob(".*.tmp"))
    monkeypatch.undo()
    update_tables(built, sessions=NEW)
    _assert_equals_full_build(built, tmp_path)
