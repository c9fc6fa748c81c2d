"""What registration did to each file and each session: outcomes, not exceptions."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

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
    "SessionReport",
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
    path relative to the session folder, as registered. ``dataset`` is the target's dataset
    record, for created files.
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


@dataclass(slots=True)
class SessionReport:
    """The outcome of registering one session: its record and one outcome per file.

    ``created`` tells whether this call created the session record (False: it existed and was
    updated). ``error`` is set only by the batch methods (``register_sessions``,
    ``create_sessions``) when something stopped this session; other sessions went on.
    ``attempts`` counts the tries it took, where a caller retries (the Prefect task does).

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
    duplicates: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    @property
    def eid(self) -> str | None:
        """The session's id in the target, when it has a record."""
        return None if self.session is None else self.session.get("id")

    @property
    def counts(self) -> dict[Outcome, int]:
        """Number of files per outcome, every outcome present."""
        tally = Counter(f.status for f in self.files)
        return {status: tally.get(status, 0) for status in Outcome}

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
        action = "created" if self.created else "updated"
        line = f"{self.session_path}: session {self.eid} {action}; files: {counts}"
        if self.duplicates:
            line += f"; duplicate session records: {', '.join(self.duplicates)}"
        if self.deleted:
            line += f"; {len(self.deleted)} registered files gone from the folder"
        return line
