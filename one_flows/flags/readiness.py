"""Is a session ready to register?  The one rule that ``one-flows watch`` and the flows share.

A session is ready when its data have not changed for the quiet time.  Its data are every file
and folder in the session folder, hidden ones included (copy tools write those), except flag
files in any state and the lock files of their claims: a new flag is the rig saying "copied",
and claiming, failing or rewriting a flag is not a copy in progress.

An entry changed when its modification time or its status-change time (ctime) did.  The ctime
also moves when a copy gives a file its source's old modification time (``cp -p``,
``rsync -t``) or renames a finished file into place, and nothing but the kernel sets it.  The
session folder's own modification time is not used, since flags come and go in it; a data file
deleted from the session folder itself is therefore seen only by comparing two samples
(``previous``), as the watcher does.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass

from one_flows.flags.claims import is_claim_lock
from one_flows.flags.names import is_flag_file
from one_flows.walk import walk

_log = logging.getLogger(__name__)

QUIET_SECONDS = 60.0
"""The quiet time unless told otherwise: ``one-flows watch --quiet-seconds`` and the
``quiet_seconds`` of the registration flows both default to it."""


def _is_flag_bookkeeping(name: str) -> bool:
    return is_flag_file(name) or is_claim_lock(name)


def _lstat(entry: os.DirEntry[str]) -> os.stat_result | None:
    """The entry's own status (a symbolic link's, not its target's); None if it is gone, or
    cannot be read (with a warning)."""
    try:
        return entry.stat(follow_symlinks=False)
    except FileNotFoundError:
        return None
    except OSError as exc:
        _log.warning("cannot stat %s: %s", exc.filename, exc.strerror)
        return None


def _cannot_list(folder: str, error: OSError) -> None:
    if not isinstance(error, FileNotFoundError):  # removed while we walked: the next look sees it
        _log.warning("cannot list %s: %s", error.filename, error.strerror)


@dataclass(frozen=True)
class SessionActivity:
    """A summary of a session folder's data at one moment.

    Attributes
    ----------
    latest_change : float
        The newest modification or status-change time of any data file or folder in the session
        (seconds since the epoch); minus infinity when the session holds no data.
    files : int
        The number of data files.
    total_size : int
        Their total size in bytes.
    """

    latest_change: float
    files: int
    total_size: int

    def is_quiet(
        self,
        quiet_seconds: float = QUIET_SECONDS,
        now: float | None = None,
        previous: SessionActivity | None = None,
    ) -> bool:
        """True if no data changed within ``quiet_seconds`` before ``now`` (default: the time).

        With ``previous`` (an earlier sample of the same session), the file count and total
        size must also be unchanged.
        """
        if quiet_seconds < 0:
            raise ValueError(f"quiet_seconds must be >= 0, got {quiet_seconds}")
        now = time.time() if now is None else now
        if now - self.latest_change < quiet_seconds:
            return False
        return previous is None or (previous.files, previous.total_size) == (
            self.files,
            self.total_size,
        )


def session_activity(session_path: str | os.PathLike[str]) -> SessionActivity:
    """Walk a session folder once and summarise its data (flag files left out).

    The walk is `one_flows.walk`'s, hidden entries included: symbolic links count with their
    own times and are not followed.  Raises FileNotFoundError or NotADirectoryError if the
    session folder is missing.  A folder or file inside it that cannot be read (no permission,
    a path longer than the system allows) is left out with a warning: registration then fails
    that session, naming it.
    """
    root = os.fspath(session_path)
    if not os.path.isdir(root):
        os.stat(root)  # FileNotFoundError when missing
        raise NotADirectoryError(f"session folder {root!r} is not a directory")
    latest = -math.inf
    files = size = 0
    for listing in walk(root, hidden=True, on_unreadable=_cannot_list):
        entered = []
        for entry in (*listing.folders, *listing.files, *listing.links, *listing.others):
            if _is_flag_bookkeeping(entry.name) or (stat := _lstat(entry)) is None:
                continue
            latest = max(latest, stat.st_mtime, stat.st_ctime)
            if entry.is_dir(follow_symlinks=False):
                entered.append(entry)
            else:
                files += 1
                size += stat.st_size
        listing.folders[:] = entered
    return SessionActivity(latest, files, size)


def is_quiet(
    session_path: str | os.PathLike[str],
    quiet_seconds: float = QUIET_SECONDS,
    now: float | None = None,
    previous: SessionActivity | None = None,
) -> bool:
    """True if the session's data did not change within ``quiet_seconds`` before ``now``.

    ``now`` (seconds since the epoch) defaults to the current time; with ``previous`` (an
    earlier :func:`session_activity`) the file count and total size must also be unchanged,
    see :meth:`SessionActivity.is_quiet`.
    """
    return session_activity(session_path).is_quiet(quiet_seconds, now, previous)
