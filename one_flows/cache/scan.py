"""The sessions under a data root, and the ALF files and folders in them, found by
`one_flows.walk` (its symbolic-link policy included)."""

from __future__ import annotations

import dataclasses
import datetime
import os
import warnings
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from one_flows.alf import ALFError, is_valid, rel_path_parts
from one_flows.cache.errors import SessionFolderError
from one_flows.cache.ids import session_id
from one_flows.flags import is_flag_file
from one_flows.walk import SessionKey, link_problem, session_folders, walk

__all__ = ["Scan", "Session", "find_sessions", "given_sessions", "scan_sessions"]


@dataclass(slots=True)
class Session:
    """A session folder, with its key (the lab filled in if need be) and the key's canonical
    name, of which the session's id and its datasets' ids are made."""

    eid: str
    key: SessionKey
    name: str
    folder: str
    day: datetime.date


@dataclass
class Scan:
    """Column lists of the files and folders of scanned sessions, session after session."""

    sessions: list[Session]
    eids: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # each file's session's canonical name
    rel_paths: list[str] = field(default_factory=list)
    sizes: array = field(default_factory=lambda: array("q"))
    mtimes: array = field(default_factory=lambda: array("q"))
    dir_eids: list[str] = field(default_factory=list)
    dir_paths: list[str] = field(default_factory=list)  # relative to the session, "" for itself
    dir_mtimes: array = field(default_factory=lambda: array("q"))

    def path(self, i: int, folders: dict[str, str]) -> str:
        """Absolute path of the i-th file, given each session's folder by id."""
        return f"{folders[self.eids[i]]}/{self.rel_paths[i]}"


def _session(folder: str, key: SessionKey, lab: str | None, hash_ids: bool) -> Session:
    if lab and key.lab and key.lab != lab:
        raise SessionFolderError(f"lab={lab!r} conflicts with the lab folder of session {folder}")
    if lab and not key.lab:
        key = dataclasses.replace(key, lab=lab)
    name = key.canonical
    eid = session_id(name) if hash_ids else name
    return Session(eid, key, name, folder, datetime.date.fromisoformat(key.date))


def _cannot_list(folder: str, error: OSError) -> None:
    warnings.warn(f"Cannot list {folder}: {error}", RuntimeWarning, stacklevel=4)


def find_sessions(root: Path, lab: str | None, hash_ids: bool) -> list[Session]:
    """Every session folder under ``root``, the first of each canonical name, in id order.

    A session's lab is read from the folders below ``root`` (``lab`` fills it in when they
    name none).
    """
    found: dict[str, Session] = {}
    folders = sorted(session_folders(root, on_unreadable=_cannot_list), key=lambda f: f[0])
    for folder, key in folders:
        session = _session(folder, key, lab, hash_ids)
        if session.name in found:
            warnings.warn(
                f"Skipping {folder}: same session as {found[session.name].folder}",
                RuntimeWarning,
                stacklevel=3,
            )
            continue
        found[session.name] = session
    return _by_id(found.values())


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
        key = SessionKey.parse(parts)
        if key is None:
            raise SessionFolderError(
                f"{path} is not a session folder ([lab/Subjects/]subject/date/nnn)"
            )
        session = _session(str(folder), key, lab, hash_ids)
        (present if folder.is_dir() else absent)[session.name] = session
    return _by_id(present.values()), _by_id(absent.values())


def _by_id(sessions: Iterable[Session]) -> list[Session]:
    return sorted(sessions, key=lambda s: s.eid)


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
    """Stat the ALF files and the folders of ``sessions``; files sorted by path per session.

    A symbolic link that is broken, loops or leads out of its session is skipped with a
    warning (`one_flows.walk.link_problem`), and so is a folder that cannot be listed (no
    permission, a path longer than PATH_MAX): only its own files are left out.
    """
    scan = Scan(sessions)
    valid_name: dict[str, bool] = {}
    valid_dir = _CollectionCheck()
    for session in sessions:
        eid, session_name = session.eid, session.name
        files: list[tuple[str, int, int]] = []
        # Each folder's mtime is read before its listing: a file added meanwhile changes it.
        for listing in walk(session.folder, mtimes=True, on_unreadable=_cannot_list):
            rel_dir = listing.rel
            scan.dir_eids.append(eid)
            scan.dir_paths.append(rel_dir)
            scan.dir_mtimes.append(listing.mtime_ns)
            if not valid_dir(rel_dir):
                continue
            links = listing.links
            for entry in listing.files + links if links else listing.files:
                name = entry.name
                ok = valid_name.get(name)
                if ok is None:
                    ok = valid_name[name] = is_valid(name) and not is_flag_file(name)
                if not ok:
                    continue
                linked = links and entry.is_symlink()
                if linked and (problem := link_problem(entry.path, session.folder)):
                    warnings.warn(f"Skipping {entry.path}: {problem}", RuntimeWarning, 4)
                    continue
                try:
                    st = entry.stat()
                except OSError:  # vanished, or cannot be stat'ed
                    continue
                rel_path = f"{rel_dir}/{name}" if rel_dir else name
                files.append((rel_path, st.st_size, st.st_mtime_ns))
        files.sort()
        for rel_path, size, mtime in files:
            scan.eids.append(eid)
            scan.names.append(session_name)
            scan.rel_paths.append(rel_path)
            scan.sizes.append(size)
            scan.mtimes.append(mtime)
    return scan
