"""Walking a data root: which folders are sessions, what identifies a session, and which
entries every walk takes.

Every walk of a data root or of a session folder lists folders here: the cache build
(`one_flows.cache`), registration (`one_flows.registration`), and the flag scan, the watcher and
the readiness check (`one_flows.flags`), so that all of them see a tree the same way. `walk`
lists every folder under one (`list_folder`); the two walks of a whole data root that its size
makes hot take only what they need from each folder: `session_folders` (the cache build) and
`find_named` (the flag scan).

Session folders
    A folder is a session folder when its path ends in ``(lab/Subjects/)subject/date/number``
    by the ALF grammar (`one_flows.alf.spec.SESSION_SPEC`), the date is a real calendar day, and
    no folder above it is a session folder (`SessionKey.parse`, `SessionKey.from_path`). A walk
    of a data root (`session_folders`) does not enter the session folders it finds: a session
    folder nested in another is part of the outer session. `SessionKey` is what identifies a
    session, whichever folder names it.

Which entries a walk takes: the symbolic-link policy
    - A folder is entered. The folder a walk starts from is entered wherever it is.
    - A symbolic link to a folder is never followed, wherever it leads: no walk leaves the data
      root or the session through one, runs round a loop or sees a folder twice. Such links,
      and what is neither a folder nor a file (FIFOs, sockets, devices), are set aside in
      `Listing.others`, never read.
    - Regular files are listed, and so are symbolic links to anything but a folder (broken links
      and loops included; `Listing.links`). Before it reads a link, a walker asks
      `link_problem`: a link is read
      only if it resolves to a file inside its session folder; a broken link (`BROKEN_LINK`), a
      loop (`LINK_LOOP`) and a link out of the session (`LINK_LEAVES_SESSION`) are skipped unread
      and reported with that reason (in registration's session report; as a warning by the
      cache build).
    - Hidden entries (a name starting with ``.``) are not data: left out without a word, except
      by the readiness check (``hidden=True``), since copy tools write hidden files.
    - A folder that cannot be listed (no permission, a path longer than PATH_MAX) goes to the
      walk's ``on_unreadable``: registration fails that session alone, naming the folder and
      the reason; the walks of a whole data root (the cache's, the flag scan's) leave it out
      with a warning; the cache build, which cannot index a session it cannot list, stops
      with the error.
"""

from __future__ import annotations

import datetime
import errno
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from one_flows.alf import get_session_path
from one_flows.alf.spec import SESSION_SPEC, regex
from one_flows.hashing import UNREADABLE

__all__ = [
    "BROKEN_LINK",
    "LINK_LEAVES_SESSION",
    "LINK_LOOP",
    "Listing",
    "SessionKey",
    "find_named",
    "is_session_folder",
    "link_problem",
    "list_folder",
    "session_folders",
    "walk",
]

BROKEN_LINK = "broken symbolic link"
LINK_LOOP = "symbolic link loop"
LINK_LEAVES_SESSION = "symbolic link to a file outside the session folder: never read"

_SESSION_END = re.compile(regex(SESSION_SPEC).pattern + r"\Z")


@dataclass(frozen=True, eq=False, slots=True)
class SessionKey:
    """What identifies a session: its subject, date and number.

    The folders that name one session are one key: ``S/2026-01-05/001``, ``S/2026-01-05/01``,
    ``S/2026-01-05/1`` and ``lab/Subjects/S/2026-01-05/001`` compare equal and hash alike, as
    Alyx identifies a session by subject, date and number. The other fields say how a folder
    spells the key: ``number`` as written (``001``; Alyx records file paths with it), the lab
    the folder names (None without ``lab/Subjects``), and the folder itself when the key was
    read from one.
    """

    subject: str
    date: str
    number: str
    lab: str | None = None
    path: Path | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, parts: Sequence[str]) -> SessionKey | None:
        """The key of the session folder whose path ends in ``parts``, or None when the last
        of them are not ``(lab/Subjects/)subject/date/number`` with a real calendar date.

        Folders above the last five parts are not looked at: a walk that stops at session
        folders needs no more.
        """
        match = _session_match(parts)
        if match is None:
            return None
        return cls(match["subject"], match["date"], match["number"], match["lab"])

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> SessionKey:
        """The key of a session folder; raises ValueError when ``path`` is not one."""
        path = Path(path)
        match = _folder_match(os.fspath(path))
        if match is None:
            raise ValueError(
                f"not a session folder (expected [lab/Subjects/]subject/YYYY-MM-DD/NNN): {path}"
            )
        return cls(match["subject"], match["date"], match["number"], match["lab"], path)

    @classmethod
    def of(
        cls,
        subject: str,
        date: str | datetime.date,
        number: int | str,
        lab: str | None = None,
    ) -> SessionKey:
        """The key of a session record (such as a row of the sessions table)."""
        return cls(subject, str(date), f"{int(number):03d}", lab or None)

    @property
    def identity(self) -> tuple[str, str, int]:
        """(subject, date, number): what keys compare by."""
        return self.subject, self.date, int(self.number)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SessionKey):
            return NotImplemented
        return self.identity == other.identity

    def __hash__(self) -> int:
        return hash(self.identity)

    @property
    def relative(self) -> str:
        """``subject/YYYY-MM-DD/number`` as the folder spells it: the session path Alyx's
        register-file expects."""
        return f"{self.subject}/{self.date}/{self.number}"

    @property
    def canonical(self) -> str:
        """``lab/subject/YYYY-MM-DD/NNN``, the number zero-padded and the lab left out when
        there is none: the name the cache tables' session ids are made from."""
        return "/".join(
            filter(None, [self.lab, self.subject, self.date, f"{int(self.number):03d}"])
        )


def is_session_folder(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a session folder (see `SessionKey.from_path`)."""
    return _folder_match(os.fspath(path)) is not None


def _session_match(parts: Sequence[str]) -> re.Match[str] | None:
    """The session parts that ``parts`` ends in (`SessionKey.parse`), as a match of
    `one_flows.alf.spec.SESSION_SPEC`."""
    if len(parts) < 3:
        return None
    number, date = parts[-1], parts[-2]
    # Most folders fail this at once, before any parsing.
    if not (len(number) <= 3 and number.isascii() and number.isdigit()):
        return None
    if len(date) != 10 or date[4] != "-":
        return None
    match = _SESSION_END.search("/".join(parts[-5:]))
    if match is None:
        return None
    try:
        datetime.date.fromisoformat(date)
    except ValueError:
        return None
    return match


def _folder_match(text: str) -> re.Match[str] | None:
    """The session parts of the session folder at ``text``, or None when it is not one."""
    parts = text.replace("\\", "/").rstrip("/").split("/")
    match = _session_match(parts)
    # A session folder above this one makes it part of that session. Only a folder of digits
    # above can be one, which is rare enough to skip the full check without it.
    if match is not None and any(map(str.isdigit, parts[:-1])):
        return match if get_session_path(text) == Path(text) else None
    return match


@dataclass(slots=True)
class Listing:
    """One folder, as a walk takes it.

    ``folders`` are the subfolders the walk enters next (a caller of `walk` may remove some);
    ``files`` the regular files; ``links`` the symbolic links to anything but a folder (broken
    ones and loops included, and the rare entry that cannot even be stat'ed), to be checked with
    `link_problem` before they are read; ``others`` what is never followed or read: links to
    folders, FIFOs, sockets, devices.
    ``mtime_ns`` is the folder's modification time, read before the listing, when the walk
    asked for it; ``start`` where, in ``path``, the path below the walk's start begins.
    """

    path: str
    start: int
    folders: list[os.DirEntry[str]]
    files: list[os.DirEntry[str]]
    links: list[os.DirEntry[str]]
    others: list[os.DirEntry[str]]
    mtime_ns: int | None = None

    @property
    def rel(self) -> str:
        """The folder's path below the walk's start, ``/``-separated (empty for the start)."""
        return self.path[self.start :]


def list_folder(
    path: str, start: int | None = None, hidden: bool = False, mtime: bool = False
) -> Listing:
    """List one folder by the policy of this module (see `Listing`); ``start`` is where the
    path below the walk's start begins in ``path`` (by default, the folder is the start).

    Raises
    ------
    OSError
        The folder cannot be listed (or, with ``mtime``, stat'ed).
    """
    if start is None:
        start = _start(path)
    mtime_ns = os.stat(path).st_mtime_ns if mtime else None
    folders: list[os.DirEntry[str]] = []
    files: list[os.DirEntry[str]] = []
    links: list[os.DirEntry[str]] = []
    others: list[os.DirEntry[str]] = []
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.name[0] == "." and not hidden:
                continue
            try:
                if entry.is_file(follow_symlinks=False):
                    files.append(entry)
                elif entry.is_dir(follow_symlinks=False):
                    folders.append(entry)
                elif entry.is_symlink() and not _links_to_folder(entry):
                    links.append(entry)
                else:
                    others.append(entry)
            except OSError:  # the entry cannot be stat'ed: its reader says why
                links.append(entry)
    return Listing(path, start, folders, files, links, others, mtime_ns)


def _links_to_folder(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a loop: a link for its readers to report
        return False


def _start(top: str) -> int:
    """Where the path below ``top`` begins in the paths of the entries under it."""
    return len(top) if top.endswith(os.sep) else len(top) + 1


UnreadableHandler = Callable[[str, OSError], None]
"""Told of a folder that cannot be listed (its path and the error); it may raise."""


def _tell(on_unreadable: UnreadableHandler | None, folder: str, error: OSError) -> None:
    """Tell ``on_unreadable`` of a folder that cannot be listed; without one, raise ``error``."""
    if on_unreadable is None:
        raise error
    on_unreadable(folder, error)


def walk(
    top: str | os.PathLike[str],
    *,
    hidden: bool = False,
    mtimes: bool = False,
    on_unreadable: UnreadableHandler | None = None,
) -> Iterator[Listing]:
    """The folders under ``top``, ``top`` first, each listed by `list_folder`, depth first.

    A folder's subfolders are walked after the caller has seen its listing, so removing some
    from ``listing.folders`` leaves them out. A folder that cannot be listed goes to
    ``on_unreadable``; without one, its error is raised. ``mtimes`` reads each folder's
    modification time before listing it; ``hidden`` is `list_folder`'s.
    """
    top = os.fspath(top)
    start = _start(top)
    stack: list[str | os.DirEntry[str]] = [top]
    while stack:
        path = os.fspath(stack.pop())
        try:
            listing = list_folder(path, start, hidden, mtimes)
        except OSError as exc:
            _tell(on_unreadable, path, exc)
            continue
        yield listing
        stack += listing.folders


def session_folders(
    root: str | os.PathLike[str], *, on_unreadable: UnreadableHandler | None = None
) -> Iterator[tuple[str, SessionKey]]:
    """Every session folder under ``root``, with its key read from its path below ``root``.

    Session folders are not entered. A folder that cannot be listed goes to
    ``on_unreadable``; without one, its error is raised.
    """
    stack: list[tuple[str, tuple[str, ...]]] = [(os.fspath(root), ())]
    while stack:
        folder, parts = stack.pop()
        for entry in _folders_in(folder, on_unreadable):
            sub = (*parts, entry.name)
            match = _session_match(sub)
            if match is None:
                stack.append((entry.path, sub))
            else:
                yield (
                    entry.path,
                    SessionKey(match["subject"], match["date"], match["number"], match["lab"]),
                )


def _folders_in(folder: str, on_unreadable: UnreadableHandler | None) -> list[os.DirEntry[str]]:
    """The folders a walk enters from ``folder``."""
    try:
        entries = os.scandir(folder)
    except OSError as exc:
        _tell(on_unreadable, folder, exc)
        return []
    folders = []
    with entries:
        for entry in entries:
            try:
                if entry.name[0] != "." and entry.is_dir(follow_symlinks=False):
                    folders.append(entry)
            except OSError:  # it cannot be stat'ed: not a folder to enter
                pass
    return folders


def find_named(
    root: str | os.PathLike[str],
    names: tuple[str, ...],
    *,
    on_unreadable: UnreadableHandler | None = None,
) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """Every entry under ``root`` whose name starts with one of ``names``, whatever it is (for
    its reader to judge), with the folder it is in: ``find root -name 'names*'`` by the policy.

    A folder that cannot be listed goes to ``on_unreadable``; without one, its error is raised.
    """
    stack = [os.fspath(root)]
    while stack:
        folder = stack.pop()
        try:
            entries = os.scandir(folder)
        except OSError as exc:
            _tell(on_unreadable, folder, exc)
            continue
        with entries:
            for entry in entries:
                name = entry.name
                if name[0] == ".":
                    continue
                if name.startswith(names):
                    yield folder, entry
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                except OSError:  # it cannot be stat'ed: not a folder to enter
                    pass


def link_problem(path: str | os.PathLike[str], session_path: str | os.PathLike[str]) -> str | None:
    """Why a listed file must not be read: a broken symbolic link, a loop of them, or one
    leading out of the session folder (through the file or a folder on its path); None for a
    file inside it; ``unreadable: <error>`` when the path cannot be resolved for another
    reason (such as a path longer than the system allows)."""
    path = Path(path)
    try:
        real = path.resolve(strict=True)
    except FileNotFoundError:
        return BROKEN_LINK if path.is_symlink() else None
    except RuntimeError:  # a loop, before Python 3.13
        return LINK_LOOP
    except OSError as exc:
        return LINK_LOOP if exc.errno == errno.ELOOP else f"{UNREADABLE}: {exc.strerror or exc}"
    if not real.is_relative_to(Path(session_path).resolve()):
        return LINK_LEAVES_SESSION
    return None
