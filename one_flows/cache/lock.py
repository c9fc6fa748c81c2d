"""One writer at a time per tables folder: an ``flock`` that threads and processes share."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

from one_flows.cache.errors import TablesFolderMissing, TablesLockError
from one_flows.cache.files import LOCK_FILE, OLD_STATE_FILES, STATE_DIR, TMP_NAME

try:
    import fcntl
except ImportError:  # Windows: no flock; writers are serialised within one process only
    fcntl = None  # type: ignore[assignment]

__all__ = ["TablesLock", "lock_tables", "tables_generation"]

logger = logging.getLogger(__name__)


class TablesLock:
    """The exclusive right of one thread of one process to change the tables of a folder.

    Taken (and re-entered by the thread holding it) with `lock_tables`.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._threads = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    def mark_changed(self) -> None:
        """Record that the tables changed, for `tables_generation`; the caller holds the lock."""
        assert self._fd is not None, "mark_changed without the lock"
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.write(self._fd, uuid.uuid4().hex.encode())

    def _acquire(self) -> None:
        if not self._threads.acquire(blocking=False):
            logger.info("Waiting for another thread writing the tables in %s", self.folder)
            self._threads.acquire()
        try:
            if self._depth == 0:
                self._fd = _flocked(self.folder / LOCK_FILE)
                _tidy(self.folder)
        except BaseException:
            self._close()
            self._threads.release()
            raise
        self._depth += 1

    def _release(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._close()
        self._threads.release()

    def _close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # drops the flock


def _flocked(path: Path) -> int:
    """A descriptor of the lock file at ``path``, created if need be, exclusively flock'ed."""
    path.parent.mkdir(exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    if fcntl is None:
        return fd
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("Waiting for another process writing the tables in %s", path.parent.parent)
            fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError as exc:
        os.close(fd)
        raise TablesLockError(
            exc.errno, f"cannot lock the tables: {exc.strerror} (flock)", str(path)
        ) from exc
    return fd


def _tidy(folder: Path) -> None:
    """Clear what killed writers left in a tables folder and move earlier versions' state files;
    the caller holds the folder's lock, so no temporary file there is being written."""
    for where in (folder, folder / STATE_DIR):
        with os.scandir(where) as entries:
            stale = [e.path for e in entries if TMP_NAME.fullmatch(e.name)]
        for path in stale:
            logger.warning("Removing %s, left by a writer that did not finish", path)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    for old, new in OLD_STATE_FILES.items():
        with contextlib.suppress(FileNotFoundError):
            if (folder / new).exists():
                os.unlink(folder / old)
            else:
                os.replace(folder / old, folder / new)


_LOCKS: dict[str, TablesLock] = {}
_LOCKS_GUARD = threading.Lock()


def _forget_locks() -> None:
    """In a forked child: the parent's locks are the parent's (its descriptors and threads)."""
    global _LOCKS, _LOCKS_GUARD
    for lock in _LOCKS.values():
        if lock._fd is not None:
            os.close(lock._fd)  # the parent's descriptor still holds the flock
    _LOCKS, _LOCKS_GUARD = {}, threading.Lock()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_forget_locks)


@contextlib.contextmanager
def lock_tables(cache_dir: str | os.PathLike) -> Iterator[TablesLock]:
    """Hold the exclusive lock of the tables in ``cache_dir`` (waiting for it if need be).

    Every change one-flows makes to the tables (`save_tables`, `make_parquet_db`,
    `update_tables`, `one_flows.targets.LocalTarget`) is made under this lock, by reading the
    tables after taking it: of any number of threads and processes writing one folder, each
    sees the others' changes and none is lost. The lock is an ``flock`` on
    ``.one_flows/tables.lock``, which the kernel drops when its holder dies however it dies;
    the thread holding it may take it again. On taking it, temporary files left by a writer
    that was killed are removed, and state files of earlier versions are moved into
    ``.one_flows/``. Readers need no lock: each table is replaced atomically.

    Raises
    ------
    TablesLockError
        The file system does not support ``flock``.
    """
    folder = Path(os.path.realpath(cache_dir))
    if not folder.is_dir():
        raise TablesFolderMissing(f"Cache tables folder does not exist: {cache_dir}")
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(str(folder), TablesLock(folder))
    lock._acquire()
    try:
        yield lock
    finally:
        lock._release()


@contextlib.contextmanager
def changing(cache_dir: str | os.PathLike) -> Iterator[None]:
    """Hold the lock of the tables in ``cache_dir`` and mark them changed when done."""
    with lock_tables(cache_dir) as lock:
        try:
            yield
        finally:
            lock.mark_changed()


def tables_generation(cache_dir: str | os.PathLike) -> bytes:
    """A token that one-flows changes whenever it changes the tables in ``cache_dir``.

    Read under `lock_tables`, an unchanged token means that no one-flows writer changed the
    tables since it was last read (stat alone can miss a rewrite: a recycled inode, same size,
    same clock tick). Empty when one-flows never locked the folder.
    """
    try:
        with open(Path(cache_dir) / LOCK_FILE, "rb") as f:
            return f.read(64)
    except FileNotFoundError:
        return b""
