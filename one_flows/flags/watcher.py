"""Watching a data root for new flags, cheaply; each newly flagged session announced once ready."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from one_flows.flags.errors import FlagError
from one_flows.flags.names import DEFAULT_NAMES, Flag, FlagState, name_pattern
from one_flows.flags.readiness import QUIET_SECONDS, SessionActivity, session_activity
from one_flows.flags.scan import ErrorHandler, check_root, flag_in, log_flag_error
from one_flows.walk import list_folder

# A folder modified this recently may change again within the same mtime tick on coarse file
# systems, so its listing is not trusted until it is older than this (git's "racy clean").
_RACY_SECONDS = 2.0

_ANNOUNCED = frozenset({FlagState.PENDING})

_Identity = tuple[int, int, int]  # inode, mtime_ns, size: a rewritten flag gets a new one


@dataclass
class _Folder:
    mtime_ns: int
    trusted: bool
    subfolders: list[str] = field(default_factory=list)
    flags: dict[str, Flag] = field(default_factory=dict)


def _activity(session: Path) -> SessionActivity | None:
    try:
        return session_activity(session)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _identity(path: Path) -> _Identity | None:
    try:
        stat = path.stat(follow_symlinks=False)
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


class FlagWatcher:
    """Polls a data root for new flags and tells which sessions to announce, when they are ready.

    Each poll stats every folder once and lists only the folders whose modification time
    changed since the last poll (plus the flags already known, which are stat-ed to catch
    rewrites in place), so a poll of a quiet tree never reads the file lists of its sessions.
    Hidden folders and symbolic links to folders are skipped, as in
    :func:`~one_flows.flags.scan.find_flags`.

    A new pending flag (new name, or a rewrite of a known one) puts its session on a waiting
    list, and the session is announced once, at the first poll at which it is ready by the rule
    the registration flows apply before claiming
    (:meth:`~one_flows.flags.readiness.SessionActivity.is_quiet` with ``quiet_seconds``), its
    data files also unchanged in number and size since the previous poll.  Flags present at the
    first poll count as new.  Failed flags are not announced: the periodic sweep retries them at
    its own pace, where announcing them at once could spend a session's attempts in a minute.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        interval: float = 10.0,
        quiet_seconds: float = QUIET_SECONDS,
        names: Collection[str] = DEFAULT_NAMES,
        clock: Callable[[], float] = time.time,
        on_error: ErrorHandler | None = log_flag_error,
    ) -> None:
        if interval <= 0 or quiet_seconds < 0:
            raise ValueError(
                f"need interval > 0 and quiet_seconds >= 0, got {interval}, {quiet_seconds}"
            )
        self.root = check_root(root)
        self.interval = interval
        self.quiet_seconds = quiet_seconds
        self.names = tuple(names)
        name_pattern(self.names)  # validates the names
        self._clock = clock
        self._on_error = on_error
        self._folders: dict[str, _Folder] = {}
        self._seen: dict[Path, _Identity] = {}
        self._reported: dict[str, _Identity | None] = {}
        self._waiting: dict[Path, SessionActivity | None] = {}

    def _list(self, folder: str, mtime_ns: int) -> _Folder:
        entries = list_folder(folder)
        listing = _Folder(mtime_ns, time.time() - mtime_ns / 1e9 > _RACY_SECONDS)
        listing.subfolders = [entry.path for entry in entries.folders]
        for entry in (*entries.folders, *entries.files, *entries.links, *entries.others):
            if not entry.name.startswith(self.names):
                continue
            found = flag_in(folder, entry, self.names, _ANNOUNCED)
            if isinstance(found, Flag):
                listing.flags[entry.name] = found
            elif found is not None:
                self._report(found)
        return listing

    def _report(self, error: FlagError) -> None:
        identity = _identity(Path(error.flag))
        if self._reported.get(error.flag, ()) != identity and self._on_error is not None:
            self._on_error(error)
        self._reported[error.flag] = identity

    def _scan(self) -> dict[Path, tuple[_Identity, Path]]:
        """Refresh the folder listings; return each claimable flag's identity and session."""
        folders: dict[str, _Folder] = {}
        present: dict[Path, tuple[_Identity, Path]] = {}
        stack = [self.root]
        while stack:
            path = stack.pop()
            try:
                mtime_ns = os.stat(path).st_mtime_ns
                cached = self._folders.get(path)
                if cached is None or not cached.trusted or cached.mtime_ns != mtime_ns:
                    cached = self._list(path, mtime_ns)
            except (FileNotFoundError, NotADirectoryError):
                continue
            folders[path] = cached
            stack.extend(cached.subfolders)
            for flag in cached.flags.values():
                identity = _identity(flag.path)
                if identity is not None:
                    present[flag.path] = identity, flag.session_path
        self._folders = folders
        return present

    @property
    def waiting(self) -> list[Path]:
        """The newly flagged sessions not announced yet because their data are still changing."""
        return sorted(self._waiting)

    def poll(self) -> list[Path]:
        """Scan once; return the newly flagged sessions that are now ready, each once, sorted."""
        now = self._clock()
        present = self._scan()
        for path, (identity, session) in present.items():
            if self._seen.get(path) != identity:
                self._waiting.setdefault(session, None)
        self._seen = {path: identity for path, (identity, _) in present.items()}
        flagged = {session for _, session in present.values()}
        due = []
        for session, previous in sorted(self._waiting.items()):
            activity = _activity(session) if session in flagged else None
            if activity is None:  # claimed, unflagged or removed meanwhile: nothing to announce
                del self._waiting[session]
            elif activity.is_quiet(self.quiet_seconds, now, previous):
                del self._waiting[session]
                due.append(session)
            else:
                self._waiting[session] = activity
        return due

    def watch(self, stop: threading.Event | None = None) -> Iterator[Path]:
        """Poll every ``interval`` seconds, yielding the sessions to announce, until ``stop``."""
        stop = stop or threading.Event()
        while not stop.is_set():
            yield from self.poll()
            stop.wait(self.interval)
