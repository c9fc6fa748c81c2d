"""What registration did to each file and each session: outcomes, not exceptions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from one_flows.targets.base import dataset_record
from one_flows.walk import BROKEN_LINK, LINK_LEAVES_SESSION, LINK_LOOP  # the links not read

__all__ = [
    "AMBIGUOUS_TYPE",
    "BROKEN_LINK",
    "LINK_LEAVES_SESSION",
    "LINK_LOOP",
    "NOT_ALF",
    "NOT_IN_SESSION",
    "NOT_UTF8",
    "NO_DATASET_TYPE",
    "PROTECTED",
    "UNKNOWN_EXTENSION",
    "FileOutcome",
    "Outcome",
    "RegisteredFiles",
    "SessionReport",
    "unchanged_record",
]

NOT_ALF = "not an ALF file name"
NOT_IN_SESSION = "not inside a subject/date/number session folder"
UNKNOWN_EXTENSION = "file extension of no data format"
NO_DATASET_TYPE = "matches no dataset type"
AMBIGUOUS_TYPE = "matches several dataset types"
PROTECTED = "protected dataset"
NOT_UTF8 = "file name is not valid UTF-8"


class Outcome(StrEnum):
    """What happened to one file."""

    CREATED = "created"
    """Registered by this call: a new dataset, or an existing one given a new hash or size."""
    UNCHANGED = "unchanged"
    """Already registered with the same size and hash; nothing was sent."""
    SKIPPED = "skipped"
    """Not registrable as it is (see the reason); nothing was sent."""
    FAILED = "failed"
    """Sent, and refused by the target (see the reason: the target's answer)."""


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """The outcome of registering one file.

    ``path`` is where the file is now; ``moved_from`` where it was, when a protected dataset
    made registration move it into a new revision folder (as ONE-api does). ``rel_path`` is the
    path relative to the session folder, as registered. ``dataset`` is the dataset's record:
    the target's answer for a created file; for an unchanged file, which was not sent again, what
    is known of it without asking (``id``, ``name``, ``collection``, ``revision``,
    ``dataset_type``, ``file_size``: keys of the target's records).
    """

    path: Path
    status: Outcome
    reason: str | None = None
    rel_path: str | None = None
    dataset_type: str | None = None
    md5: str | None = None
    size: int | None = None
    dataset: dict[str, Any] | None = None
    moved_from: Path | None = None

    @property
    def registered(self) -> bool:
        """Whether the target holds the file as it is (created or unchanged)."""
        return self.status in (Outcome.CREATED, Outcome.UNCHANGED)


def unchanged_record(
    dataset_id: str, rel_path: str, dataset_type: str | None, size: int | None
) -> dict[str, Any]:
    """The record of a file the target holds as it is, which is not sent again: what is known
    of its dataset without asking, under the keys of Alyx's ``register-file`` records."""
    return dataset_record(dataset_id, rel_path, dataset_type=dataset_type, file_size=size)


def _counts(outcomes: Iterable[FileOutcome]) -> dict[Outcome, int]:
    tally = Counter(f.status for f in outcomes)
    return {status: tally.get(status, 0) for status in Outcome}


class RegisteredFiles(list):
    """What ``register_files`` returns for several files: ONE-api's list of dataset records, one
    per input file in input order (None for a file not registered, as ONE-api), and
    ``outcomes``, one `FileOutcome` per input file in the same order, saying what happened to
    each and why.

    >>> records = client.register_files(paths)
    >>> records[0]["id"], records.outcomes[0].status, records.counts[Outcome.SKIPPED]
    """

    def __init__(self, outcomes: Iterable[FileOutcome]) -> None:
        self.outcomes: list[FileOutcome] = list(outcomes)
        super().__init__(o.dataset if o.registered else None for o in self.outcomes)

    @property
    def counts(self) -> dict[Outcome, int]:
        """Number of files per outcome, every outcome present."""
        return _counts(self.outcomes)


@dataclass(slots=True)
class SessionReport:
    """The outcome of registering one session: its record and one outcome per file.

    ``session`` is the session record as the target returns it (Alyx's full record, also for a
    session that existed). ``created`` tells whether this call created the session record
    (False: it existed and was updated). ``error`` is set only by the batch methods
    (``register_sessions``, ``create_sessions``) when something stopped this session; other
    sessions went on. ``attempts`` counts the tries it took, where a caller retries (the Prefect
    task does). ``with_files`` is False when no file registration was asked (``file_list=False``).
    ``from_ledger`` tells that the registration ledger vouched for the session and its files,
    so nothing was asked of or sent to the target.

    A report unpacks as ONE-api's ``register_session`` answer, ``session, records = report``
    (also ``report[0]``, ``report[1]``): see `records`.

    ``duplicates`` holds the ids of other records the target holds for the same session
    (subject, date and number), which registration did not use: they should be deleted (Alyx
    does not prevent two machines from creating one session twice). ``deleted`` holds the paths,
    relative to the session folder, of datasets registered to the session whose file is no longer
    in the folder (looked for when the whole folder is registered).
    """

    session_path: Path
    session: dict[str, Any] | None = None
    created: bool = False
    files: list[FileOutcome] = field(default_factory=list)
    error: BaseException | None = None
    attempts: int = 1
    from_ledger: bool = False
    duplicates: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    with_files: bool = True

    def __iter__(self) -> Iterator[Any]:
        """The session record and `records`, as ONE-api's ``register_session`` returns them: the
        record's ``data_dataset_session_related`` is the records, when there are any."""
        records = self.records
        session = self.session
        if session is not None and records:
            session = {**session, "data_dataset_session_related": records}
        return iter((session, records))

    def __getitem__(self, index: int) -> Any:
        return tuple(self)[index]

    @property
    def records(self) -> list[dict[str, Any]] | None:
        """The dataset records of the files the target holds as they are (created or unchanged,
        see `FileOutcome.dataset`), in ``files`` order; None without file registration, as
        ONE-api's (or without a session record). Files skipped or failed have none: ``files``
        says why."""
        if not self.with_files or self.session is None:
            return None
        return [f.dataset for f in self.files if f.registered and f.dataset is not None]

    @property
    def eid(self) -> str | None:
        """The session's id in the target, when it has a record."""
        return None if self.session is None else self.session.get("id")

    @property
    def counts(self) -> dict[Outcome, int]:
        """Number of files per outcome, every outcome present."""
        return _counts(self.files)

    @property
    def ok(self) -> bool:
        """Whether the session was registered and no file failed."""
        return (
            self.error is None
            and self.session is not None
            and all(f.status is not Outcome.FAILED for f in self.files)
        )

    def by_status(self, status: Outcome | str) -> list[FileOutcome]:
        """The outcomes of the files with that status."""
        return [f for f in self.files if f.status == status]

    def summary(self) -> str:
        """One line: the session path, the record's fate and the file counts."""
        if self.error is not None:
            return f"{self.session_path}: failed: {self.error}"
        counts = ", ".join(f"{n} {status}" for status, n in self.counts.items())
        if self.from_ledger:
            action = "unchanged as this machine's ledger records it, nothing sent"
        else:
            action = "created" if self.created else "updated"
        line = f"{self.session_path}: session {self.eid} {action}; files: {counts}"
        if self.duplicates:
            line += f"; duplicate session records: {', '.join(self.duplicates)}"
        if self.deleted:
            line += f"; {len(self.deleted)} registered files gone from the folder"
        return line
