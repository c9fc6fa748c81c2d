"""MD5 digests of data files, fast, in flat memory, with a persistent cache.

Alyx stores the md5 of every registered file, and hashing is the dominant cost of registering
large recordings. This module guarantees:

- Memory: a file is streamed through one reusable buffer of ``chunk_size`` bytes per worker
  thread, so hashing a file of any size needs ``workers * chunk_size`` extra bytes, not more.
- Throughput: ``hash_files`` hashes files in parallel threads; hashlib releases the GIL while
  digesting large buffers, so N cores give close to N times the single-file throughput.
- One outcome per input: ``hash_files`` never stops a batch because one file is bad. Each input
  gets a ``FileHash`` in input order, carrying either an md5 or the reason there is none.
- No wrong digest: a file whose `StatIdentity` differs between the stat before and after
  reading it (appended to, rewritten, replaced or deleted meanwhile), or whose byte count
  differs from its size, is reported as ``CHANGED`` without a digest and is not cached.
- Cache correctness: ``DigestCache`` answers only for a file whose absolute path and
  `StatIdentity` (size, mtime_ns, inode, device and ctime_ns) all equal those recorded with the
  digest. The ctime is what the kernel sets on any change and no program can set, so an edit
  that keeps the size and puts the mtime back (``touch -r``, copy tools that keep times) misses
  too. A file modified less than ``RACY_WINDOW_NS`` before it was hashed is not cached, because
  a same-size rewrite within the filesystem's timestamp granularity would leave every key field
  unchanged.
- What the cache cannot see: a same-size edit that restores the ctime as well (changing the
  system clock, or writing the disk under the filesystem), and on filesystems without a ctime of
  their own (FAT, exFAT, some network mounts report the mtime as ctime) a same-size edit whose
  mtime was put back. ``hash_files`` without a cache always reads.
- Symbolic links are followed: the digest is the target's; a broken link is ``MISSING``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from one_flows._sqlite_files import SharedSQLiteFile

__all__ = [
    "ABOVE_MAX_MD5_SIZE",
    "CHANGED",
    "CHUNK_SIZE",
    "MISSING",
    "NOT_REGULAR",
    "RACY_WINDOW_NS",
    "UNREADABLE",
    "DigestCache",
    "FileHash",
    "ProgressCallback",
    "StatIdentity",
    "hash_files",
    "md5",
    "stat_identity",
]

CHUNK_SIZE = 1 << 20
"""Default read size in bytes: larger chunks are no faster, smaller ones cost per-call overhead."""

RACY_WINDOW_NS = 2_000_000_000
"""Files modified less than this many nanoseconds before hashing are hashed but not cached."""

ABOVE_MAX_MD5_SIZE = "above max_md5_size"
CHANGED = "changed while hashing"
MISSING = "missing"
NOT_REGULAR = "not a regular file"
UNREADABLE = "unreadable"

ProgressCallback = Callable[[int, int], None]
"""Called with (bytes hashed so far, total bytes to hash) of a ``hash_files`` batch."""

_MD5_HEX = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True, slots=True)
class FileHash:
    """The outcome of hashing one file.

    ``md5`` is the lowercase hex digest, or None with ``reason`` saying why: one of
    ``ABOVE_MAX_MD5_SIZE``, ``CHANGED``, ``MISSING``, ``NOT_REGULAR`` or
    ``f"{UNREADABLE}: <error text>"`` (e.g. ``"unreadable: Permission denied"``). ``size`` is
    the size in bytes when the file could be stat'ed, else None. ``cached`` is True when the
    digest came from a ``DigestCache``.
    """

    path: Path
    size: int | None
    md5: str | None
    reason: str | None = None
    cached: bool = False

    @property
    def ok(self) -> bool:
        """Whether a digest was obtained."""
        return self.md5 is not None


def _check_chunk_size(chunk_size: int) -> None:
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive number of bytes, got {chunk_size!r}")


def _advise_sequential(fd: int) -> None:
    # Doubles the kernel's readahead window on Linux: helps throughput on cold, spinning storage.
    # Only a hint, so a filesystem that refuses it does not make the file unreadable.
    if hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)


def _digest_stream(
    f: io.RawIOBase, buffer: memoryview, on_chunk: Callable[[int], None] | None = None
) -> tuple[str, int]:
    """Return the md5 hex digest of a binary unbuffered file object and the bytes read."""
    digest = hashlib.md5()
    total = 0
    while n := f.readinto(buffer):
        digest.update(buffer[:n])
        total += n
        if on_chunk is not None:
            on_chunk(n)
    return digest.hexdigest(), total


def md5(path: str | os.PathLike[str], *, chunk_size: int = CHUNK_SIZE) -> str:
    """Return the lowercase hex md5 of the file at ``path``, read ``chunk_size`` bytes at a time.

    Raises OSError (e.g. FileNotFoundError, IsADirectoryError) when the file cannot be read.
    Use ``hash_files`` for change detection, caching and per-file outcomes.
    """
    _check_chunk_size(chunk_size)
    with open(path, "rb", buffering=0) as f:
        _advise_sequential(f.fileno())
        return _digest_stream(f, memoryview(bytearray(chunk_size)))[0]


StatIdentity = tuple[int, int, int, int, int]
"""A file's (size, mtime_ns, inode, device, ctime_ns): what changes when its content may have."""


def stat_identity(st: os.stat_result) -> StatIdentity:
    """The `StatIdentity` of a stat result."""
    return st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev, st.st_ctime_ns


def _int64(value: int) -> int:
    """Map an unsigned 64-bit value (inode numbers may use all 64 bits) into SQLite's range."""
    return value - (1 << 64) if value >= 1 << 63 else value


class DigestCache(SharedSQLiteFile):
    """A persistent map from a file's identity to its md5, in an SQLite file.

    The identity is the absolute path and the `StatIdentity` (size, mtime_ns, inode, device,
    ctime_ns); ``get`` answers only when all of them match what ``put`` recorded, so a modified
    or replaced file misses. One row is kept per path. Instances are thread-safe, and several
    processes may share one cache file (write-ahead logging, waits up to ``timeout`` seconds for
    a lock). ``":memory:"`` gives a private cache that lives as long as the instance.

    Files written before the ctime was part of the key get the column added; their rows have
    none, so they miss once and are replaced.
    """

    KIND = "digest cache"
    TABLES = (
        "CREATE TABLE IF NOT EXISTS digests ("
        " path BLOB PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
        " inode INTEGER NOT NULL, device INTEGER NOT NULL, md5 TEXT NOT NULL, ctime_ns INTEGER"
        ") WITHOUT ROWID",
    )
    ADDED_COLUMNS = (("digests", "ctime_ns", "INTEGER"),)

    @staticmethod
    def _key(
        path: str | os.PathLike[str], st: os.stat_result
    ) -> tuple[bytes, int, int, int, int, int]:
        # Bytes, not str: POSIX paths need not be valid UTF-8.
        size, mtime_ns, inode, device, ctime_ns = stat_identity(st)
        absolute = os.fsencode(os.path.abspath(path))
        return absolute, size, mtime_ns, _int64(inode), _int64(device), ctime_ns

    def get(self, path: str | os.PathLike[str], st: os.stat_result) -> str | None:
        """Return the recorded md5 of ``path`` if ``st`` (its current stat) matches, else None."""
        with self._lock:
            row = self._db.execute(
                "SELECT md5 FROM digests WHERE path=? AND size=? AND mtime_ns=? AND inode=?"
                " AND device=? AND ctime_ns=?",
                self._key(path, st),
            ).fetchone()
        return None if row is None else row[0]

    def put(self, path: str | os.PathLike[str], st: os.stat_result, md5: str) -> None:
        """Record ``md5`` as the digest of ``path`` while its stat is ``st``."""
        if not isinstance(md5, str) or not _MD5_HEX.fullmatch(md5):
            raise ValueError(f"md5 must be 32 lowercase hex digits, got {md5!r}")
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO digests (path, size, mtime_ns, inode, device,"
                " ctime_ns, md5) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*self._key(path, st), md5),
            )


def _default_workers() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _unreadable(exc: OSError) -> str:
    return f"{UNREADABLE}: {exc.strerror or exc}"


class _Aborted(Exception):
    """Raised inside workers to stop reading once the batch has failed or been interrupted."""


class _Batch:
    """The shared state of one ``hash_files`` call."""

    def __init__(
        self,
        chunk_size: int,
        max_md5_size: int | None,
        cache: DigestCache | None,
        progress: ProgressCallback | None,
    ) -> None:
        self.chunk_size = chunk_size
        self.max_md5_size = max_md5_size
        self.cache = cache
        self.progress = progress
        self.total = 0
        self.done = 0
        self.aborted = threading.Event()
        self.failure: BaseException | None = None
        self._progress_lock = threading.Lock()
        self._buffers = threading.local()

    def inspect(self, path: Path) -> FileHash | os.stat_result:
        """Return the outcome when ``path`` needs no reading, else its stat."""
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return FileHash(path, None, None, MISSING)
        except OSError as exc:
            return FileHash(path, None, None, _unreadable(exc))
        if not stat.S_ISREG(st.st_mode):
            return FileHash(path, st.st_size, None, NOT_REGULAR)
        if self.max_md5_size is not None and st.st_size >= self.max_md5_size:
            return FileHash(path, st.st_size, None, ABOVE_MAX_MD5_SIZE)
        if self.cache is not None and (digest := self.cache.get(path, st)) is not None:
            return FileHash(path, st.st_size, digest, cached=True)
        return st

    def _advance(self, nbytes: int) -> None:
        # Checked under the lock, so no chunk is read after a failing progress call has returned.
        with self._progress_lock:
            if self.aborted.is_set():
                raise _Aborted
            if self.progress is None or not nbytes:
                return
            self.done += nbytes
            try:
                self.progress(self.done, self.total)
            except BaseException as exc:
                self.failure = exc
                self.aborted.set()
                raise

    def _buffer(self) -> memoryview:
        buffer = getattr(self._buffers, "view", None)
        if buffer is None:
            buffer = self._buffers.view = memoryview(bytearray(self.chunk_size))
        return buffer

    def hash(self, path: Path, before: os.stat_result) -> FileHash:
        """Read and hash one regular file whose stat before reading is ``before``."""
        # Progress counts at most the size planned for this file, and all of it once the file is
        # done, so that a batch ends with done == total whatever happened to its files.
        reported = 0

        def on_chunk(n: int) -> None:
            nonlocal reported
            step = min(n, before.st_size - reported)
            reported += step
            self._advance(step)

        try:
            try:
                with open(path, "rb", buffering=0) as f:
                    _advise_sequential(f.fileno())
                    digest, nread = _digest_stream(f, self._buffer(), on_chunk)
            except FileNotFoundError:
                return FileHash(path, None, None, MISSING)
            except OSError as exc:
                return FileHash(path, before.st_size, None, _unreadable(exc))
            try:
                after = os.stat(path)
            except OSError:
                return FileHash(path, None, None, CHANGED)
            if nread != before.st_size or stat_identity(before) != stat_identity(after):
                return FileHash(path, after.st_size, None, CHANGED)
            if self.cache is not None and time.time_ns() - after.st_mtime_ns >= RACY_WINDOW_NS:
                self.cache.put(path, after, digest)
            return FileHash(path, after.st_size, digest)
        finally:
            if not self.aborted.is_set():
                self._advance(before.st_size - reported)


def hash_files(
    paths: Iterable[str | os.PathLike[str]],
    *,
    workers: int | None = None,
    max_md5_size: int | None = None,
    cache: DigestCache | None = None,
    progress: ProgressCallback | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> list[FileHash]:
    """Hash many files in parallel threads; return one ``FileHash`` per input, in input order.

    ``workers`` threads read files (default: the CPUs this process may use). Files of
    ``max_md5_size`` bytes or more are not read and get no digest: like ONE-api's registration,
    which hashes only files smaller than its ``max_md5_size``. With a ``cache``, unchanged files are
    answered from it without being read, and new digests are recorded in it. ``progress`` is
    called from worker threads, one call at a time, with (bytes done, total bytes to read) after
    every chunk; ``done`` never decreases and ends equal to ``total``. An exception raised by
    ``progress`` (or an interrupt) stops the batch and propagates.
    """
    _check_chunk_size(chunk_size)
    if workers is None:
        workers = _default_workers()
    elif not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if max_md5_size is not None and (not isinstance(max_md5_size, int) or max_md5_size < 0):
        raise ValueError(f"max_md5_size must be a non-negative integer or None: {max_md5_size!r}")
    batch = _Batch(chunk_size, max_md5_size, cache, progress)
    inputs = [Path(p) for p in paths]
    if not inputs:
        return []
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="md5") as pool:
        try:
            inspected = list(pool.map(batch.inspect, inputs))
            batch.total = sum(s.st_size for s in inspected if isinstance(s, os.stat_result))
            pending: list[FileHash | Future[FileHash]] = [
                pool.submit(batch.hash, path, s) if isinstance(s, os.stat_result) else s
                for path, s in zip(inputs, inspected, strict=True)
            ]
            return [r.result() if isinstance(r, Future) else r for r in pending]
        except BaseException as exc:
            batch.aborted.set()
            pool.shutdown(wait=True, cancel_futures=True)
            # Other workers stop with _Aborted, which may surface first: raise the real cause.
            if isinstance(exc, _Aborted) and batch.failure is not None:
                raise batch.failure from None
            raise
