"""LocalTarget keeps the cache tables in memory while the files on disk are unchanged."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import one_flows.targets.local as local
from one_flows.cache import CacheTables, load_tables, save_tables
from one_flows.cache.files import write_parquet_atomic
from one_flows.targets import FileBatch, LocalTarget, TargetUnavailable

RECORD = {
    "subject": "algernon",
    "start_time": "2026-01-03T10:00:00",
    "number": 1,
    "lab": "cortexlab",
    "task_protocol": "aaaa",
}


def batch(*names: str, subject: str = "algernon") -> FileBatch:
    """A batch of files of the session of ``RECORD`` (or the same day of ``subject``)."""
    n = len(names)
    return FileBatch(
        f"{subject}/2026-01-03/001", list(names), ["0" * 32] * n, [10] * n, [None] * n, "cortexlab"
    )


def on_disk(cache_dir: Path, eid: str) -> set[str]:
    """The relative paths of the datasets of ``eid`` in the tables on disk."""
    datasets = load_tables(cache_dir).datasets
    if eid not in datasets.index.get_level_values("eid"):
        return set()
    return set(datasets.xs(eid, level="eid")["rel_path"])


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The folders LocalTarget read tables from, in order."""
    calls: list[Path] = []

    def counting(cache_dir: Path, **kwargs: bool) -> CacheTables:
        calls.append(Path(cache_dir))
        return load_tables(cache_dir, **kwargs)

    monkeypatch.setattr(local, "load_tables", counting)
    return calls


def test_local_tables_are_read_once(tmp_path, loads):
    target = LocalTarget(tmp_path)

    eid = target.create_session(RECORD)["id"]
    target.register_files(batch("alf/spikes.times.npy"))
    target.update_session(eid, {"task_protocol": "bbbb"})
    target.register_files(batch("alf/spikes.amps.npy"))
    held = target.session_datasets(eid)
    (found,) = target.find_sessions("algernon", "2026-01-03", 1)

    # The one read finds no files and gives empty tables; every later call uses memory.
    assert loads == [tmp_path]
    assert {d.rel_path for d in held} == {"alf/spikes.times.npy", "alf/spikes.amps.npy"}
    assert found["task_protocol"] == "bbbb"

    other = LocalTarget(tmp_path)
    other.find_sessions("algernon", "2026-01-03", 1)
    other.register_files(batch("alf/spikes.depths.npy"))
    other.session_datasets(eid)
    assert loads == [tmp_path, tmp_path]


def test_local_tables_changed_by_others_are_seen(tmp_path, loads):
    first = LocalTarget(tmp_path)
    eid = first.create_session(RECORD)["id"]
    first.register_files(batch("alf/spikes.times.npy"))

    second = LocalTarget(tmp_path)
    other_eid = second.create_session(RECORD | {"subject": "bob"})["id"]
    second.register_files(batch("alf/spikes.amps.npy", subject="bob"))

    (found,) = first.find_sessions("bob", "2026-01-03", 1)
    assert found["id"] == other_eid
    assert [d.rel_path for d in first.session_datasets(other_eid)] == ["alf/spikes.amps.npy"]

    # A rewrite by save_tables of a row, to a value of the same length, is seen as well.
    tables = load_tables(tmp_path)
    tables.sessions.loc[eid, "task_protocol"] = "cccc"
    save_tables(tables, tmp_path)
    (found,) = first.find_sessions("algernon", "2026-01-03", 1)
    assert found["task_protocol"] == "cccc"
    assert first.find_sessions("algernon", "2026-01-03", 1) == [found]


def test_local_failed_saves_leave_no_phantom_rows(tmp_path, monkeypatch):
    target = LocalTarget(tmp_path)
    eid = target.create_session(RECORD)["id"]
    target.register_files(batch("alf/spikes.times.npy"))

    def failing(tables: CacheTables, out_dir: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(local, "save_tables", failing)
    with pytest.raises(TargetUnavailable, match="disk full"):
        target.create_session(RECORD | {"subject": "bob"})
    with pytest.raises(TargetUnavailable, match="disk full"):
        target.update_session(eid, {"task_protocol": "bbbb", "projects": ["p"]})
    with pytest.raises(TargetUnavailable, match="disk full"):
        target.register_files(batch("alf/spikes.amps.npy"))

    assert target.find_sessions("bob", "2026-01-03", 1) == []
    (found,) = target.find_sessions("algernon", "2026-01-03", 1)
    assert (found["task_protocol"], found["projects"]) == ("aaaa", [])
    assert [d.rel_path for d in target.session_datasets(eid)] == ["alf/spikes.times.npy"]

    monkeypatch.setattr(local, "save_tables", save_tables)
    target.register_files(batch("alf/spikes.amps.npy"))
    target.update_session(eid, {"task_protocol": "bbbb"})
    expected = {"alf/spikes.times.npy", "alf/spikes.amps.npy"}
    assert {d.rel_path for d in target.session_datasets(eid)} == expected
    assert on_disk(tmp_path, eid) == expected
    assert load_tables(tmp_path).sessions.loc[eid, "task_protocol"] == "bbbb"


def test_local_half_saved_tables_are_read_again(tmp_path, monkeypatch):
    target = LocalTarget(tmp_path)
    eid = target.create_session(RECORD)["id"]
    target.register_files(batch("alf/spikes.times.npy"))

    def datasets_only(tables: CacheTables, out_dir: Path) -> None:
        write_parquet_atomic(tables.datasets, Path(out_dir) / "datasets.pqt", {})
        raise OSError("disk full")

    monkeypatch.setattr(local, "save_tables", datasets_only)
    with pytest.raises(TargetUnavailable, match="disk full"):
        target.register_files(batch("alf/spikes.amps.npy"))

    # What the instance holds is what the files hold, not what it held before the failure.
    held = {d.rel_path for d in target.session_datasets(eid)}
    assert held == on_disk(tmp_path, eid) == {"alf/spikes.times.npy", "alf/spikes.amps.npy"}


def test_local_tables_held_equal_the_files(tmp_path):
    target = LocalTarget(tmp_path)
    eid = target.create_session(RECORD | {"projects": ["p"]})["id"]
    target.register_files(batch("alf/spikes.times.npy", "alf/spikes.amps.npy"))
    target.create_session(RECORD | {"number": 2})
    target.register_files(batch("alf/spikes.times.npy"))
    target.update_session(eid, {"lab": "hoferlab", "projects": ["p", "q"]})

    with target._lock:
        held = target._tables()
    disk = load_tables(tmp_path)
    pd.testing.assert_frame_equal(held.sessions, disk.sessions)
    pd.testing.assert_frame_equal(held.datasets, disk.datasets)
    assert held.metadata == disk.metadata
