"""Session folders and session records: dates, numbering and the checks made before sending."""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import json as jsonlib
import os
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

from one_flows.walk import SessionKey

__all__ = [
    "ensure_ISO8601",
    "make_session_folder",
    "session_changes",
    "session_lock",
]

MAX_SESSION_NUMBER = 999


def ensure_ISO8601(date: str | datetime.date | datetime.datetime | None) -> str:
    """The date as an ISO 8601 datetime string; None gives the current time.

    A date becomes midnight of that day. Raises ValueError for a string that is not ISO 8601.
    """
    if date is None:
        date = datetime.datetime.now()
    elif isinstance(date, str):
        try:
            date = datetime.datetime.fromisoformat(date)
        except ValueError:
            raise ValueError(f"not an ISO 8601 date or datetime: {date!r}") from None
    elif not isinstance(date, datetime.datetime):
        if not isinstance(date, datetime.date):
            raise TypeError(f"expected a date, datetime or ISO string, not {type(date).__name__}")
        date = datetime.datetime.combine(date, datetime.time())
    return date.isoformat()


def make_session_folder(
    root: str | os.PathLike[str], subject: str, date: str, taken: Collection[int] = ()
) -> Path:
    """Create and return the next ``root/subject/date/NNN`` folder.

    The number is one more than the highest of the existing folders and of ``taken`` (the
    numbers of sessions recorded elsewhere, such as the target's); the folder is made with
    ``os.mkdir``, so when another process takes that number first this one moves on to the next.
    """
    date_folder = Path(root) / subject / date
    date_folder.mkdir(parents=True, exist_ok=True)
    with os.scandir(date_folder) as entries:
        numbers = [
            int(e.name) for e in entries if e.name.isascii() and e.name.isdigit() and e.is_dir()
        ]
    number = max([*numbers, *taken], default=0) + 1
    while number <= MAX_SESSION_NUMBER:
        folder = date_folder / f"{number:03d}"
        try:
            os.mkdir(folder)
        except FileExistsError:
            number += 1
        else:
            return folder
    raise ValueError(f"no session number left in {date_folder}: ALF numbers stop at 999")


@contextlib.contextmanager
def session_lock(folder: str | os.PathLike[str], target: str, key: SessionKey) -> Iterator[None]:
    """Hold the lock of a session in ``target`` (a target's label) while the block runs.

    The lock is keyed by subject, date and number, which identify a session in Alyx whatever
    its folder is called (``001``, ``01`` or ``1``, with or without ``lab/Subjects``): the
    threads and processes of one machine that share ``folder`` take it one at a time. It is an
    ``flock`` on a file in ``folder``, so the kernel releases it when its holder dies; the last
    holder removes the file.
    """
    name = f"{target}\0{key.subject}\0{key.date}\0{int(key.number)}"
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    path = Path(folder) / f"{key.subject[:64]}_{key.date}_{int(key.number):03d}_{digest}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            # The previous holder may have removed the file after this one opened it.
            held = os.fstat(fd)
            current = os.stat(path)
        except FileNotFoundError:
            os.close(fd)
            continue
        except BaseException:
            os.close(fd)
            raise
        if (held.st_ino, held.st_dev) == (current.st_ino, current.st_dev):
            break
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


def _names(value: str | Iterable[str], field: str) -> list[str]:
    names = [value] if isinstance(value, str) else list(value)
    if not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise ValueError(f"{field} must be a name or a list of names, not {value!r}")
    return names


def _count(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{field} must be a non-negative integer, not {value!r}")
    return value


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a string, not {value!r}")
    return value


def session_changes(
    key: SessionKey, users: str | Iterable[str] | None, options: dict[str, Any]
) -> dict[str, Any]:
    """The session fields given by the caller, checked, in Alyx's names and formats.

    ``options`` are ``register_session``'s keyword arguments; unknown keys are passed on as
    they are. Raises ValueError for a bad value, a lab that differs from the path's, or a start
    time on another day than the path's date, and TypeError for ``subject`` or ``number``.
    """
    options = {k: v for k, v in options.items() if v is not None}
    for reserved in ("subject", "number"):
        if reserved in options:
            raise TypeError(f"{reserved} comes from the session path; do not pass {reserved}=")
    fields: dict[str, Any] = {}
    if users is not None:
        fields["users"] = _names(users, "users")
    lab = options.pop("lab", None)
    if lab is not None:
        _text(lab, "lab")
        if key.lab and lab != key.lab:
            raise ValueError(f'lab "{lab}" does not match the lab in the path ("{key.lab}")')
        fields["lab"] = lab
    start = options.pop("start_time", None)
    if start is not None:
        start = ensure_ISO8601(start)
        if start[:10] != key.date:
            raise ValueError(f"start_time {start} is not on the session's date {key.date}")
        fields["start_time"] = start
    end = options.pop("end_time", None)
    if end is not None:
        end = ensure_ISO8601(end)
        if end < (start or key.date):
            raise ValueError(f"end_time {end} is before the session starts")
        fields["end_time"] = end
    for name in ("procedures", "projects"):
        if name in options:
            fields[name] = _names(options.pop(name), name)
    for name in ("n_trials", "n_correct_trials"):
        if name in options:
            fields[name] = _count(options.pop(name), name)
    if fields.get("n_correct_trials", 0) > fields.get("n_trials", float("inf")):
        raise ValueError("n_correct_trials cannot exceed n_trials")
    for name in ("location", "type", "task_protocol"):
        if name in options:
            fields[name] = _text(options.pop(name), name)
    if "json" in options:
        fields["json"] = _json(options.pop("json"))
    fields.update(options)
    return fields


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            jsonlib.loads(value)
        except ValueError as exc:
            raise ValueError(f"json is a string that does not parse as JSON: {exc}") from None
        return value
    try:
        jsonlib.dumps(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"json cannot be encoded as JSON: {exc}") from None
    return value
