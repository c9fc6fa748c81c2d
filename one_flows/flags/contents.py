"""What a flag file says: which files of its session to register, and its history.

The format is ibllib's (``ibllib.io.flags``): one path per line, relative to the session folder;
blank lines are ignored and an empty flag means *register every file of the session*.  Beyond
ibllib, surrounding whitespace is ignored, backslashes separate folders (rigs often run Windows),
repeated paths count once and a UTF-8 byte order mark is skipped.

A path is refused, with a :class:`FlagContentError` naming the flag and the line, when it is
absolute (``/x``, ``C:\\x``), holds a ``..`` component, names the session folder itself, holds a
control character, or (when read from disk by :func:`read_flag`) resolves through a symbolic link
to a place outside the session folder.

one-flows appends its own history to a flag it has claimed or failed, as lines starting with
``//one-flows `` followed by a JSON object (``{"event": "failed", "reason": ...}``).  Such a line
would be an absolute path, which is never a valid entry, so no file list can be mistaken for
history.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath
from typing import Any

from one_flows.flags.errors import FlagContentError, FlagLocationError, FlagUnreadable
from one_flows.flags.names import DEFAULT_NAMES, Flag

RECORD_PREFIX = "//one-flows "
"""The start of a history line that one-flows appends to a flag."""

MAX_FLAG_BYTES = 1 << 20
"""Flags are lists of paths; anything larger is refused rather than read into memory."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"[A-Za-z]:")


@dataclass(frozen=True)
class FlagContents:
    """A parsed flag.

    Attributes
    ----------
    files : tuple of PurePosixPath, or None
        The paths to register, relative to the session folder, in the order first written;
        None means every file of the session.
    records : tuple of dict
        The history lines one-flows appended (claims failed, with reasons), oldest first.
    """

    files: tuple[PurePosixPath, ...] | None
    records: tuple[dict[str, Any], ...] = ()

    def covers(self, other: FlagContents) -> bool:
        """True if registering this flag's files registers every file ``other`` asks for."""
        if self.files is None:
            return True
        return other.files is not None and set(other.files) <= set(self.files)


def _entry(flag: str, number: int, line: str) -> PurePosixPath:
    """Return the relative path a stripped, non-empty line names, or raise FlagContentError."""

    def refuse(reason: str) -> FlagContentError:
        return FlagContentError(flag, number, line, reason)

    if _CONTROL.search(line):
        raise refuse("control characters are not allowed in a path")
    text = line.replace("\\", "/")
    if text.startswith("/") or _DRIVE.match(text):
        raise refuse("absolute paths are refused; write paths relative to the session folder")
    parts = [part for part in text.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise refuse("'..' is refused: paths must stay inside the session folder")
    if not parts:
        raise refuse("names the session folder itself, not a file in it")
    return PurePosixPath(*parts)


def _record(flag: str, number: int, line: str) -> dict[str, Any]:
    try:
        record = json.loads(line[len(RECORD_PREFIX) :])
    except ValueError as error:
        raise FlagContentError(flag, number, line, f"history line is not JSON: {error}") from None
    if not isinstance(record, dict):
        raise FlagContentError(flag, number, line, "history line is not a JSON object")
    return record


def _parse(text: str, flag: str) -> tuple[list[tuple[int, PurePosixPath]], list[dict[str, Any]]]:
    entries: dict[PurePosixPath, int] = {}
    records = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith(RECORD_PREFIX):
            records.append(_record(flag, number, line))
        else:
            entries.setdefault(_entry(flag, number, line), number)
    return [(number, path) for path, number in entries.items()], records


def parse_flag_text(text: str, flag: str | os.PathLike[str] = "<flag>") -> FlagContents:
    """Parse the text of a flag; ``flag`` names it in error messages.

    Raises FlagContentError for the first line that is not acceptable (see the module docstring).
    No file system access: symbolic links are checked by :func:`read_flag`.
    """
    entries, records = _parse(text, os.fspath(flag))
    files = tuple(path for _, path in entries) or None
    return FlagContents(files, tuple(records))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or path.is_relative_to(folder)


def _resolved(path: Path, flag: str) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError) as error:  # RuntimeError: a symlink loop before Python 3.13
        raise FlagUnreadable(flag, f"cannot resolve {str(path)!r}: {error}") from None


def read_flag_text(path: str | os.PathLike[str]) -> str:
    """Return the decoded text of a flag file, or raise FlagUnreadable saying why not."""
    flag = os.fspath(path)
    try:
        with open(flag, "rb") as stream:
            data = stream.read(MAX_FLAG_BYTES + 1)
    except OSError as error:
        raise FlagUnreadable(flag, f"cannot read: {error.strerror or error}") from None
    if len(data) > MAX_FLAG_BYTES:
        raise FlagUnreadable(flag, f"larger than {MAX_FLAG_BYTES} bytes: not a list of paths")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise FlagUnreadable(
            flag, f"not UTF-8 text: byte 0x{data[error.start]:02x} at offset {error.start}"
        ) from None


def read_flag(
    flag: Flag | str | os.PathLike[str], root: str | os.PathLike[str] | None = None
) -> FlagContents:
    """Read and check a flag file: which files of its session to register, and its history.

    ``flag`` is a :class:`Flag` (or a :class:`~one_flows.flags.claims.Claim`'s ``flag``) or the
    path of a flag file in its session folder.  Every listed path must resolve, following
    symbolic links, inside the session folder; with ``root``, the session folder must also
    resolve inside ``root``.  Listed files need not exist: registration reports missing ones.

    Raises FlagUnreadable, FlagContentError or FlagLocationError.
    """
    path = flag.path if isinstance(flag, Flag) else Path(flag)
    session = flag.session_path if isinstance(flag, Flag) else path.parent
    name = os.fspath(path)
    entries, records = _parse(read_flag_text(path), name)
    real_session = _resolved(session, name)
    if root is not None and not _inside(real_session, _resolved(Path(root), name)):
        raise FlagLocationError(name, f"session folder resolves outside the data root {root}")
    for number, entry in entries:
        if not _inside(_resolved(session / entry, name), real_session):
            raise FlagContentError(
                name,
                number,
                entry.as_posix(),
                "resolves through a symbolic link outside the session",
            )
    files = tuple(path for _, path in entries) or None
    return FlagContents(files, tuple(records))


def format_flag(files: Iterable[str | PurePath] | None) -> str:
    """Return the text of a flag listing ``files`` (None or empty: every file of the session).

    Raises FlagContentError for a path that :func:`parse_flag_text` would refuse.
    """
    lines = []
    for number, file in enumerate(files or (), start=1):
        text = PurePath(file).as_posix()
        if text != text.strip():
            raise FlagContentError("<new flag>", number, text, "surrounding whitespace is ignored")
        lines.append(_entry("<new flag>", number, text).as_posix())
    return "".join(f"{line}\n" for line in lines)


def write_flag(
    session_path: str | os.PathLike[str],
    files: Iterable[str | PurePath] | None = None,
    name: str = DEFAULT_NAMES[0],
) -> Path:
    """Write flag ``name`` in a session folder, atomically, and return its path.

    The flag appears complete or not at all (written to a hidden file, then renamed), so a
    scanner never claims a half-written list.  An existing flag of that name is replaced.
    """
    folder = Path(session_path)
    text = format_flag(files)
    target = folder / name
    temporary = folder / f".{name}.{os.getpid()}.tmp"
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, target)
    return target


def format_record(record: Mapping[str, Any]) -> str:
    """Return the history line of ``record``, newline included."""
    return f"{RECORD_PREFIX}{json.dumps(dict(record), sort_keys=True, default=str)}\n"


def append_record(path: str | os.PathLike[str], record: Mapping[str, Any]) -> None:
    """Append a history line to an existing flag file, on a line of its own.

    Raises FileNotFoundError if the flag is gone (it is never created here).
    """
    descriptor = os.open(path, os.O_RDWR | os.O_APPEND)
    with os.fdopen(descriptor, "r+b") as stream:
        size = stream.seek(0, os.SEEK_END)
        prefix = b""
        if size:
            stream.seek(size - 1)
            prefix = b"" if stream.read(1) == b"\n" else b"\n"
        stream.write(prefix + format_record(record).encode("utf-8"))
