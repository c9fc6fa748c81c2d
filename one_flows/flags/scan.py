"""Finding flag files under a data root."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

from one_flows.flags.errors import FlagError, FlagLocationError
from one_flows.flags.names import (
    CLAIMABLE,
    DEFAULT_NAMES,
    Flag,
    FlagState,
    name_pattern,
    parse_name,
)
from one_flows.walk import find_named, is_session_folder

_log = logging.getLogger(__name__)

ErrorHandler = Callable[[FlagError], None]


def log_flag_error(error: FlagError) -> None:
    """The default ``on_error`` handler: log the error as a warning."""
    _log.warning("skipping flag: %s", error)


def check_root(root: str | os.PathLike[str]) -> str:
    """Return ``root`` as a string if it is an existing directory, else raise."""
    text = os.fspath(root)
    if not os.path.isdir(text):
        if os.path.exists(text):
            raise NotADirectoryError(f"data root {text!r} is not a directory")
        raise FileNotFoundError(f"data root {text!r} does not exist")
    return text


def flag_in(
    folder: str, entry: os.DirEntry[str], names: tuple[str, ...], states: Collection[FlagState]
) -> Flag | FlagError | None:
    """Return the flag that directory entry ``entry`` of ``folder`` is, an error, or None.

    None means the entry is not a flag of ``names`` in one of ``states``.
    """
    parsed = parse_name(entry.name, names)
    if parsed is None or parsed[1] not in states:
        return None
    name, state, attempt, run_id = parsed
    if entry.is_symlink():
        return FlagLocationError(entry.path, "is a symbolic link; flags must be regular files")
    if not entry.is_file(follow_symlinks=False):
        return FlagLocationError(entry.path, "is not a regular file")
    if not is_session_folder(folder):
        return FlagLocationError(
            entry.path, "is not in a session folder (expected .../subject/YYYY-MM-DD/number/)"
        )
    path = Path(entry.path)
    return Flag(path, path.parent, name, state, attempt, run_id)


def _cannot_list(folder: str, error: OSError) -> None:
    if not isinstance(error, FileNotFoundError | NotADirectoryError):  # vanished meanwhile
        _log.warning("cannot list %s: %s", folder, error)


def find_flags(
    root: str | os.PathLike[str],
    names: Collection[str] = DEFAULT_NAMES,
    states: Collection[FlagState] = CLAIMABLE,
    on_error: ErrorHandler | None = log_flag_error,
) -> Iterator[Flag]:
    """Yield the flags under ``root`` whose name is one of ``names`` and state one of ``states``.

    By default only claimable flags (pending and failed) are yielded; pass
    ``states=FlagState`` to see every flag, e.g. for a report or the reaper.  The walk is
    `one_flows.walk`'s: hidden folders (name starting with ``'.'``) are skipped and symbolic
    links to folders are never followed, so links cannot lead the walk out of ``root`` or
    around a loop.  A flag that cannot be used (outside a session folder, a symbolic link, a
    directory) goes to ``on_error`` as a :class:`FlagError` and the walk goes on;
    ``on_error=None`` drops such errors silently.  Folders that vanish or cannot be listed
    during the walk are skipped.
    """
    names = tuple(names)
    states = frozenset(states)
    name_pattern(names)  # validates the names before the walk starts
    for folder, entry in find_named(check_root(root), names, on_unreadable=_cannot_list):
        found = flag_in(folder, entry, names, states)
        if isinstance(found, Flag):
            yield found
        elif found is not None and on_error is not None:
            on_error(found)
