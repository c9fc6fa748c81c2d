"""The registration ledger: what this machine registered, to which target, from which files.

`RegistrationClient.register_session` consults the ledger first. When it holds the session (its
record and the fields this machine last gave it) and every file of the call is in it (a dataset
whose file still has the recorded `StatIdentity`: size, mtime_ns, inode, device and ctime_ns,
or a file known not to be registrable), the session is reported as all ``unchanged`` without a
single request to the target.
Otherwise registration asks the target as usual, and the ledger is brought up to date.

What the ledger guarantees:

- It is a subset of the target's state as this machine saw it: a row is written only after the
  target confirmed the registration (or showed the dataset with the same size and hash). A crash
  between the target's answer and the ledger write only costs the next run its round trips.
- A local change is never hidden: a file whose size, mtime_ns, inode, device or ctime_ns
  changed (an edit whose mtime was put back changes the ctime), a new file, a registered file
  gone from the folder, a file modified less than ``RACY_WINDOW_NS`` before it was registered
  (a same-size rewrite within the filesystem's timestamp granularity would keep its stat) and
  new session fields all send the session to the target. What the digest cache cannot see
  (see `one_flows.hashing`) the ledger cannot either.
- Several threads and processes may share one ledger file (write-ahead logging; a writer waits
  up to ``timeout`` seconds for the lock). Each session's rows are replaced in one transaction.

What the ledger cannot see, because it never asks the target: changes made there by someone
else. A dataset or session deleted or edited on the server, a session record changed by another
user, new dataset types that would make a skipped file registrable, or the target itself
replaced by another database at the same address (a test server restarted on a recycled port).
``register_session(..., recheck=True)`` asks the target whatever the ledger says, re-registers
what is missing and corrects the ledger; ``RegistrationClient(ledger=False)`` never uses one.
A target that can check without a request (``LocalTarget``'s tables, see
``RegistrationTarget.holds``) is asked, and a session it lacks is registered again.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISLNK
from typing import Any

from one_flows._sqlite_files import SharedSQLiteFile
from one_flows.hashing import RACY_WINDOW_NS, StatIdentity, stat_identity
from one_flows.registration.files import DatasetTypeMatcher, name_problem
from one_flows.registration.outcomes import (
    AMBIGUOUS_TYPE,
    NO_DATASET_TYPE,
    NOT_ALF,
    UNKNOWN_EXTENSION,
    FileOutcome,
    Outcome,
    SessionReport,
    unchanged_record,
)
from one_flows.walk import SessionKey

__all__ = [
    "LedgerClassifier",
    "LedgerFile",
    "LedgerSession",
    "RegistrationLedger",
    "StatIdentity",
    "remember",
    "report_from_ledger",
    "same_fields",
    "settled",
    "settled_stats",
    "stat_identity",
]

logger = logging.getLogger(__name__)

_CLASSIFIED = frozenset({NOT_ALF, UNKNOWN_EXTENSION, NO_DATASET_TYPE, AMBIGUOUS_TYPE})
"""Skip reasons that depend only on a file's name and the target's dataset types."""


def settled(st: os.stat_result, stat_time_ns: int) -> bool:
    """Whether a file stat'ed at ``stat_time_ns`` was last modified long enough before for its
    stat to identify its content (see ``RACY_WINDOW_NS``)."""
    return stat_time_ns - st.st_mtime_ns >= RACY_WINDOW_NS


@dataclass(frozen=True, slots=True)
class LedgerFile:
    """A file registered as dataset ``dataset_id`` while its stat was ``identity``.

    ``md5`` is None for a file registered without a hash; ``repositories`` are the data
    repositories it was registered to (empty: none named).
    """

    rel_path: str
    dataset_type: str
    identity: StatIdentity
    md5: str | None
    dataset_id: str
    repositories: frozenset[str] = frozenset()

    def matches(self, st: os.stat_result, repository: str | None, max_md5_size: int | None) -> bool:
        """Whether registering the file, now stat'ed as ``st``, would find it unchanged.

        The file must have its recorded stat, have been registered to ``repository`` (when
        one is asked for) and, if it was registered without a hash, still be exempt from
        hashing (at least ``max_md5_size`` bytes).
        """
        return (
            stat_identity(st) == self.identity
            and (repository is None or repository in self.repositories)
            and (self.md5 is not None or (max_md5_size is not None and st.st_size >= max_md5_size))
        )


@dataclass(slots=True)
class LedgerSession:
    """What the ledger knows of one session folder in one target.

    ``record`` is the session record as the target last returned it; ``fields`` the session
    fields this machine last sent (None: none since the record was found or created).
    ``files`` are the registered files and ``skipped`` the files that are not registrable, with
    the reason, both by path relative to the session folder.
    """

    eid: str
    record: dict[str, Any]
    fields: dict[str, Any] | None = None
    files: dict[str, LedgerFile] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def _signed64(value: int) -> int:
    # SQLite integers are signed 64-bit; inode and device numbers may use all 64 bits.
    return value - (1 << 64) if value >= 1 << 63 else value


def _unsigned64(value: int) -> int:
    return value + (1 << 64) if value < 0 else value


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


class RegistrationLedger(SharedSQLiteFile):
    """A persistent record, in an SQLite file, of the sessions and files registered from here.

    Rows are keyed by the target's ``label`` (``alyx:<url>``, ``local:<folder>``) and the
    absolute session folder, which fixes the session's lab, subject, date and number.
    ``":memory:"`` gives a ledger that lives as long as the instance. Instances are
    thread-safe; see the module documentation for what the ledger can and cannot know.
    """

    KIND = "registration ledger"
    TABLES = (
        "CREATE TABLE IF NOT EXISTS sessions ("
        " target TEXT NOT NULL, folder BLOB NOT NULL, eid TEXT NOT NULL,"
        " record TEXT NOT NULL, fields TEXT, PRIMARY KEY (target, folder)"
        ") WITHOUT ROWID",
        # A registered file has a dataset_id and a stat; a skipped file only a skip_reason.
        "CREATE TABLE IF NOT EXISTS files ("
        " target TEXT NOT NULL, folder BLOB NOT NULL, rel_path TEXT NOT NULL,"
        " dataset_type TEXT, skip_reason TEXT, size INTEGER, mtime_ns INTEGER,"
        " inode INTEGER, device INTEGER, md5 TEXT, dataset_id TEXT, repositories TEXT,"
        " ctime_ns INTEGER, PRIMARY KEY (target, folder, rel_path)"
        ") WITHOUT ROWID",
    )
    # Rows written before the ctime was recorded have none: their files go to the target once.
    ADDED_COLUMNS = (("files", "ctime_ns", "INTEGER"),)

    @staticmethod
    def _folder(folder: str | os.PathLike[str]) -> bytes:
        # Bytes, not str: POSIX paths need not be valid UTF-8.
        return os.fsencode(os.path.abspath(folder))

    def session(self, target: str, folder: str | os.PathLike[str]) -> LedgerSession | None:
        """What the ledger holds for a session folder in ``target``, or None."""
        key = (target, self._folder(folder))
        with self._lock:
            row = self._db.execute(
                "SELECT eid, record, fields FROM sessions WHERE target=? AND folder=?", key
            ).fetchone()
            if row is None:
                return None
            file_rows = self._db.execute(
                "SELECT rel_path, dataset_type, skip_reason, md5, dataset_id, repositories, size,"
                " mtime_ns, inode, device, ctime_ns FROM files WHERE target=? AND folder=?",
                key,
            ).fetchall()
        entry = LedgerSession(
            eid=row[0],
            record=json.loads(row[1]),
            fields=None if row[2] is None else json.loads(row[2]),
        )
        for rel_path, dtype, reason, md5, did, repos, *stat in file_rows:
            if did is None:
                entry.skipped[rel_path] = reason
                continue
            entry.files[rel_path] = LedgerFile(
                rel_path=rel_path,
                dataset_type=dtype,
                identity=(*stat[:2], _unsigned64(stat[2]), _unsigned64(stat[3]), stat[4]),
                md5=md5,
                dataset_id=did,
                repositories=frozenset(json.loads(repos)) if repos != "[]" else frozenset(),
            )
        return entry

    def record(
        self,
        target: str,
        folder: str | os.PathLike[str],
        entry: LedgerSession,
        covered: set[str] | None = None,
    ) -> None:
        """Store a session's record, and its file rows, in one transaction.

        The rows of the files in ``covered`` (relative paths; None: every file of the session)
        are replaced by those in ``entry``: a covered file that ``entry`` does not hold is
        forgotten. Rows of other files are kept.
        """
        key = (target, self._folder(folder))
        rows = [
            (*key, f.rel_path, f.dataset_type, None, f.identity[0], f.identity[1],
             _signed64(f.identity[2]), _signed64(f.identity[3]), f.md5, f.dataset_id,
             _canonical(sorted(f.repositories)), f.identity[4])
            for f in entry.files.values()
        ] + [
            (*key, rel_path, None, reason, None, None, None, None, None, None, None, None)
            for rel_path, reason in entry.skipped.items()
        ]  # fmt: skip
        fields = None if entry.fields is None else _canonical(entry.fields)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO sessions (target, folder, eid, record, fields)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (*key, entry.eid, _canonical(entry.record), fields),
                )
                if covered is None:
                    self._db.execute("DELETE FROM files WHERE target=? AND folder=?", key)
                else:
                    self._db.executemany(
                        "DELETE FROM files WHERE target=? AND folder=? AND rel_path=?",
                        [(*key, rel_path) for rel_path in covered],
                    )
                self._db.executemany(
                    "INSERT OR REPLACE INTO files (target, folder, rel_path, dataset_type,"
                    " skip_reason, size, mtime_ns, inode, device, md5, dataset_id, repositories,"
                    " ctime_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise


def same_fields(given: dict[str, Any], recorded: dict[str, Any] | None) -> bool:
    """Whether session fields given now are those recorded (compared as canonical JSON)."""
    return recorded is not None and _canonical(given) == _canonical(recorded)


# -- the fast path: what the ledger lets registration skip, and what it learns from it ----------


class LedgerClassifier:
    """Classifies files as the ledger recorded them; the target's dataset types (read on first
    need) decide only for files the ledger does not know.

    Parameters
    ----------
    matcher : callable
        Returns the target's `DatasetTypeMatcher`.
    entry : LedgerSession or None
        What the ledger holds of the session (None: nothing to trust).
    """

    def __init__(
        self, matcher: Callable[[], DatasetTypeMatcher], entry: LedgerSession | None
    ) -> None:
        self._matcher = matcher
        self._entry = entry

    def classify(self, rel_path: str) -> tuple[str | None, str | None, list[str]]:
        """As `DatasetTypeMatcher.classify`, answering from the ledger where it can."""
        if self._entry is not None:
            if (known := self._entry.files.get(rel_path)) is not None:
                return known.dataset_type, None, [known.dataset_type]
            if (reason := self._entry.skipped.get(rel_path)) is not None:
                return None, reason, []
        return self._matcher().classify(rel_path)


def report_from_ledger(
    key: SessionKey,
    entry: LedgerSession,
    fields: dict[str, Any],
    rel_paths: list[str],
    file_options: dict[str, Any],
    *,
    whole_folder: bool,
) -> SessionReport | None:
    """The report of a session the ledger shows as registered as it is, without a request.

    Parameters
    ----------
    key : SessionKey
        The session.
    entry : LedgerSession
        What the ledger holds of it.
    fields : dict
        The session fields given now.
    rel_paths : list of str
        The files to register, relative to the session folder.
    file_options : dict
        ``register_files``' options (``repository`` and ``max_md5_size`` matter here).
    whole_folder : bool
        Whether ``rel_paths`` are all the folder's files.

    Returns
    -------
    SessionReport or None
        All files ``unchanged`` (or skipped as recorded); None when the ledger cannot vouch
        for the session: a new, changed or unknown file, a registered file gone from the whole
        folder, or session fields not sent from here before.
    """
    if fields and not same_fields(fields, entry.fields):
        return None
    if whole_folder and not entry.files.keys() <= set(rel_paths):
        return None
    repository, max_md5_size = file_options.get("repository"), file_options.get("max_md5_size")
    folder = os.fspath(key.path)
    outcomes = []
    for rel_path in sorted(rel_paths, key=lambda rel: rel.split("/")):
        path = key.path / rel_path
        if (reason := entry.skipped.get(rel_path)) is not None:
            outcomes.append(FileOutcome(path, Outcome.SKIPPED, reason, rel_path=rel_path))
            continue
        known = entry.files.get(rel_path)
        try:
            st = os.stat(f"{folder}/{rel_path}", follow_symlinks=False)
        except OSError:
            return None
        # Symbolic links are left to registration, which checks where they lead.
        if S_ISLNK(st.st_mode) or known is None or not known.matches(st, repository, max_md5_size):
            return None
        outcomes.append(
            FileOutcome(
                path,
                Outcome.UNCHANGED,
                rel_path=rel_path,
                dataset_type=known.dataset_type,
                md5=known.md5,
                size=known.identity[0],
                dataset=unchanged_record(
                    known.dataset_id, rel_path, known.dataset_type, known.identity[0]
                ),
            )
        )
    return SessionReport(key.path, entry.record, False, outcomes, from_ledger=True)


def settled_stats(paths: list[Path]) -> dict[Path, os.stat_result]:
    """The stats of the files whose stat identifies their content (see `settled`), taken
    before they are hashed."""
    now = time.time_ns()
    stats = {}
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if settled(st, now):
            stats[path] = st
    return stats


def remember(
    ledger: RegistrationLedger,
    target: str,
    key: SessionKey,
    report: SessionReport,
    fields: dict[str, Any],
    entry: LedgerSession | None,
    stats: dict[Path, os.stat_result],
    *,
    whole_folder: bool,
    repository: str | None,
) -> None:
    """Record in the ledger what the target confirmed of a session's registration.

    Parameters
    ----------
    ledger : RegistrationLedger
        The ledger to write.
    target : str
        The target's label.
    key : SessionKey
        The session.
    report : SessionReport
        What registration did (with the session's record).
    fields : dict
        The session fields sent.
    entry : LedgerSession or None
        What the ledger held of the session before.
    stats : dict
        The files' stats taken before hashing (`settled_stats`): only those files get rows.
    whole_folder : bool
        Whether the whole folder was registered (then rows of other files are dropped).
    repository : str or None
        The data repository registered to.
    """
    assert report.session is not None and report.eid is not None
    same = entry is not None and entry.eid == report.eid
    kept_fields = fields or (entry.fields if entry is not None and same else None)
    record = dict(report.session)
    if record.get("data_dataset_session_related"):
        record["data_dataset_session_related"] = []  # kept small: the file rows say it
    updated = LedgerSession(report.eid, record, kept_fields)
    covered: set[str] = set()
    for outcome in report.files:
        if outcome.rel_path is None or name_problem(outcome.rel_path) is not None:
            continue
        covered.add(outcome.rel_path)
        if outcome.moved_from is not None:
            covered.add(outcome.moved_from.relative_to(key.path).as_posix())
        if outcome.status in (Outcome.CREATED, Outcome.UNCHANGED):
            previous = entry.files.get(outcome.rel_path) if entry and same else None
            st = stats.get(outcome.moved_from or outcome.path)
            row = _ledger_file(outcome, st, repository, previous)
            if row is not None:
                updated.files[row.rel_path] = row
        elif outcome.status is Outcome.SKIPPED and outcome.reason in _CLASSIFIED:
            updated.skipped[outcome.rel_path] = outcome.reason
    try:
        ledger.record(target, key.path, updated, covered if same and not whole_folder else None)
    except sqlite3.Error as exc:
        # The target holds the registration; the next run only asks it again.
        logger.warning("%s: registered, but not recorded in %r: %s", key.path, ledger, exc)


def _ledger_file(
    outcome: FileOutcome,
    st: os.stat_result | None,
    repository: str | None,
    previous: LedgerFile | None,
) -> LedgerFile | None:
    """The ledger row of a file the target holds, or None when its stat was not taken before
    hashing, or does not match what was hashed."""
    dataset_id = (outcome.dataset or {}).get("id")
    if st is None or dataset_id is None or outcome.rel_path is None or outcome.dataset_type is None:
        return None
    if st.st_size != outcome.size:
        return None
    repositories = frozenset([repository] if repository else [])
    if (
        previous is not None
        and previous.identity == stat_identity(st)
        and previous.md5 == outcome.md5
    ):
        repositories |= previous.repositories
    return LedgerFile(
        outcome.rel_path,
        outcome.dataset_type,
        stat_identity(st),
        outcome.md5,
        dataset_id,
        repositories,
    )
