"""Incremental updates of the cache tables: given sessions, folder mtimes, reused ids."""

import shutil
import uuid

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from one_flows import cache
from one_flows.cache import dataset_id, load_tables, make_parquet_db, update_tables
from one_flows.cache.ids import ID_NAMESPACE
from one_flows.one import One

from .conftest import age

KS = "KS005/2019-04-01/001"
NEW = "KS007/2019-05-01/001"


@given(st.text(), st.text())
def test_ids_are_uuid3s_that_one_api_accepts(key, rel_path):
    from one.alf.spec import is_uuid, is_uuid_string

    did, eid = dataset_id(key, rel_path), cache.session_id(key)
    assert did == str(uuid.uuid3(ID_NAMESPACE, f"{key}/{rel_path}"))
    assert eid == str(uuid.uuid3(ID_NAMESPACE, key))
    assert is_uuid(did) and is_uuid(eid)  # versions 4 and 3 only
    assert is_uuid_string(did) and is_uuid_string(eid)


def _built(alf_tree):
    age(alf_tree)
    make_parquet_db(alf_tree)
    return load_tables(alf_tree)


def _paths(root):
    tables = load_tables(root)
    return set(tables.datasets["rel_path"]), tables


def _add(root, rel):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.arange(3))


def test_given_sessions_are_the_only_ones_rescanned(alf_tree):
    before = _built(alf_tree)
    _add(alf_tree, f"{NEW}/alf/_ibl_trials.choice.npy")
    _add(alf_tree, f"{KS}/alf/_ibl_trials.novel.npy")
    summary = update_tables(alf_tree, sessions=[NEW])
    assert (summary.sessions_added, summary.datasets_added) == (1, 1)
    assert summary.datasets_unchanged == len(before.datasets)
    rel_paths, _ = _paths(alf_tree)
    assert "alf/_ibl_trials.novel.npy" not in rel_paths  # KS005 was not looked at
    summary = update_tables(alf_tree, sessions=[alf_tree / KS, alf_tree / "KS006/2019-04-01/001"])
    assert (summary.sessions_added, summary.datasets_added, summary.datasets_changed) == (0, 1, 0)
    assert "alf/_ibl_trials.novel.npy" in _paths(alf_tree)[0]
    shutil.rmtree(alf_tree / NEW)
    summary = update_tables(alf_tree, sessions=[NEW])
    assert (summary.sessions_removed, summary.datasets_removed) == (1, 1)
    assert len(load_tables(alf_tree).sessions) == len(before.sessions)


def test_given_sessions_must_be_session_folders_under_the_root(alf_tree, tmp_path):
    _built(alf_tree)
    with pytest.raises(ValueError, match="not a session folder"):
        update_tables(alf_tree, sessions=["KS005"])
    with pytest.raises(ValueError, match="not under"):
        update_tables(alf_tree, sessions=[tmp_path / "elsewhere/KS005/2019-04-01/001"])
    with pytest.raises(TypeError, match="list"):
        update_tables(alf_tree, sessions=KS)
    with pytest.raises(ValueError, match="rescan"):
        update_tables(alf_tree, rescan="some")


def test_changed_folders_are_rescanned_but_in_place_rewrites_are_not_seen(alf_tree, monkeypatch):
    _built(alf_tree)
    _add(alf_tree, f"{KS}/alf/_ibl_trials.novel.npy")  # changes alf/'s mtime
    rewritten = alf_tree / "KS006/2019-04-01/001/alf/_ibl_trials.choice.npy"
    rewritten.write_bytes(rewritten.read_bytes() * 2)  # same name: its folder's mtime stays
    _add(alf_tree, f"{NEW}/alf/_ibl_trials.choice.npy")
    scanned = []
    real_scan = cache.build.scan_sessions

    def spy(sessions):
        scanned.extend(s.name for s in sessions)
        return real_scan(sessions)

    monkeypatch.setattr(cache.build, "scan_sessions", spy)
    summary = update_tables(alf_tree, rescan="changed")
    assert sorted(scanned) == [KS, NEW]
    assert (summary.sessions_added, summary.datasets_added, summary.datasets_changed) == (1, 2, 0)
    monkeypatch.undo()
    sizes = load_tables(alf_tree).datasets.set_index("rel_path")["file_size"]
    stale = sizes.loc["alf/_ibl_trials.choice.npy"].max()
    assert stale < rewritten.stat().st_size  # the rewrite was not seen...
    summary = update_tables(alf_tree, rescan="all")
    assert (summary.datasets_changed, summary.datasets_added) == (1, 0)  # ...until all rescanned
    sizes = load_tables(alf_tree).datasets.set_index("rel_path")["file_size"]
    assert sizes.loc["alf/_ibl_trials.choice.npy"].max() == rewritten.stat().st_size


def test_recently_modified_folders_are_rescanned_next_time(alf_tree, monkeypatch):
    make_parquet_db(alf_tree)  # folders just written: their mtimes may not show a change yet
    scanned = []
    real_scan = cache.build.scan_sessions
    monkeypatch.setattr(cache.build, "scan_sessions", lambda s: scanned.extend(s) or real_scan(s))
    update_tables(alf_tree, rescan="changed")
    assert len(scanned) == len(load_tables(alf_tree).sessions)


def test_reused_ids_equal_recomputed_ids(alf_tree, tmp_path, monkeypatch):
    _built(alf_tree)
    _add(alf_tree, f"{NEW}/alf/_ibl_trials.choice.npy")
    computed = []
    real_id = cache.dataset_id
    monkeypatch.setattr(cache.build, "dataset_id", lambda k, r: computed.append(r) or real_id(k, r))
    update_tables(alf_tree, rescan="all")
    assert computed == ["alf/_ibl_trials.choice.npy"]  # only the new file's id is computed
    monkeypatch.undo()
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    make_parquet_db(alf_tree, fresh)
    updated, rebuilt = load_tables(alf_tree), load_tables(fresh)
    for name in ("sessions", "datasets"):
        left = getattr(updated, name).sort_index()
        pd.testing.assert_frame_equal(left, getattr(rebuilt, name).sort_index())


def test_tables_saved_back_keep_their_state(alf_tree, monkeypatch):
    tables = _built(alf_tree)
    reordered = tables.datasets.iloc[::-1]
    cache.save_tables(cache.CacheTables(tables.sessions, reordered, tables.metadata), alf_tree)
    _add(alf_tree, f"{KS}/alf/_ibl_trials.novel.npy")
    monkeypatch.setattr(cache.build, "hash_files", pytest.fail)
    summary = update_tables(alf_tree, hash_files=False, rescan="all")
    assert summary.datasets_unchanged == len(tables.datasets) and summary.datasets_added == 1


def test_queries_agree_on_tables_whose_sessions_are_not_contiguous(alf_tree):
    make_parquet_db(alf_tree)
    tables = load_tables(alf_tree)
    shuffled = tables.datasets.sample(frac=1, random_state=0)
    assert not shuffled.index.get_level_values("eid").is_monotonic_increasing
    ordered = One(alf_tree)
    mixed = One(alf_tree, tables=cache.CacheTables(tables.sessions, shuffled))
    for eid in tables.sessions.index:
        assert mixed.list_datasets(eid) == ordered.list_datasets(eid)
        assert mixed.list_datasets(eid, qc="PASS") == ordered.list_datasets(eid, qc="PASS")
        left = mixed.list_datasets(eid, details=True).sort_index()
        pd.testing.assert_frame_equal(left, ordered.list_datasets(eid, details=True).sort_index())
