"""DigestCache: cached files are not read again, changed ones are, in and across processes."""

import hashlib
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from one_flows import hashing
from one_flows.hashing import DigestCache, hash_files


def digest(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def forbid_reads(monkeypatch):
    """Return a function after which any file read by one_flows.hashing fails the test."""

    def refuse(path, *args, **kwargs):
        raise AssertionError(f"{path} was read although it is cached")

    return lambda: monkeypatch.setattr(hashing, "open", refuse, raising=False)


def test_unchanged_file_is_answered_from_cache_without_reading(make_file, forbid_reads):
    path = make_file(size=3000)
    cache = DigestCache(":memory:")
    [first] = hash_files([path], cache=cache)
    assert (first.md5, first.cached) == (digest(path), False)
    forbid_reads()
    [second] = hash_files([path], cache=cache)
    assert (second.md5, second.size, second.cached) == (first.md5, 3000, True)


def rewrite_same_size_and_mtime(path: Path) -> None:
    before = path.stat()
    path.write_bytes(bytes(before.st_size))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def grow(path: Path) -> None:
    mtime = path.stat().st_mtime_ns
    with path.open("ab") as f:
        f.write(b"x")
    os.utime(path, ns=(mtime, mtime))


def touch_older(path: Path) -> None:
    mtime = path.stat().st_mtime_ns - 10**9
    os.utime(path, ns=(mtime, mtime))


def replace_keeping_size_and_mtime(path: Path) -> None:
    before = path.stat()
    other = path.with_suffix(".new")
    other.write_bytes(bytes(before.st_size))
    os.utime(other, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(other, path)


@pytest.mark.parametrize("change", [grow, touch_older, replace_keeping_size_and_mtime])
def test_changed_file_misses_and_is_hashed_again(make_file, change):
    path = make_file(size=3000)
    cache = DigestCache(":memory:")
    hash_files([path], cache=cache)
    change(path)
    [again] = hash_files([path], cache=cache)
    assert (again.md5, again.cached) == (digest(path), False)
    assert hash_files([path], cache=cache)[0].cached


@pytest.mark.parametrize("change", [rewrite_same_size_and_mtime, "touch -r"])
def test_same_size_edit_whose_mtime_was_put_back_misses(make_file, tmp_path, change):
    """An edit that keeps the size and restores the mtime changes the ctime, which no program
    can set: the cache misses (it reported the old md5 as "unchanged" before ctime was in the
    key). What remains unseen is in `one_flows.hashing`'s documentation."""
    path = make_file(size=3000)
    before = path.stat()
    cache = DigestCache(":memory:")
    [first] = hash_files([path], cache=cache)
    if change == "touch -r":
        reference = tmp_path / "reference"
        reference.touch()
        subprocess.run(["touch", "-r", str(path), str(reference)], check=True)
        path.write_bytes(bytes(3000))
        subprocess.run(["touch", "-r", str(reference), str(path)], check=True)
    else:
        change(path)
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        3000,
        before.st_mtime_ns,
        before.st_ino,
    )
    [again] = hash_files([path], cache=cache)
    assert (again.md5, again.cached) == (digest(path), False) and again.md5 != first.md5


def test_a_cache_written_before_ctime_was_in_the_key_is_migrated(make_file, tmp_path):
    """Rows of the old schema have no ctime: they miss once and are replaced."""
    path = make_file(size=100)
    cache_file = tmp_path / "old.sqlite"
    st = path.stat()
    with sqlite3.connect(cache_file) as db:
        db.execute(
            "CREATE TABLE digests (path BLOB PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER"
            " NOT NULL, inode INTEGER NOT NULL, device INTEGER NOT NULL, md5 TEXT NOT NULL)"
            " WITHOUT ROWID"
        )
        db.execute("PRAGMA user_version=1")
        db.execute(
            "INSERT INTO digests VALUES (?, ?, ?, ?, ?, ?)",
            (os.fsencode(path), st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev, "0" * 32),
        )
    for _ in range(2):  # opening a migrated file again leaves it as it is
        with DigestCache(cache_file) as cache:
            assert cache.get(path, path.stat()) is None
    with DigestCache(cache_file) as cache:
        [result] = hash_files([path], cache=cache)
        assert (result.md5, result.cached) == (digest(path), False)
        assert hash_files([path], cache=cache)[0].cached


def test_recently_modified_file_is_hashed_but_not_cached(tmp_path, age):
    path = tmp_path / "fresh.bin"
    path.write_bytes(b"just written")
    cache = DigestCache(":memory:")
    assert hash_files([path], cache=cache)[0].md5 == digest(path)
    assert cache.get(path, path.stat()) is None
    age(path)
    hash_files([path], cache=cache)
    assert cache.get(path, path.stat()) == digest(path)


def test_cache_persists_across_instances(make_file, tmp_path, forbid_reads):
    path = make_file(size=100)
    cache_file = tmp_path / "nested" / "cache" / "digests.sqlite"
    with DigestCache(cache_file) as cache:
        hash_files([path], cache=cache)
    forbid_reads()
    with DigestCache(cache_file) as reopened:
        [result] = hash_files([path], cache=reopened)
    assert (result.md5, result.cached) == (digest(path), True)
    with sqlite3.connect(cache_file) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_relative_and_absolute_paths_share_entries(make_file, monkeypatch, forbid_reads):
    path = make_file(size=10)
    forbid_reads()
    cache = DigestCache(":memory:")
    cache.put(path, path.stat(), digest(path))
    monkeypatch.chdir(path.parent)
    [result] = hash_files([path.name], cache=cache)
    assert (result.path, result.md5, result.cached) == (Path(path.name), digest(path), True)


def test_symlink_entry_is_keyed_by_the_link_path_and_target_identity(make_file, tmp_path):
    first, second = make_file(size=50), make_file(size=50)
    link = tmp_path / "link.bin"
    link.symlink_to(first)
    cache = DigestCache(":memory:")
    hash_files([link], cache=cache)
    link.unlink()
    link.symlink_to(second)
    [result] = hash_files([link], cache=cache)
    assert (result.md5, result.cached) == (digest(second), False)


def test_non_utf8_file_names_are_cached(tmp_path, age):
    name = os.fsdecode(b"caf\xe9.bin")
    path = tmp_path / name
    path.write_bytes(b"latin-1 name")
    age(path)
    cache = DigestCache(":memory:")
    hash_files([path], cache=cache)
    assert cache.get(path, path.stat()) == digest(path)


def test_get_and_put_match_on_every_key_field():
    cache = DigestCache(":memory:")
    st = SimpleNamespace(st_size=1, st_mtime_ns=2, st_ino=2**64 - 1, st_dev=4, st_ctime_ns=5)
    cache.put("/data/a.bin", st, "0" * 32)
    assert cache.get("/data/a.bin", st) == "0" * 32
    assert cache.get("/data/b.bin", st) is None
    for field in vars(st):
        other = SimpleNamespace(**{**vars(st), field: getattr(st, field) - 1})
        assert cache.get("/data/a.bin", other) is None
    cache.put("/data/a.bin", SimpleNamespace(**{**vars(st), "st_size": 9}), "1" * 32)
    assert cache.get("/data/a.bin", st) is None


@pytest.mark.parametrize("bad", ["", "A" * 32, "0" * 31, None])
def test_put_rejects_malformed_digests(bad):
    with pytest.raises(ValueError, match="32 lowercase hex"):
        DigestCache(":memory:").put(
            "/a", SimpleNamespace(st_size=1, st_mtime_ns=1, st_ino=1, st_dev=1, st_ctime_ns=1), bad
        )


def test_file_that_is_not_a_cache_is_rejected_clearly(tmp_path):
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not an sqlite database" * 100)
    with pytest.raises(ValueError, match=r"junk\.sqlite: file is not a database"):
        DigestCache(junk)


def test_cache_of_another_schema_version_is_rejected(tmp_path):
    cache_file = tmp_path / "digests.sqlite"
    DigestCache(cache_file).close()
    with sqlite3.connect(cache_file) as db:
        db.execute("PRAGMA user_version=99")
    with pytest.raises(ValueError, match="schema version 99"):
        DigestCache(cache_file)


def test_many_threads_share_one_cache(make_file, tmp_path):
    files = [make_file(size=i * 100) for i in range(60)]
    with DigestCache(tmp_path / "digests.sqlite") as cache:
        first = hash_files(files, workers=8, cache=cache)
        assert not any(r.cached for r in first)
        second = hash_files(files, workers=8, cache=cache)
    assert all(r.cached for r in second)
    assert [r.md5 for r in second] == [r.md5 for r in first] == [digest(f) for f in files]


WRITER = textwrap.dedent(
    """
    import sys
    from types import SimpleNamespace
    from one_flows.hashing import DigestCache

    cache_file, tag = sys.argv[1], sys.argv[2]
    cache = DigestCache(cache_file)
    for i in range(300):
        st = SimpleNamespace(st_size=i, st_mtime_ns=i, st_ino=i, st_dev=1, st_ctime_ns=i)
        cache.put(f"/{tag}/{i}", st, f"{i:032x}")
        cache.put(f"/shared/{i}", st, f"{i:032x}")
        assert cache.get(f"/{tag}/{i}", st) == f"{i:032x}"
    """
)


def test_concurrent_processes_share_one_cache_file(tmp_path):
    cache_file = tmp_path / "digests.sqlite"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(cache_file), tag], stderr=subprocess.PIPE
        )
        for tag in ("left", "right")
    ]
    for writer in writers:
        _, stderr = writer.communicate(timeout=120)
        assert writer.returncode == 0, stderr.decode()
    with sqlite3.connect(cache_file) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with DigestCache(cache_file) as cache:
        for i in range(300):
            st = SimpleNamespace(st_size=i, st_mtime_ns=i, st_ino=i, st_dev=1, st_ctime_ns=i)
            for tag in ("left", "right", "shared"):
                assert cache.get(f"/{tag}/{i}", st) == f"{i:032x}"


def test_opening_waits_while_another_process_switches_the_file_to_wal(tmp_path, monkeypatch):
    """SQLite answers "database is locked" at once, without its busy timeout, when two processes
    switch a new file to write-ahead logging together: the opener tries again."""
    real_connect = sqlite3.connect
    refusals = []

    class Busy:
        def __init__(self, db):
            self.db = db

        def execute(self, sql, *args):
            if sql == "PRAGMA journal_mode=WAL" and len(refusals) < 2:
                refusals.append(sql)
                raise sqlite3.OperationalError("database is locked")
            return self.db.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self.db, name)

    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: Busy(real_connect(*a, **k)))
    with DigestCache(tmp_path / "digests.sqlite", timeout=5) as cache:
        assert len(refusals) == 2
        assert cache.get(tmp_path / "nothing", os.stat(tmp_path)) is None
    monkeypatch.undo()
    mode = real_connect(tmp_path / "digests.sqlite").execute("PRAGMA journal_mode").fetchone()
    assert mode == ("wal",)
