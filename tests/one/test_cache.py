"""Cache tables: ONE-api's format, stable ids, hashing, incremental updates, atomic writes."""

import hashlib
import json
import os
import shutil
import warnings

import numpy as np
import one.alf.cache
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from one_flows import cache
from one_flows.cache import (
    CacheTables,
    load_tables,
    make_parquet_db,
    save_tables,
    session_id,
    update_tables,
)
from one_flows.cache.tables import QC_TYPE


def _normalised_schema(path):
    """Field name → arrow type, with string and large_string taken as the same."""
    schema = pq.read_schema(path)
    return {f.name: pa.string() if f.type == pa.large_string() else f.type for f in schema}


def test_tables_have_one_api_schema(tmp_path, tree_builder):
    ours = tree_builder(tmp_path / "ours")
    theirs = tree_builder(tmp_path / "theirs")
    make_parquet_db(ours)
    one.alf.cache.make_parquet_db(theirs)
    for name in ("sessions.pqt", "datasets.pqt"):
        assert _normalised_schema(ours / name) == _normalised_schema(theirs / name)
        meta = pq.read_schema(ours / name).metadata
        assert set(json.loads(meta[b"one_metadata"])) >= {"date_created", "origin"}
    # ONE-api's reader gives identical dtypes and index names for both
    mine, expected = one.alf.cache.load_tables(ours), one.alf.cache.load_tables(theirs)
    for name in ("sessions", "datasets"):
        assert mine[name].index.names == expected[name].index.names
        pd.testing.assert_series_equal(mine[name].dtypes, expected[name].dtypes)
    # Same sessions and relative paths; ids differ only in how they are drawn
    key = ["lab", "subject", "date", "number"]
    assert mine["sessions"][key].sort_values(key).values.tolist() == (
        expected["sessions"][key].sort_values(key).values.tolist()
    )
    assert _path_sizes(mine["datasets"]) == _path_sizes(expected["datasets"])


def _path_sizes(datasets):
    return sorted(zip(datasets["rel_path"], datasets["file_size"].astype(int), strict=True))


def test_we_read_one_api_tables(tmp_path, tree_builder):
    root = tree_builder(tmp_path)
    one.alf.cache.make_parquet_db(root)
    tables = load_tables(root)
    expected = one.alf.cache.load_tables(root)
    assert sorted(tables.sessions.index) == sorted(map(str, expected["sessions"].index))
    assert sorted(tables.datasets.index) == sorted(
        (str(e), str(i)) for e, i in expected["datasets"].index
    )
    assert tables.metadata["datasets"]["origin"] == str(root.resolve())


def test_ids_are_stable_across_builds_and_locations(tmp_path, tree_builder):
    first = tree_builder(tmp_path / "a")
    make_parquet_db(first)
    before = load_tables(first)
    moved = tmp_path / "elsewhere" / "b"
    shutil.copytree(first, moved)
    (moved / "sessions.pqt").unlink()
    make_parquet_db(moved)
    after = load_tables(moved)
    assert before.sessions.index.tolist() == after.sessions.index.tolist()
    assert before.datasets.index.tolist() == after.datasets.index.tolist()
    # ids are uuid3s of the session key and relative path in the fixed namespace
    zm = before.sessions[before.sessions["subject"] == "ZM_1085"].index
    assert session_id("mainenlab/ZM_1085/2019-02-12/001") in zm
    # equal relative paths in different sessions still get different dataset ids
    assert before.datasets.index.get_level_values("id").is_unique


def test_hashes_are_md5_of_files(tmp_path, tree_builder):
    root = tree_builder(tmp_path)
    make_parquet_db(root, hash_files=True, workers=2, digest_cache=tmp_path / "digests.sqlite")
    tables = load_tables(root)
    paths = _paths(root, tables)
    assert len(paths) == len(tables.datasets)
    for path, digest in zip(paths, tables.datasets["hash"], strict=True):
        assert digest == hashlib.md5(path.read_bytes()).hexdigest()


def _paths(root, tables):
    ses = tables.sessions
    folders = {
        eid: root.joinpath(
            *([r.lab, "Subjects"] if r.lab else []), r.subject, str(r.date), f"{r.number:03d}"
        )
        for eid, r in ses.iterrows()
    }
    eids = tables.datasets.index.get_level_values("eid")
    return [folders[e] / p for e, p in zip(eids, tables.datasets["rel_path"], strict=True)]


def _sorted(frame):
    return frame.sort_index().reset_index()


def _assert_same_tables(a, b, ignore=()):
    for name in ("sessions", "datasets"):
        left = _sorted(getattr(a, name)).drop(columns=list(ignore), errors="ignore")
        right = _sorted(getattr(b, name)).drop(columns=list(ignore), errors="ignore")
        pd.testing.assert_frame_equal(left, right)


def test_incremental_update_equals_full_build(tmp_path, tree_builder, monkeypatch):
    root = tree_builder(tmp_path / "data")
    make_parquet_db(root, hash_files=True)
    # Mark some QC so we can see rows being kept
    tables = load_tables(root)
    tables.datasets["qc"] = pd.Categorical(["PASS"] * len(tables.datasets), dtype=QC_TYPE)
    save_tables(tables, root)

    # Change the tree: a new session, a rewritten file, a removed file, a removed session
    new = root / "KS007/2019-05-01/001/alf"
    new.mkdir(parents=True)
    np.save(new / "_ibl_trials.choice.npy", np.arange(3))
    changed = root / "KS005/2019-04-01/001/alf/_ibl_wheel.position.npy"
    np.save(changed, np.arange(10.0))
    os.utime(changed, ns=(1, 1))
    (root / "KS005/2019-04-01/001/alf/_ibl_wheel.timestamps.npy").unlink()
    shutil.rmtree(root / "KS005/2019-04-02")

    hashed = []
    real_hash = cache.build.hash_files

    def spy(paths, **kwargs):
        hashed.extend(paths)
        return real_hash(paths, **kwargs)

    monkeypatch.setattr(cache.build, "hash_files", spy)
    summary = update_tables(root)
    assert sorted(hashed) == sorted([str(new / "_ibl_trials.choice.npy"), str(changed)])
    assert summary == cache.UpdateSummary(
        sessions_added=1,
        sessions_removed=1,
        datasets_added=1,
        datasets_removed=2,
        datasets_changed=1,
        datasets_unchanged=len(tables.datasets) - 3,
        files_hashed=2,
    )
    updated = load_tables(root)
    qc = updated.datasets["qc"]
    assert (qc == "NOT_SET").sum() == 2  # only the new and the changed files lost their QC
    for name in ("sessions.pqt", "datasets.pqt", cache.files.STATE_FILE):
        (root / name).unlink()
    make_parquet_db(root, hash_files=True)
    _assert_same_tables(updated, load_tables(root), ignore=("qc",))


def test_update_without_changes_hashes_nothing(tmp_path, tree_builder, monkeypatch):
    root = tree_builder(tmp_path)
    make_parquet_db(root, hash_files=True)
    before = load_tables(root)
    monkeypatch.setattr(cache.build, "hash_files", pytest.fail)
    summary = update_tables(root)
    assert summary.files_hashed == 0 and summary.datasets_unchanged == len(before.datasets)
    _assert_same_tables(before, load_tables(root))


def test_update_without_tables_is_a_full_build(tmp_path, tree_builder):
    root = tree_builder(tmp_path / "a")
    summary = update_tables(root, tmp_path)
    assert summary.datasets_added == len(load_tables(tmp_path).datasets)
    make_parquet_db(root)
    _assert_same_tables(load_tables(tmp_path), load_tables(root))


def test_update_keeps_session_fields(tmp_path, tree_builder):
    root = tree_builder(tmp_path)
    make_parquet_db(root)
    tables = load_tables(root)
    tables.sessions["task_protocol"] = "_iblrig_tasks_ephysChoiceWorld6.4.2"
    tables.sessions["projects"] = "ibl_neuropixel_brainwide_01"
    save_tables(tables, root)
    update_tables(root)
    sessions = load_tables(root).sessions
    assert set(sessions["task_protocol"]) == {"_iblrig_tasks_ephysChoiceWorld6.4.2"}
    assert set(sessions["projects"]) == {"ibl_neuropixel_brainwide_01"}


def test_crash_while_writing_leaves_old_table(tmp_path, tree_builder, monkeypatch):
    root = tree_builder(tmp_path)
    make_parquet_db(root)
    before = (root / "datasets.pqt").read_bytes()
    np.save(root / "KS005/2019-04-01/001/alf/spikes.times.npy", np.arange(3))

    def half_write(table, where, **kwargs):
        where.write(b"PAR1 half a table")
        raise OSError("disk full")

    monkeypatch.setattr(cache.files.pq, "write_table", half_write)
    with pytest.raises(OSError, match="disk full"):
        update_tables(root)
    assert (root / "datasets.pqt").read_bytes() == before
    files = [*root.iterdir(), *(root / cache.files.STATE_DIR).iterdir()]
    assert sorted(p.relative_to(root).as_posix() for p in files if p.is_file()) == [
        cache.files.DIRS_FILE,
        cache.files.STATE_FILE,
        cache.files.LOCK_FILE,
        "datasets.pqt",
        "sessions.pqt",
    ]
    monkeypatch.undo()
    assert len(load_tables(root).datasets) == len(one.alf.cache.load_tables(root)["datasets"])


def test_tables_get_the_umask_permissions_and_keep_those_given_later(tmp_path, tree_builder):
    root = tree_builder(tmp_path)
    old = os.umask(0o022)
    try:
        make_parquet_db(root)
    finally:
        os.umask(old)
    tables = [root / "sessions.pqt", root / "datasets.pqt"]
    assert {p.stat().st_mode & 0o777 for p in tables} == {0o644}  # readable by the lab
    for path in tables:
        path.chmod(0o640)
    np.save(root / "KS005/2019-04-01/001/alf/spikes.times.npy", np.arange(3))
    update_tables(root)
    assert {p.stat().st_mode & 0o777 for p in tables} == {0o640}


def test_lab_fills_plain_sessions_and_rejects_conflicts(tmp_path, tree_builder):
    root = tree_builder(tmp_path / "data")
    with pytest.raises(ValueError, match="conflicts"):
        make_parquet_db(root, lab="otherlab")
    plain = tmp_path / "plain"
    shutil.copytree(root / "KS005", plain / "KS005")
    make_parquet_db(plain, lab="cortexlab")
    sessions = load_tables(plain).sessions
    assert set(sessions["lab"]) == {"cortexlab"}
    assert session_id("cortexlab/KS005/2019-04-01/001") in sessions.index


def test_hash_ids_false_matches_one_api(tmp_path, tree_builder):
    ours = tree_builder(tmp_path / "ours")
    theirs = tree_builder(tmp_path / "theirs")
    make_parquet_db(ours, hash_ids=False)
    one.alf.cache.make_parquet_db(theirs, hash_ids=False)
    mine, expected = load_tables(ours), load_tables(theirs)
    assert sorted(mine.sessions.index) == sorted(expected.sessions.index)
    assert sorted(mine.datasets.index) == sorted(expected.datasets.index)


def test_only_alf_files_in_valid_folders_are_indexed(tmp_path):
    session = tmp_path / "SW001/2021-01-01/001"
    flags = ["create_me.flag.done", "create_me.flag.quarantined", "create_me.flag.r-1.claimed"]
    invalid = ["raw data/c.d.npy", "alf/notes.txt", "#rev#/alf/e.f.npy"]
    for rel in ["alf/a.b.npy", "g.h.npy", *invalid, *flags]:
        (session / rel).parent.mkdir(parents=True, exist_ok=True)
        (session / rel).write_bytes(b"x")
    (tmp_path / "SW001/2021-02-30/001").mkdir(parents=True)  # impossible date: not a session
    make_parquet_db(tmp_path)
    tables = load_tables(tmp_path)
    assert sorted(tables.datasets["rel_path"]) == ["alf/a.b.npy", "g.h.npy"]
    assert tables.sessions["date"].astype(str).tolist() == ["2021-01-01"]


def test_empty_folder_warns_and_writes_empty_tables(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_parquet_db(tmp_path)
    assert any("No sessions" in str(w.message) for w in caught)
    tables = load_tables(tmp_path)
    assert tables.sessions.empty and tables.datasets.empty
    assert list(tables.datasets.columns) == list(cache.tables.DATASETS_COLUMNS)


def test_bad_input_is_reported(tmp_path, monkeypatch):
    with pytest.raises(NotADirectoryError, match="does not exist"):
        make_parquet_db(tmp_path / "missing")
    # A missing tables folder is reported before the folder is scanned, not after.
    scanned = []
    for module in (cache.build, cache.update):
        monkeypatch.setattr(module, "find_sessions", lambda *a: scanned.append(a) or [])
    for index in (make_parquet_db, update_tables):
        with pytest.raises(NotADirectoryError, match="Cache tables folder does not exist"):
            index(tmp_path, tmp_path / "missing")
    assert scanned == []
    with pytest.raises(ValueError, match="not a QC outcome"):
        cache.QC.validate("GREAT")


def test_empty_tables_keep_the_qc_categories_through_a_round_trip(tmp_path):
    save_tables(CacheTables.empty(), tmp_path)
    qc = load_tables(tmp_path).datasets["qc"]
    assert list(qc.dtype.categories) == list(QC_TYPE.categories)
    assert qc.dtype.ordered == QC_TYPE.ordered
