"""The registration target interface: what the RegistrationClient needs from a database.

A target knows the dataset types, finds, creates and updates session records, registers batches
of files and records animal care. `AlyxTarget` speaks Alyx's REST API; `LocalTarget` writes ONE
cache tables. Code that registers data talks to `RegistrationTarget` and never asks which one
it holds.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from one_flows.alf import rel_path_parts

# The errors the interface raises, defined with the rest of the targets' tree.
from one_flows.targets.errors import (
    ProtectedDatasets,
    RegistrationRefused,
    RepositoryNotFound,
    TargetUnavailable,
)

__all__ = [
    "DatasetType",
    "FileBatch",
    "ProtectedDatasets",
    "RegisteredDataset",
    "RegistrationRefused",
    "RegistrationTarget",
    "RepositoryNotFound",
    "TargetUnavailable",
    "dataset_record",
    "preferred_session",
]


@dataclass(frozen=True, slots=True)
class DatasetType:
    """A dataset type: files whose name matches ``filename_pattern`` (an fnmatch pattern, case
    ignored) are of this type; an empty pattern matches files whose ``object.attribute`` is
    ``name``."""

    name: str
    filename_pattern: str = ""


def dataset_record(dataset_id: str, rel_path: str, **fields: Any) -> dict[str, Any]:
    """A dataset record under Alyx's keys: ``id``, then ``name``, ``collection`` and
    ``revision`` read from ``rel_path`` (relative to the session folder), then ``fields``."""
    collection, revision, *_ = rel_path_parts(rel_path, assert_valid=False)
    return {
        "id": dataset_id,
        "name": rel_path.rpartition("/")[2],
        "collection": collection or "",
        "revision": revision or "",
        **fields,
    }


def preferred_session(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The record to use among several of one session (subject, date and number).

    The latest start time, then the smallest id: every machine picks the same one.
    """
    by_id = sorted(records, key=lambda r: r["id"])
    return max(by_id, key=lambda r: str(r.get("start_time") or ""))


@dataclass(frozen=True, slots=True)
class RegisteredDataset:
    """A dataset a target already holds for a session.

    ``rel_path`` is relative to the session folder (``collection/#revision#/name``); ``hash`` is
    None when the dataset was registered without one; ``repositories`` names the data
    repositories holding its file (a file record that exists). ``exists`` is False once the
    target was told its file is gone (`RegistrationTarget.mark_missing`).
    """

    id: str
    rel_path: str
    hash: str | None
    file_size: int | None
    repositories: frozenset[str] = frozenset()
    exists: bool = True


@dataclass(slots=True)
class FileBatch:
    """The files of one session to register in one request, with what to record about them.

    ``filenames`` are relative to the session folder and may carry a collection and a
    ``#revision#`` folder; ``hashes``, ``sizes`` and ``versions`` run parallel to them.
    ``session_path`` is ``subject/YYYY-MM-DD/NNN`` as in the local folder, and ``lab`` the lab
    folder it sits in (None when the path has no ``lab/Subjects``).
    """

    session_path: str
    filenames: list[str]
    hashes: list[str | None]
    sizes: list[int]
    versions: list[str | None]
    lab: str | None = None
    created_by: str | None = None
    repository: str | None = None
    exists: bool = True
    server_only: bool = False
    default: bool = True
    check_protected: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.filenames)
        if not len(self.hashes) == len(self.sizes) == len(self.versions) == n:
            raise ValueError(
                f"a batch needs one hash, size and version per file name: {n} names, "
                f"{len(self.hashes)} hashes, {len(self.sizes)} sizes, {len(self.versions)} versions"
            )

    def payload(self) -> dict[str, Any]:
        """The body of Alyx's ``POST /register-file``, exactly as ONE-api's RegistrationClient
        builds it."""
        body: dict[str, Any] = {
            "created_by": self.created_by,
            "path": self.session_path,
            "filenames": list(self.filenames),
            "hashes": list(self.hashes),
            "filesizes": list(self.sizes),
            "name": self.repository,
            "exists": self.exists,
            "server_only": self.server_only,
            "default": self.default,
            "versions": list(self.versions),
            "check_protected": self.check_protected,
            **self.extra,
        }
        if self.lab and "labs" not in self.extra:
            body["labs"] = self.lab
        return body

    def subset(self, indices: list[int], **changes: Any) -> FileBatch:
        """A batch of the files at ``indices``, with the other fields copied or changed."""
        fields = {
            "session_path": self.session_path,
            "filenames": [self.filenames[i] for i in indices],
            "hashes": [self.hashes[i] for i in indices],
            "sizes": [self.sizes[i] for i in indices],
            "versions": [self.versions[i] for i in indices],
            "lab": self.lab,
            "created_by": self.created_by,
            "repository": self.repository,
            "exists": self.exists,
            "server_only": self.server_only,
            "default": self.default,
            "check_protected": self.check_protected,
            "extra": dict(self.extra),
        }
        fields.update(changes)
        return FileBatch(**fields)


@runtime_checkable
class RegistrationTarget(Protocol):
    """Where sessions, datasets and animal-care records are registered.

    Records are dicts with Alyx's field names; a session record has at least ``id``,
    ``subject``, ``number`` and ``start_time``. Faults that may go away (a dropped connection)
    propagate as the target's transient errors; a refused batch of files raises
    `RegistrationRefused` or `ProtectedDatasets`.
    """

    @property
    def user(self) -> str | None:
        """The user name registrations are made as, when the target knows one."""
        ...

    @property
    def label(self) -> str:
        """A short description of the target for logs and events, e.g. ``alyx:https://...``."""
        ...

    def check(self, repository: str | None = None) -> None:
        """Make sure the target can be used before anything is claimed or sent: for a database,
        one cheap authenticated request, and that it has the data ``repository`` when named.

        Parameters
        ----------
        repository : str or None
            The data repository files will be registered into, for a target that has them.

        Raises
        ------
        TargetUnavailable
            it cannot be used (unreachable, no or bad credentials, failing);
            the message names the cause and what to do, the error that showed it is the
            ``__cause__``.
        RepositoryNotFound
            it has no data repository named ``repository``; the message names those it has.
        """
        ...

    def dataset_types(self) -> list[DatasetType] | None:
        """All dataset types, whose patterns decide which files can be registered; None when
        every valid ALF file is a dataset, of type ``object.attribute``."""
        ...

    def file_extensions(self) -> frozenset[str] | None:
        """The file extensions (``.npy``) datasets may have, or None when any is accepted."""
        ...

    def lookup(self, endpoint: str, member: str) -> dict[str, Any] | None:
        """The record named ``member`` in ``endpoint`` (``subjects``, ``users``, ...), or None."""
        ...

    def find_sessions(
        self, subject: str, date: str, number: int | None = None, lab: str | None = None
    ) -> list[dict[str, Any]]:
        """The session records of a subject on a date (``YYYY-MM-DD``) with that number (any
        number when None)."""
        ...

    def session_record(self, eid: str) -> dict[str, Any] | None:
        """The full record of a session, as creating or updating it returns it (Alyx's search
        answers a short one); None when there is no such session."""
        ...

    def create_session(self, record: dict[str, Any]) -> dict[str, Any]:
        """Create a session record; returns it as stored."""
        ...

    def update_session(self, eid: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change fields of an existing session record; returns it as stored."""
        ...

    def session_datasets(self, eid: str) -> list[RegisteredDataset]:
        """The datasets registered to a session."""
        ...

    def holds(self, eid: str, dataset_ids: Collection[str]) -> bool:
        """Whether the target still holds session ``eid`` with these datasets, when it can tell
        without a request (local tables); True when it cannot, trusting what this machine
        registered there (see `one_flows.registration.ledger`)."""
        ...

    def mark_missing(self, eid: str, rel_paths: list[str]) -> bool:
        """Record that the files of these datasets of a session (paths relative to the session
        folder) are gone from it; returns whether the target recorded it."""
        ...

    def register_files(self, batch: FileBatch) -> list[dict[str, Any]]:
        """Register (create or update) one batch of files of a session.

        Returns one dataset record per file name, in order; each has at least ``id``, ``name``,
        ``collection`` and ``revision``.
        """
        ...

    def register_weight(self, record: dict[str, Any]) -> dict[str, Any]:
        """Record a weighing: ``subject``, ``date_time``, ``weight`` (g), ``user``."""
        ...

    def register_water_administration(self, record: dict[str, Any]) -> dict[str, Any]:
        """Record water given: ``subject``, ``date_time``, ``water_administered`` (ml),
        ``water_type``, ``user``, ``adlib`` and optionally ``session``."""
        ...
