"""Which files of a session can be registered, and as which dataset type.

A file is registrable when its path relative to the session folder is a valid ALF dataset path,
its extension is that of a data format the target knows, and its name matches exactly one
dataset type. Matching follows Alyx: the type's ``filename_pattern`` is an fnmatch pattern
compared without regard to case; a type with an empty pattern matches files whose
``object.attribute`` equals the type's name.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase, translate
from pathlib import Path
from typing import Protocol

from one_flows.alf import filename_parts, is_valid, rel_path_parts
from one_flows.flags import is_flag_file
from one_flows.hashing import UNREADABLE
from one_flows.registration.errors import SessionFolderUnreadable
from one_flows.registration.outcomes import (
    AMBIGUOUS_TYPE,
    NO_DATASET_TYPE,
    NOT_ALF,
    NOT_UTF8,
    UNKNOWN_EXTENSION,
    FileOutcome,
    Outcome,
)
from one_flows.targets import DatasetType
from one_flows.walk import link_problem, walk

__all__ = [
    "Classifier",
    "DatasetTypeMatcher",
    "FoundFiles",
    "glob_matches",
    "name_problem",
    "relative_files",
    "walk_session",
]

logger = logging.getLogger(__name__)


class Classifier(Protocol):
    """Tells whether a path relative to its session folder is registrable, as which type."""

    def classify(self, rel_path: str) -> tuple[str | None, str | None, list[str]]:
        """(dataset type, None, [the type]) for a registrable file, else (None, the reason it
        is not, the matching types when there are several)."""
        ...


class DatasetTypeMatcher:
    """Finds the dataset types of file names, and why a file has none."""

    def __init__(
        self,
        dataset_types: Iterable[DatasetType] | None,
        extensions: frozenset[str] | None = None,
    ) -> None:
        self.extensions = extensions
        self.any_type = dataset_types is None
        self._patterns: list[tuple[str, re.Pattern[str]]] = []
        self._by_name: dict[str, list[str]] = {}
        for dt in dataset_types or ():
            pattern = dt.filename_pattern.strip()
            if pattern:
                self._patterns.append((dt.name, re.compile(translate(pattern.casefold()))))
            else:
                self._by_name.setdefault(dt.name, []).append(dt.name)

    def matches(self, filename: str) -> list[str]:
        """The names of every dataset type that a file name matches."""
        if self.any_type:
            _, obj, attribute, *_ = filename_parts(filename)
            return [f"{obj}.{attribute}"]
        folded = filename.casefold()
        hits = [name for name, regex in self._patterns if regex.match(folded)]
        if is_valid(filename):
            _, obj, attribute, *_ = filename_parts(filename)
            key = f"{obj}.{attribute}"
        else:
            key = filename.rsplit(".", 1)[0]
        return hits + self._by_name.get(key, [])

    def classify(self, rel_path: str) -> tuple[str | None, str | None, list[str]]:
        """Classify a path relative to its session folder.

        Returns (dataset type, None, [the type]) for a registrable file, else
        (None, the reason it is not, the matching types when there are several).
        """
        name = rel_path.rpartition("/")[2]
        if not is_valid(name) or rel_path_parts(rel_path, assert_valid=False)[3] is None:
            return None, NOT_ALF, []
        if self.extensions is not None and os.path.splitext(name)[1] not in self.extensions:
            return None, UNKNOWN_EXTENSION, []
        types = self.matches(name)
        if not types:
            return None, NO_DATASET_TYPE, []
        if len(types) > 1:
            return None, AMBIGUOUS_TYPE, types
        return types[0], None, types


@dataclass
class FoundFiles:
    """The files found under a session folder, split into registrable datasets and the rest.

    Iterating gives the registrable files (as ONE-api's ``find_files`` yields them), in
    lexicographical order. ``skipped`` holds one outcome per other file, with the reason;
    ``candidates`` the dataset types of each file that matched several.
    """

    session_path: Path
    datasets: dict[Path, str] = field(default_factory=dict)
    skipped: list[FileOutcome] = field(default_factory=list)
    candidates: dict[Path, list[str]] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Path]:
        return iter(self.datasets)

    def __len__(self) -> int:
        return len(self.datasets)

    def _skipped_for(self, reason: str) -> list[Path]:
        return [f.path for f in self.skipped if f.reason == reason]

    @property
    def unmatched(self) -> list[Path]:
        """ALF files whose name matches no dataset type."""
        return self._skipped_for(NO_DATASET_TYPE)

    @property
    def ambiguous(self) -> list[Path]:
        """ALF files whose name matches several dataset types."""
        return self._skipped_for(AMBIGUOUS_TYPE)


def relative_files(session_path: Path) -> list[str]:
    """Every file under a session folder, as POSIX paths relative to it, sorted by path
    element; hidden files and folders, and flag files in any state (some are valid ALF names,
    such as ``create_me.flag.done``), are ignored. Symbolic links are listed, except those
    leading to a folder (never followed).

    Raises
    ------
    NotADirectoryError
        ``session_path`` is not a folder.
    SessionFolderUnreadable
        a folder in it cannot be listed.
    """
    if not session_path.is_dir():
        raise NotADirectoryError(f"{session_path} is not a folder")
    rel_paths = []
    for listing in walk(session_path, on_unreadable=_unreadable):
        rel_dir = listing.rel
        prefix = f"{rel_dir}/" if rel_dir else ""
        listing.folders[:] = [e for e in listing.folders if not is_flag_file(e.name)]
        listed = (*listing.files, *listing.links)
        rel_paths += [prefix + e.name for e in listed if not is_flag_file(e.name)]
    # Sorting on the path elements gives the order of sorted Path objects, at a fraction of
    # the cost.
    return sorted(rel_paths, key=lambda rel_path: rel_path.split("/"))


def _unreadable(folder: str, error: OSError) -> None:
    raise SessionFolderUnreadable(folder, error.strerror or str(error)) from error


def name_problem(rel_path: str) -> str | None:
    """Why a path relative to its session folder cannot be registered whatever the file holds:
    a name that is not valid UTF-8 (named with its bytes escaped); None for a good name."""
    try:
        rel_path.encode()
    except UnicodeEncodeError:
        return f"{NOT_UTF8}: {_escaped(rel_path)}"
    return None


def _escaped(text: str) -> str:
    """A file name as text any log or database takes: bytes that are not UTF-8 as ``\\xNN``."""
    return os.fsencode(text).decode("utf-8", "backslashreplace")


def walk_session(session_path: Path, matcher: Classifier) -> FoundFiles:
    """Classify every file under a session folder; hidden files and folders are ignored.

    Files that cannot be read as they are get a skipped outcome with the reason: symbolic links
    that are broken, loop or lead out of the session folder (never read), files whose path is
    longer than the system allows, and names that are not valid UTF-8.

    Raises
    ------
    SessionFolderUnreadable
        a folder in the session cannot be listed.
    """
    found = FoundFiles(session_path)
    for rel_path in relative_files(session_path):
        path = session_path / rel_path
        problem = name_problem(rel_path)
        if problem is None:
            try:
                problem = link_problem(path, session_path) if path.is_symlink() else None
            except OSError as exc:
                problem = f"{UNREADABLE}: {exc.strerror or exc}"
        if problem is not None:
            found.skipped.append(FileOutcome(path, Outcome.SKIPPED, problem, rel_path=rel_path))
            continue
        dataset_type, reason, types = matcher.classify(rel_path)
        if dataset_type is not None:
            found.datasets[path] = dataset_type
            continue
        found.skipped.append(FileOutcome(path, Outcome.SKIPPED, reason, rel_path=rel_path))
        if reason == AMBIGUOUS_TYPE:
            found.candidates[path] = types
    return found


def glob_matches(rel_path: str, pattern: str) -> bool:
    """Whether a POSIX path relative to a folder matches a glob ``pattern``.

    The pattern uses pathlib's syntax: ``*``, ``?`` and ``[...]`` within one path element and
    ``**`` for any number of folders (``**/create_me.flag``).
    """
    states = {_pattern_parts(pattern)}
    for name in rel_path.split("/"):
        states = {rest for state in states for rest in _advance(state, name)}
    return () in states


def _pattern_parts(pattern: str) -> tuple[str, ...]:
    parts = tuple(p for p in Path(pattern).as_posix().split("/") if p not in ("", "."))
    if not parts:
        raise ValueError(f"empty glob pattern {pattern!r}")
    return parts


def _advance(parts: tuple[str, ...], name: str) -> list[tuple[str, ...]]:
    """The pattern remainders after matching one path element ``name`` against ``parts``."""
    if not parts:
        return []
    head, rest = parts[0], parts[1:]
    if head == "**":
        # `**` takes this element and stays, or takes nothing and the next element applies.
        return [parts, *_advance(rest, name)]
    return [rest] if fnmatchcase(name, head) else []
