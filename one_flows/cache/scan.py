"""Finding the session folders under a data root, and the ALF files and folders in them."""

from __future__ import annotations

import datetime
import os
import warnings
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from one_flows.alf import ALFError, is_valid, rel_path_parts, session_path_parts
from one_flows.cache.errors import SessionFolderError
from one_flows.cache.ids import session_id, session_key
from one_flows.flags import is_flag_file

__all__ = ["Scan", "Session", "find_sessions", "given_sessions", "scan_sessions"]


@dataclass(frozen=True, order=True)
class Session:
    """A session folder; sessions sort by id."""

    eid: str
    key: str
    folder: str
    lab: str
    subject: str
    day: datetime.date
    number: int


@dataclass
class Scan:
    """Column lists of the files and folders of scanned sessions, session after session."""

    sessions: list[Session]
    eids: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    rel_paths: list[str] = field(default_factory=list)
    sizes: array = field(default_factory=lambda: array("q"))
    mtimes: array = field(default_factory=lambda: array("q"))
    dir_eids: list[str] = field(default_factory=list)
    dir_paths: list[str] = field(default_factory=list)  # relative to the session, "" for itself
    dir_mtimes: array = field(default_factory=lambda: array("q"))

    def path(self, i: int, folders: dict[str, str]) -> str:
        """Absolute path of the i-th file, given each session's folder by id."""
        return f"{folders[self.eids[i]]}/{self.rel_paths[i]}"


def _is_session_candidate(parts: tuple[str, ...]) -> bool:
    """Cheap pre-check of the last three folder names before parsing them as a session."""
    if len(parts) < 3:
        return False
    number, date = parts[-1], parts[-2]
    return number.isdigit() and len(number) <= 3 and len(date) == 10 and date[4] == "-"


def _iter_sessions(root: Path) -> Iterator[tuple[str, tuple[str, str, datetime.date, int]]]:
    """Yield (absolute folder, (lab, subject, date, number)) of every session folder under root."""
    stack: list[tuple[str, tuple[str, ...]]] = [(str(root), ())]
    seen: set[tuple[int, int]] = set()
    while stack:
        folder, parts = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            warnings.warn(f"Cannot list {folder}: {exc}", RuntimeWarning, stacklevel=3)
            continue
        for entry in entries:
            if not entry.is_dir():
                continue
            if entry.is_symlink():
                st = entry.stat()
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
            sub = (*parts, entry.name)
            info = _session_info(sub) if _is_session_candidate(sub) else None
            if info is None:
                stack.append((entry.path, sub))
            else:
                yield entry.path, info


def _session_info(parts: tuple[str, ...]) -> tuple[str, str, datetime.date, int] | None:
    tail = parts[-5:]
    try:
        lab, subject, date, number = session_path_parts("/".join(tail), assert_valid=True)
        day = datetime.date.fromisoformat(date)
    except (ALFError, ValueError):
        return None
    return lab or "", subject, day, int(number)


def _session(
    folder: str, info: tuple[str, str, datetime.date, int], lab: str | None, hash_ids: bool
) -> Session:
    folder_lab, subject, day, number = info
    if lab and folder_lab and folder_lab != lab:
        raise SessionFolderError(f"lab={lab!r} conflicts with the lab folder of session {folder}")
    ses_lab = folder_lab or lab or ""
    key = session_key(ses_lab, subject, day, number)
    eid = session_id(key) if hash_ids else key
    return Session(eid, key, folder, ses_lab, subject, day, number)


def find_sessions(root: Path, lab: str | None, hash_ids: bool) -> list[Session]:
    """Every session folder under ``root``, the first of each session key, in id order."""
    found: dict[str, Session] = {}
    for folder, info in sorted(_iter_sessions(root)):
        session = _session(folder, info, lab, hash_ids)
        if session.key in found:
            warnings.warn(
                f"Skipping {folder}: same session as {found[session.key].folder}",
                RuntimeWarning,
                stacklevel=3,
            )
            continue
        found[session.key] = session
    return sorted(found.values(), key=lambda s: s.eid)


def given_sessions(
    root: Path, paths: Iterable[str | os.PathLike], lab: str | None, hash_ids: bool
) -> tuple[list[Session], list[Session]]:
    """The sessions of folders under ``root`` (absolute or relative): (present, absent)."""
    present: dict[str, Session] = {}
    absent: dict[str, Session] = {}
    if isinstance(paths, (str, os.PathLike)):
        raise TypeError("sessions must be a list of session folders, not a single path")
    for path in paths:
        folder = Path(os.path.abspath(root / path))
        try:
            parts = folder.relative_to(root).parts
        except ValueError:
            raise SessionFolderError(f"Session folder {path} is not under {root}") from None
        info = _session_info(parts) if _is_session_candidate(parts) else None
        if info is None:
            raise SessionFolderError(
                f"{path} is not a session folder ([lab/Subjects/]subject/date/nnn)"
            )
        session = _session(str(folder), info, lab, hash_ids)
        (present if folder.is_dir() else absent)[session.key] = session
    return sorted(present.values()), sorted(absent.values())


class _CollectionCheck:
    """Memoised validity of collection/revision folders relative to a session."""

    def __init__(self) -> None:
        self._known: dict[str, bool] = {"": True}

    def __call__(self, rel_dir: str) -> bool:
        ok = self._known.get(rel_dir)
        if ok is None:
            try:
                collection, revision, *_ = rel_path_parts(f"{rel_dir}/a.b.c", assert_valid=True)
            except ALFError:
                ok = False
            else:
                rebuilt = "/".join(filter(None, [collection, f"#{revision}#" if revision else ""]))
                ok = rebuilt == rel_dir
            self._known[rel_dir] = ok
        return ok


def scan_sessions(sessions: list[Session]) -> Scan:
    """Stat the ALF files and the folders of ``sessions``; files sorted by path per session."""
    scan = Scan(sessions)
    valid_name: dict[str, bool] = {}
    valid_dir = _CollectionCheck()
    for session in sessions:
        eid = session.eid
        files: list[tuple[str, int, int]] = []
        stack = [(session.folder, "")]
        while stack:
            current, rel_dir = stack.pop()
            # The folder's mtime is read before its listing: a file added meanwhile changes it.
            scan.dir_eids.append(eid)
            scan.dir_paths.append(rel_dir)
            scan.dir_mtimes.append(os.stat(current).st_mtime_ns)
            for entry in os.scandir(current):
                if entry.is_dir():
                    sub = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                    stack.append((entry.path, sub))
                    continue
                name = entry.name
                ok = valid_name.get(name)
                if ok is None:
                    ok = valid_name[name] = is_valid(name) and not is_flag_file(name)
                if not ok or not valid_dir(rel_dir):
                    continue
                try:
                    st = entry.stat()
                except OSError:  # broken symlink or vanished file
                    continue
                files.append((f"{rel_dir}/{name}" if rel_dir else name, st.st_size, st.st_mtime_ns))
        files.sort()
        for rel_path, size, mtime in files:
            scan.eids.append(eid)
            scan.keys.append(session.key)
            scan.rel_paths.append(rel_path)
            scan.sizes.append(size)
            scan.mtimes.append(mtime)
    return scan
