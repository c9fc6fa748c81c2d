"""Parse ALF paths into their parts, and rewrite the parts of an ALF path.

The parsers return a tuple of parts in path order, or with ``as_dict=True`` an ordered mapping
of part name to value; parts absent from the path are None.  With ``assert_valid=True`` (the
default) a path that does not follow the specification raises an
:class:`~one_flows.alf.errors.ALFInvalid` subclass naming the broken part; with
``assert_valid=False`` every part is None instead.

Inputs may be str or :class:`pathlib.PurePath`; backslashes are read as folder separators.
Functions returning a path return :class:`pathlib.Path` for str input and the input's own class
for path input.
"""

from __future__ import annotations

import logging
import pathlib
import re
from collections import OrderedDict
from datetime import datetime
from typing import TypeVar
from uuid import UUID

from one_flows.alf.errors import (
    ALFInvalidFilename,
    ALFInvalidPart,
    ALFInvalidPath,
    ALFUUIDMismatch,
)
from one_flows.alf.spec import (
    COLLECTION_SPEC,
    FILE_SPEC,
    FILENAME_PARTS,
    FOLDER_PARTS,
    PART_PATTERNS,
    REL_PATH_PARTS,
    REL_PATH_SPEC,
    SESSION_PARTS,
    SESSION_SPEC,
    _as_posix,
    is_uuid,
    is_uuid_string,
    regex,
)

_logger = logging.getLogger(__name__)

Parts = tuple[str | None, ...] | OrderedDict[str, str | None]
"""Parsed parts: a tuple in path order, or an ordered mapping of part name to value."""
P = TypeVar("P", bound=pathlib.PurePath)

_SESSION_RE = regex(SESSION_SPEC)
_FOLDER_RE = regex(SESSION_SPEC + "/" + COLLECTION_SPEC)
_REL_PATH_RE = regex(REL_PATH_SPEC)
_FILENAME_RE = regex(FILE_SPEC)
_REVISION_RE = re.compile(PART_PATTERNS["revision"])
_FOLDER_NAME_RE = re.compile(r"[\w.-]+")
# A file name's first piece: optional _namespace_ then the object.
_FILE_HEAD_RE = re.compile(r"_?(?:(?<=_)[a-zA-Z0-9]+(?=_))?_?\w+")
_ATTRIBUTE_RE = re.compile(PART_PATTERNS["attribute"])


def _result(values: dict[str, str | None], as_dict: bool) -> Parts:
    return OrderedDict(values) if as_dict else tuple(values.values())


def _empty(names: tuple[str, ...], as_dict: bool) -> Parts:
    return _result(dict.fromkeys(names), as_dict)


# ---------------------------------------------------------------------------------------------
# Diagnosis: which part of an invalid path broke.  Only used to word error messages.
# ---------------------------------------------------------------------------------------------


def _filename_fault(name: str) -> tuple[str | None, str]:
    """Name the first part of an invalid file name that breaks the grammar, and why."""
    pieces = name.split(".")
    if "/" in name:
        return None, "a file name must not contain '/'"
    if len(pieces) < 3:
        return "attribute", "an ALF file name needs at least object.attribute.extension"
    head, middle, *extras, extension = pieces
    if _FILE_HEAD_RE.fullmatch(head) is None:
        bad_namespace = head.startswith("_") and "_" in head[1:]
        part = "namespace" if bad_namespace else "object"
        return part, f"{head!r} is not a valid (_namespace_)object"
    if not re.fullmatch(rf"(?:{PART_PATTERNS['attribute']})(?:_\w+)?\.", middle + "."):
        attribute = _ATTRIBUTE_RE.match(middle + ".")
        part = "timescale" if attribute and middle[attribute.end() :][:1] == "_" else "attribute"
        return part, f"{middle!r} is not a valid attribute(_timescale)"
    for extra in extras:
        if re.fullmatch(r"[\w-]*", extra) is None:
            return "extra", f"extra part {extra!r} may hold only word characters and '-'"
    if re.fullmatch(r"\w+", extension) is None:
        return "extension", f"extension {extension!r} may hold only word characters"
    return None, "does not match the ALF file name pattern"


def _folders_fault(folders: list[str], session: bool, collections: bool) -> tuple[str | None, str]:
    """Name the first broken part of a list of folder names, and why.

    With ``session`` the folders must hold a session path; with ``collections`` the folders
    after it must be collection folders and at most one final revision folder.
    """
    rest = folders
    if session:
        date = PART_PATTERNS["date"]
        dates = [i for i, folder in enumerate(folders) if re.fullmatch(date, folder)]
        if not dates:
            return "date", "no YYYY-MM-DD date folder found"
        i = dates[0]
        if i == 0 or not _FOLDER_NAME_RE.fullmatch(folders[i - 1]):
            return "subject", "a valid subject folder must precede the date folder"
        if i + 1 >= len(folders) or not re.fullmatch(PART_PATTERNS["number"], folders[i + 1]):
            return "number", "the date folder must be followed by a 1 to 3 digit session number"
        rest = folders[i + 2 :]
    if not collections:
        return None, "does not match the ALF session path pattern"
    for j, folder in enumerate(rest):
        if folder.startswith("#") or folder.endswith("#"):
            if j != len(rest) - 1:
                return "revision", "the revision folder must be the last folder"
            if not (
                len(folder) > 2 and folder.endswith("#") and _REVISION_RE.fullmatch(folder[1:-1])
            ):
                return "revision", f"{folder!r} is not a valid #revision# folder"
        elif not _FOLDER_NAME_RE.fullmatch(folder):
            return "collection", f"{folder!r} is not a valid collection folder"
    return None, "does not match the ALF path pattern"


def _raise_invalid(text: str, kind: str) -> None:
    """Raise the ALFInvalid subclass that describes why ``text`` is not a valid ``kind``."""
    if not text:
        raise ALFInvalidPath(f"an empty path is not a valid ALF {kind}", text)
    if kind == "file name":
        part, reason = _filename_fault(text)
    else:
        folders, _, name = text.strip("/").rpartition("/")
        has_file = kind in ("relative path", "dataset path")
        if not has_file:
            folders = text.strip("/")
        part, reason = _folders_fault(
            [f for f in folders.split("/") if f] if folders else [],
            session=kind in ("session path", "folder path", "dataset path"),
            collections=kind != "session path",
        )
        if part is None and has_file:
            part, reason = _filename_fault(name)
    error = ALFInvalidFilename if part in FILENAME_PARTS or kind == "file name" else ALFInvalidPath
    raise error(f"not a valid ALF {kind}: {reason}", text, part=part)


# ---------------------------------------------------------------------------------------------
# Parsers
# ---------------------------------------------------------------------------------------------


def _parse(
    match: re.Match[str] | None,
    text: str,
    names: tuple[str, ...],
    kind: str,
    as_dict: bool,
    assert_valid: bool,
) -> Parts:
    if match is not None:
        return _result({name: match[name] for name in names}, as_dict)
    if assert_valid:
        _raise_invalid(text, kind)
    return _empty(names, as_dict)


def session_path_parts(
    session_path: str | pathlib.PurePath, as_dict: bool = False, assert_valid: bool = True
) -> Parts:
    """Parse the session parts (lab, subject, date, number) found anywhere in a path."""
    text = _as_posix(session_path)
    match = _SESSION_RE.search(text)
    return _parse(match, text, SESSION_PARTS, "session path", as_dict, assert_valid)


def folder_parts(
    folder_path: str | pathlib.PurePath, as_dict: bool = False, assert_valid: bool = True
) -> Parts:
    """Parse a folder path into lab, subject, date, number, collection and revision.

    Like ONE-api, folders after the first run of collection and revision folders are ignored.
    """
    text = _as_posix(folder_path)
    match = _match_folder(text)
    return _parse(match, text, FOLDER_PARTS, "folder path", as_dict, assert_valid)


def _match_folder(text: str) -> re.Match[str] | None:
    return _FOLDER_RE.search(text if text.endswith("/") or not text else text + "/")


def rel_path_parts(
    rel_path: str | pathlib.PurePath, as_dict: bool = False, assert_valid: bool = True
) -> Parts:
    """Parse a session-relative dataset path (collection/#revision#/file name) into its parts."""
    text = _as_posix(rel_path)
    match = _REL_PATH_RE.match(text)
    return _parse(match, text, REL_PATH_PARTS, "relative path", as_dict, assert_valid)


def filename_parts(
    filename: str | pathlib.PurePath, as_dict: bool = False, assert_valid: bool = True
) -> Parts:
    """Parse a dataset file name into namespace, object, attribute, timescale, extra, extension.

    >>> filename_parts('_ibl_trials.goCue_times_bpod.csv')
    ('ibl', 'trials', 'goCue_times', 'bpod', None, 'csv')
    """
    text = _as_posix(filename)
    match = _FILENAME_RE.match(text)
    return _parse(match, text, FILENAME_PARTS, "file name", as_dict, assert_valid)


def full_path_parts(
    path: str | pathlib.PurePath, as_dict: bool = False, assert_valid: bool = True
) -> Parts:
    """Parse all twelve ALF parts of a dataset path, a folder path or a bare file name.

    A last path element holding fewer than two periods is read as a folder, so a folder path
    gives None file name parts and a bare file name gives None folder parts.

    >>> full_path_parts('lab/Subjects/sub/2020-01-01/001/alf/#v1#/_ns_obj.attr_clock.x.npy')
    ('lab', 'sub', '2020-01-01', '001', 'alf', 'v1', 'ns', 'obj', 'attr', 'clock', 'x', 'npy')
    """
    # Collapse '//' and '.' elements as pathlib does.
    posix = pathlib.PurePosixPath(_as_posix(path)).as_posix()
    folder, _, name = posix.rpartition("/")
    if name.count(".") < 2:
        folder, name = posix, ""
    elif not folder and not posix.startswith("/"):
        folders = _empty(FOLDER_PARTS, as_dict)
        return _joined(folders, filename_parts(name, as_dict, assert_valid))
    match = _match_folder(folder or "/")
    # ONE-api ignores whatever follows the first run of collection and revision folders; here
    # the folders must match up to the end.
    valid_file = not name or _FILENAME_RE.match(name) is not None
    if assert_valid and (match is None or match.end() != len(folder) + 1 or not valid_file):
        _raise_invalid(posix, "dataset path" if name else "folder path")
    folders = _parse(match, folder, FOLDER_PARTS, "folder path", as_dict, assert_valid=False)
    if not name:
        return _joined(folders, _empty(FILENAME_PARTS, as_dict))
    return _joined(folders, filename_parts(name, as_dict, assert_valid=False))


def _joined(folders: Parts, files: Parts) -> Parts:
    if isinstance(folders, OrderedDict):
        return OrderedDict([*folders.items(), *files.items()])
    return folders + files


# ---------------------------------------------------------------------------------------------
# Session paths
# ---------------------------------------------------------------------------------------------


def _to_path(path: str | pathlib.PurePath) -> pathlib.PurePath:
    """Return str as a pathlib.Path, and path objects as the same class, backslashes as '/'."""
    if isinstance(path, pathlib.PureWindowsPath):
        return path
    if isinstance(path, pathlib.PurePath):
        return type(path)(_as_posix(path))
    return pathlib.Path(_as_posix(path))


def _is_date(text: str) -> bool:
    try:
        datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        return False
    return True


def get_session_path(path: str | pathlib.PurePath | None) -> pathlib.PurePath | None:
    """Return the path up to and including the session number folder, or None if absent.

    The session is the first folder of digits that follows a real calendar date folder, so
    ``2026-02-30`` is rejected here while the parsers, which check the shape only, accept it.

    >>> get_session_path('/data/lab/Subjects/sub/2020-01-01/001/alf/spikes.times.npy')
    PosixPath('/data/lab/Subjects/sub/2020-01-01/001')
    """
    if path is None:
        return None
    path = _to_path(path)
    parts = path.parts
    for i in range(1, len(parts)):
        if parts[i].isascii() and parts[i].isdigit() and _is_date(parts[i - 1]):
            return type(path)(*parts[: i + 1])
    return None


def _require_session(path: pathlib.PurePath) -> pathlib.PurePath:
    session = get_session_path(path)
    if session is None:
        raise ALFInvalidPath(
            "no session found: expected subject/YYYY-MM-DD/N with a real date",
            path.as_posix(),
            part="date",
        )
    return session


def get_alf_path(path: str | pathlib.PurePath) -> str | None:
    """Return the ALF part of a path: from the session path on, else the relative path or name.

    Returns None when not even the last element is a valid ALF file name.
    """
    text = _as_posix(path).strip("/")
    session = _SESSION_RE.search(text)
    if session is not None:
        return text[session.start() :]
    name = text.rpartition("/")[2]
    if _FILENAME_RE.match(name) is None:
        return None
    return text if _REL_PATH_RE.match(text) else name


def padded_sequence(file_path: str | P) -> P | pathlib.Path:
    """Return the path with its session number folder zero-padded to three digits.

    >>> padded_sequence('sub/2023-01-01/1/_ibl_experiment.description.yaml')
    PosixPath('sub/2023-01-01/001/_ibl_experiment.description.yaml')
    """
    path = _to_path(file_path)
    session = _require_session(path)
    number = str(int(session.parts[-1])).zfill(3)
    return type(path)(*session.parts[:-1], number, *path.parts[len(session.parts) :])


def _collection_folder(folder: pathlib.PurePath) -> pathlib.PurePath:
    """Return session folder/collection of an ALF folder path, dropping any revision."""
    collection = folder_parts(folder, as_dict=True)["collection"]
    return _require_session(folder).joinpath(*filter(None, [collection]))


def without_revision(file_path: str | P) -> P | pathlib.Path:
    """Return the dataset path with its revision folder removed.

    >>> without_revision('sub/2023-01-01/001/alf/#v1#/obj.attr.npy')
    PosixPath('sub/2023-01-01/001/alf/obj.attr.npy')
    """
    path = _to_path(file_path)
    return _collection_folder(path.parent).joinpath(path.name)


def with_revision(file_path: str | P, revision: str) -> P | pathlib.Path:
    """Return the path with its revision folder set to ``revision`` (given without pound signs).

    Works on dataset paths and on folder paths (which get the revision folder appended); the
    path must hold a session.

    >>> with_revision('sub/2023-01-01/001/alf/obj.attr.npy', 'v2')
    PosixPath('sub/2023-01-01/001/alf/#v2#/obj.attr.npy')
    """
    if not isinstance(revision, str) or not _REVISION_RE.fullmatch(revision):
        raise ALFInvalidPart(
            f"a revision must match {PART_PATTERNS['revision']!r}", repr(revision), part="revision"
        )
    path = _to_path(file_path)
    if _FILENAME_RE.match(path.name) is None:
        return _collection_folder(path) / f"#{revision}#"
    return _collection_folder(path.parent) / f"#{revision}#" / path.name


# ---------------------------------------------------------------------------------------------
# Dataset UUIDs in file names
# ---------------------------------------------------------------------------------------------


def add_uuid_string(file_path: str | P, uuid: str | UUID, strict: bool = False) -> P | pathlib.Path:
    """Insert a dataset UUID as the last extra part of the file name.

    An existing v3/v4 UUID in that position is replaced, or with ``strict`` raises
    :class:`ALFUUIDMismatch` when it differs.

    >>> add_uuid_string('a/obj.attr.npy', '2622b17c-9408-4910-99cb-abf16d9225b9')
    PosixPath('a/obj.attr.2622b17c-9408-4910-99cb-abf16d9225b9.npy')
    """
    if not (isinstance(uuid, UUID) or is_uuid_string(uuid)):
        raise ALFInvalidPart(
            "expected a UUID or a lower-case hyphenated UUID string", repr(uuid), part="uuid"
        )
    uuid = str(uuid)
    path = _to_path(file_path)
    *stem, last = path.stem.split(".")
    if is_uuid(last):
        if last == uuid:
            _logger.warning("UUID already in file name %s: unchanged", path.name)
            return path
        if strict:
            raise ALFUUIDMismatch(f"holds UUID {last}, not {uuid}", path.name, part="uuid")
        _logger.debug("Replacing UUID %s with %s in %s", last, uuid, path)
    else:
        stem.append(last)
    return path.parent / f"{'.'.join([*stem, uuid])}{path.suffix}"


def remove_uuid_string(file_path: str | P) -> P | pathlib.Path:
    """Return the path without the UUID that ends its file name stem, if there is one."""
    path = _to_path(file_path)
    *stem, last = path.stem.split(".")
    if not is_uuid_string(last):
        return path
    if not stem and not path.suffix:
        raise ALFInvalidFilename("the file name is only a UUID", path.as_posix(), part="extra")
    return path.with_name(".".join(stem) + path.suffix)
