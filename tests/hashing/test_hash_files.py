"""hash_files: per-file outcomes in input order, parallel reads, change detection and progress."""

import collections
import errno
import hashlib
import io
import os
import random
import threading
from pathlib import Path

import pytest

from one_flows import hashing
from one_flows.hashing import (
    ABOVE_MAX_MD5_SIZE,
    CHANGED,
    CHUNK_SIZE,
    MISSING,
    NOT_REGULAR,
    DigestCache,
    FileHash,
    hash_files,
)


def digest(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_results_align_with_input_order(make_file, tmp_path):
    rng = random.Random(7)
    files = [make_file(size=rng.randrange(0, 3 * CHUNK_SIZE)) for _ in range(30)]
    inputs = [*files, *files[:5], tmp_path / "absent.bin"]
    rng.shuffle(inputs)
    results = hash_files(inputs, workers=4, chunk_size=64 * 1024)
    assert [r.path for r in results] == inputs
    for path, result in zip(inputs, results, strict=True):
        if path.exists():
            assert (result.md5, result.size) == (digest(path), path.stat().st_size)
        else:
            assert (result.md5, result.reason) == (None, MISSING)
    assert hash_files(inputs, workers=1, chunk_size=64 * 1024) == results


def test_files_are_read_in_parallel_threads(make_file, monkeypatch):
    # Both files can only be opened if two threads are inside open() at the same time.
    barrier = threading.Barrier(2, timeout=30)

    def open_together(*args, **kwargs):
        barrier.wait()
        return open(*args, **kwargs)

    monkeypatch.setattr(hashing, "open", open_together, raising=False)
    first, second = make_file(size=10), make_file(size=20)
    assert [r.md5 for r in hash_files([first, second], workers=2)] == [
        digest(first),
        digest(second),
    ]


def test_accepts_any_iterable_of_str_or_paths(make_file):
    paths = [make_file(b"a"), make_file(b"b")]
    results = hash_files(str(p) for p in paths)
    assert [r.path for r in results] == paths
    assert [r.md5 for r in results] == [
        hashlib.md5(b"a").hexdigest(),
        hashlib.md5(b"b").hexdigest(),
    ]


def test_empty_input_gives_empty_list():
    assert hash_files([]) == []


def test_max_md5_size_hashes_only_smaller_files_like_one_api(make_file):
    # ONE-api's register_files hashes a file only when its size < max_md5_size.
    limit = 1000
    below, at_limit, empty = make_file(size=limit - 1), make_file(size=limit), make_file(b"")
    results = hash_files([below, at_limit, empty], max_md5_size=limit)
    assert results[0] == FileHash(below, limit - 1, digest(below))
    assert results[1] == FileHash(at_limit, limit, None, ABOVE_MAX_MD5_SIZE)
    assert results[2].md5 == hashlib.md5(b"").hexdigest()
    assert [r.ok for r in hash_files([empty, below], max_md5_size=1)] == [True, False]
    assert [r.ok for r in hash_files([empty], max_md5_size=0)] == [False]


def test_missing_file_and_broken_symlink_are_missing(tmp_path, make_file):
    broken = tmp_path / "broken.bin"
    broken.symlink_to(tmp_path / "nowhere.bin")
    good = make_file(b"ok")
    results = hash_files([tmp_path / "absent.bin", broken, good])
    assert results[:2] == [
        FileHash(tmp_path / "absent.bin", None, None, MISSING),
        FileHash(broken, None, None, MISSING),
    ]
    assert results[2].md5 == digest(good)


def test_symlink_is_hashed_as_its_target(make_file, tmp_path):
    target = make_file(size=5000)
    link = tmp_path / "link.bin"
    link.symlink_to(target)
    [result] = hash_files([link])
    assert (result.path, result.md5, result.size) == (link, digest(target), 5000)


def test_directories_and_fifos_are_not_regular_files(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    results = hash_files([tmp_path, fifo])
    assert [(r.md5, r.reason) for r in results] == [(None, NOT_REGULAR)] * 2


def test_unreadable_file_is_reported_and_the_batch_goes_on(make_file, monkeypatch):
    # Tests may run as root, where chmod 000 does not prevent reading: refuse the open instead.
    locked, fine = make_file(size=100), make_file(size=100)

    def guarded_open(path, *args, **kwargs):
        if Path(path) == locked:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return open(path, *args, **kwargs)

    monkeypatch.setattr(hashing, "open", guarded_open, raising=False)
    results = hash_files([locked, fine])
    assert results[0] == FileHash(locked, 100, None, "unreadable: Permission denied")
    assert results[1].md5 == digest(fine)


def test_read_error_midway_is_reported_as_unreadable(make_file, monkeypatch):
    path = make_file(size=3 * CHUNK_SIZE)

    class FailingFile(io.FileIO):
        def readinto(self, buffer):
            if self.tell() > 0:
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            return super().readinto(buffer)

    monkeypatch.setattr(hashing, "open", lambda p, *a, **k: FailingFile(p), raising=False)
    [result] = hash_files([path])
    assert result == FileHash(path, 3 * CHUNK_SIZE, None, "unreadable: Input/output error")


def append(path: Path) -> None:
    with path.open("ab") as f:
        f.write(b"more")


def rewrite_same_size(path: Path) -> None:
    with path.open("r+b") as f:
        f.write(b"\0" * 16)


def replace(path: Path) -> None:
    other = path.with_suffix(".new")
    other.write_bytes(path.read_bytes())
    os.utime(other, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns))
    os.replace(other, path)


@pytest.mark.parametrize("change", [append, rewrite_same_size, replace, Path.unlink])
def test_file_changed_while_hashing_gets_no_digest_and_is_not_cached(make_file, change):
    path = make_file(size=4 * CHUNK_SIZE)
    changed = []

    def change_once(done: int, total: int) -> None:
        if not changed:
            changed.append(done)
            change(path)

    cache = DigestCache(":memory:")
    [result] = hash_files([path], cache=cache, progress=change_once)
    assert (result.md5, result.reason, result.cached) == (None, CHANGED, False)
    assert changed == [CHUNK_SIZE]
    if path.exists():
        assert cache.get(path, path.stat()) is None
        assert hash_files([path], cache=cache)[0].md5 == digest(path)


def test_progress_counts_bytes_to_read_and_ends_at_total(make_file, tmp_path):
    sizes = [0, 1, CHUNK_SIZE, 3 * CHUNK_SIZE + 5]
    files = [make_file(size=s) for s in sizes]
    big = make_file(size=2 * CHUNK_SIZE)
    calls: list[tuple[int, int]] = []
    results = hash_files(
        [*files, big, tmp_path / "absent.bin"],
        workers=3,
        max_md5_size=CHUNK_SIZE * 2,
        progress=lambda done, total: calls.append((done, total)),
    )
    planned = sum(s for s in sizes if s < 2 * CHUNK_SIZE)
    assert [r.ok for r in results] == [True, True, True, False, False, False]
    assert {total for _, total in calls} == {planned}
    dones = [done for done, _ in calls]
    assert dones == sorted(dones)
    assert dones[-1] == planned


def test_progress_reaches_total_when_a_file_grows(make_file):
    path = make_file(size=2 * CHUNK_SIZE)
    calls: list[tuple[int, int]] = []

    def grow(done: int, total: int) -> None:
        if not calls:
            append(path)
        calls.append((done, total))

    hash_files([path], progress=grow)
    assert calls[-1] == (2 * CHUNK_SIZE, 2 * CHUNK_SIZE)


@pytest.mark.parametrize("workers", [1, 2])
def test_exception_in_progress_stops_the_batch_and_propagates(make_file, monkeypatch, workers):
    files = [make_file(size=4 * CHUNK_SIZE) for _ in range(6)]
    chunks_read: collections.Counter[str] = collections.Counter()

    class CountingFile(io.FileIO):
        def readinto(self, buffer):
            chunks_read[self.name] += 1
            return super().readinto(buffer)

    monkeypatch.setattr(hashing, "open", lambda p, *a, **k: CountingFile(p), raising=False)

    failures = []

    def fail_once(done: int, total: int) -> None:
        if not failures:
            failures.append(done)
            raise RuntimeError(f"progress bar broke at {done}")

    with pytest.raises(RuntimeError, match="progress bar broke"):
        hash_files(files, workers=workers, progress=fail_once)
    # Once the callback has failed, no file is read past its current chunk: at most one per file.
    assert chunks_read and max(chunks_read.values()) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"workers": 0}, "workers"),
        ({"workers": 2.0}, "workers"),
        ({"max_md5_size": -1}, "max_md5_size"),
        ({"chunk_size": 0}, "chunk_size"),
    ],
)
def test_bad_arguments_are_rejected(make_file, kwargs, message):
    with pytest.raises(ValueError, match=message):
        hash_files([make_file(b"x")], **kwargs)
