"""Is a session's data still arriving?  Cheap checks on the session folder's files."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionActivity:
    """A summary of a session folder's files at one moment.

    Attributes
    ----------
    latest_mtime : float
        The newest modification time of any file or folder in the session (seconds since the
        epoch); folders count because adding, removing or renaming a file changes them.
    files : int
        The number of files.
    total_size : int
        Their total size in bytes.
    """

    latest_mtime: float
    files: int
    total_size: int


def session_activity(session_path: str | os.PathLike[str]) -> SessionActivity:
    """Walk a session folder once (hidden files included: copy tools write those) and summarise it.

    Symbolic links count with their own times and are not followed.  Raises FileNotFoundError
    or NotADirectoryError if the session folder is missing.  A folder or file inside it that
    cannot be read (no permission, a path longer than the system allows) is left out with a
    warning: registration then fails that session, naming it.
    """
    root = os.fspath(session_path)
    latest = os.stat(root).st_mtime
    if not os.path.isdir(root):
        raise NotADirectoryError(f"session folder {root!r} is not a directory")
    files = size = 0
    stack = [root]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except FileNotFoundError:
            continue  # removed while we walked: that is activity the folder's mtime shows
        except OSError as exc:
            _log.warning("cannot list %s: %s", exc.filename, exc.strerror)
            continue
        with entries:
            for entry in entries:
                try:
                    stat = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    _log.warning("cannot stat %s: %s", exc.filename, exc.strerror)
                    continue
                latest = max(latest, stat.st_mtime)
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    files += 1
                    size += stat.st_size
    return SessionActivity(latest, files, size)


def is_quiet(
    session_path: str | os.PathLike[str],
    quiet_seconds: float,
    now: float | None = None,
    previous: SessionActivity | None = None,
) -> bool:
    """True if nothing in the session folder changed within the last ``quiet_seconds``.

    ``now`` (seconds since the epoch) defaults to the current time.  With ``previous`` (an
    earlier :func:`session_activity`), the file count and total size must also be unchanged,
    which catches copies that preserve modification times.
    """
    if quiet_seconds < 0:
        raise ValueError(f"quiet_seconds must be >= 0, got {quiet_seconds}")
    activity = session_activity(session_path)
    now = time.time() if now is None else now
    if now - activity.latest_mtime < quiet_seconds:
        return False
    return previous is None or (
        (previous.files, previous.total_size) == (activity.files, activity.total_size)
    )
