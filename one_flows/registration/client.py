"""`RegistrationClient`: create sessions and register their files, as ONE-api's does, safely.

The methods have the names, arguments and meanings of ONE-api's
``one.registration.RegistrationClient``. Where they behave differently, it is on purpose:

- Per-file work yields outcomes (`FileOutcome`, `SessionReport`), not exceptions: a file that
  cannot be registered is reported with the reason, and the other files go on.
- Re-running is safe: a session is always looked up before it is created, and files whose size
  and hash the target already holds are not sent again (ONE-api sends them): their record in
  the answer holds what is known of them (`FileOutcome.dataset`).
- One session, one record, whatever its folder is called: creation is serialised per subject,
  date and number (`session_lock`) across the threads and processes of a machine, so folders
  naming the same session (``001``, ``01``, ``1``, with or without ``lab/Subjects``) share the
  first one's record. Records that other machines created for it are reported in
  ``SessionReport.duplicates``; see `RegistrationClient.register_session`.
- New session folders are numbered past both the local folders and the target's sessions of
  that subject and day (ONE-api looks at the local disk only).
- Datasets registered to a session whose file is gone from the folder are reported
  (``SessionReport.deleted``), and marked missing where the target records it.
- The answers have ONE-api's shapes (``session, records = register_session(...)``, records from
  ``register_files``), with the outcomes beside them (`SessionReport`, `RegisteredFiles`).
- ``create_new_session`` starts the session at the time of ``date`` (ONE-api: at midnight).
- A session that exists is updated with only the fields the caller gave (ONE-api resets its
  start time to midnight and its type to "Experiment").
- Session folders are numbered atomically: concurrent ``create_new_session`` calls for one
  subject and day get different numbers.
- Files are hashed in parallel threads, through a persistent `DigestCache`.
- A `RegistrationLedger` remembers what this machine registered: a session whose files are
  unchanged since is reported without a request (``recheck=True`` asks the target anyway; see
  `one_flows.registration.ledger` for what the ledger cannot see).
- Reference records (subjects, users) are looked up once per client, not once per session.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import cycle, repeat
from pathlib import Path
from typing import Any, Literal

import requests

from one_flows.alf import get_session_path, is_uuid_string
from one_flows.alyx import AlyxClient, AlyxTransientError
from one_flows.errors import is_outage
from one_flows.hashing import ABOVE_MAX_MD5_SIZE, DigestCache, hash_files
from one_flows.registration.errors import MemberNotFound, SubjectNotFound
from one_flows.registration.files import (
    Classifier,
    DatasetTypeMatcher,
    FoundFiles,
    name_problem,
    relative_files,
    scan_files,
    walk_session,
)
from one_flows.registration.ledger import (
    LedgerFile,
    LedgerSession,
    RegistrationLedger,
    same_fields,
    settled,
    stat_identity,
)
from one_flows.registration.outcomes import (
    AMBIGUOUS_TYPE,
    NO_DATASET_TYPE,
    NOT_ALF,
    NOT_IN_SESSION,
    PROTECTED,
    UNKNOWN_EXTENSION,
    FileOutcome,
    Outcome,
    RegisteredFiles,
    SessionReport,
    unchanged_record,
)
from one_flows.registration.revisions import unprotected_rel_path
from one_flows.registration.sessions import (
    ensure_ISO8601,
    make_session_folder,
    session_changes,
    session_lock,
)
from one_flows.targets import (
    AlyxTarget,
    DatasetType,
    FileBatch,
    ProtectedDatasets,
    RegisteredDataset,
    RegistrationRefused,
    RegistrationTarget,
)
from one_flows.walk import SessionKey, link_problem

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "RegistrationClient",
    "default_digest_cache_path",
    "default_ledger_path",
    "default_lock_folder",
]

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 1000
"""Files per ``register-file`` request; a session with more files is sent in several."""

NO_HASH = f"{ABOVE_MAX_MD5_SIZE}: registered without a hash"
CREATE_SETTLE_WAITS = (0.25, 0.5, 1.0, 2.0, 4.0)
"""Seconds between look-ups for a session whose creation request timed out, before giving up."""
ProtectedMode = Literal["revision", "fail"]
LEDGER_FILE_NAME = "registrations.sqlite"
LOCK_FOLDER_NAME = "session-locks"
_CLASSIFIED = frozenset({NOT_ALF, UNKNOWN_EXTENSION, NO_DATASET_TYPE, AMBIGUOUS_TYPE})
"""Skip reasons that depend only on a file's name and the target's dataset types."""


def default_digest_cache_path() -> Path:
    """Where digests are kept unless told otherwise.

    ``$ONE_FLOWS_CACHE_DIR/digests.sqlite``, else ``$XDG_CACHE_HOME/one_flows/digests.sqlite``,
    else ``~/.cache/one_flows/digests.sqlite``. A per-user cache, rather than one in each data
    folder, keeps the data tree free of files that sync tools would copy.
    """
    if folder := os.environ.get("ONE_FLOWS_CACHE_DIR"):
        return Path(folder) / "digests.sqlite"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "one_flows" / "digests.sqlite"


def default_ledger_path() -> Path:
    """Where the registration ledger is kept unless told otherwise: ``registrations.sqlite``
    beside the default digest cache (see `default_digest_cache_path`)."""
    return default_digest_cache_path().with_name(LEDGER_FILE_NAME)


def default_lock_folder() -> Path:
    """Where this user's session locks are (see `session_lock`): ``session-locks`` beside the
    default digest cache (see `default_digest_cache_path`)."""
    return default_digest_cache_path().with_name(LOCK_FOLDER_NAME)


def _ledger_beside(digest_cache: DigestCache | str | os.PathLike[str] | bool) -> str | Path | None:
    """The ledger that goes with a digest cache setting: beside its file, in memory with an
    in-memory cache, and none without a cache (then a file's stat is not trusted)."""
    if digest_cache is False:
        return None
    if digest_cache is True:
        return default_ledger_path()
    path = digest_cache.path if isinstance(digest_cache, DigestCache) else digest_cache
    return ":memory:" if path == ":memory:" else Path(path).with_name(LEDGER_FILE_NAME)


def _alyx_of(one: Any) -> AlyxClient:
    """The Alyx client of a ONE instance: ours as it is; ONE-api's (``one.alyx``, its
    ``AlyxClient``) rebuilt from its URL, logged-in user and token, without importing ONE-api.

    Raises:
        TypeError: ``one`` is not connected to an Alyx (or not a ONE instance at all).
    """
    alyx = getattr(one, "alyx", None)
    if isinstance(alyx, AlyxClient):
        return alyx
    base_url = getattr(alyx, "base_url", None)
    if not isinstance(base_url, str):
        raise TypeError(
            f"RegistrationClient takes a ONE instance connected to an Alyx, an AlyxClient or a "
            f"RegistrationTarget (such as LocalTarget(cache_dir)), not {type(one).__name__}"
        )
    token = getattr(alyx, "_token", None)
    if isinstance(token, dict):
        token = token.get("token")
    if not isinstance(token, str) or not token:
        header = (getattr(alyx, "_headers", None) or {}).get("Authorization", "")
        token = header.removeprefix("Token ").strip() or None
    return AlyxClient(base_url, username=getattr(alyx, "user", None), token=token)


@dataclass(slots=True)
class _Candidate:
    """A registrable file on its way to the target."""

    index: int
    path: Path
    session: Path
    rel_path: str
    dataset_type: str
    version: str | None
    md5: str | None = None
    size: int | None = None
    moved_from: Path | None = None

    def outcome(self, status: Outcome, reason: str | None = None, **extra: Any) -> FileOutcome:
        if status is Outcome.CREATED and reason is None and self.md5 is None:
            reason = NO_HASH
        return FileOutcome(
            path=self.path,
            status=status,
            reason=reason,
            rel_path=self.rel_path,
            dataset_type=self.dataset_type,
            md5=self.md5,
            size=self.size,
            moved_from=self.moved_from,
            **extra,
        )


@dataclass(frozen=True, slots=True)
class _FileOptions:
    """The ``register_files`` arguments that apply to every batch."""

    created_by: str | None
    repository: str | None
    exists: bool
    server_only: bool
    default: bool
    protected: ProtectedMode
    extra: dict[str, Any]


class RegistrationClient:
    """Creates sessions and registers files into a registration target.

    Args:
        target: a `RegistrationTarget`; an `AlyxClient` (wrapped in an `AlyxTarget`); a ONE
            instance connected to an Alyx, as ONE-api's ``RegistrationClient(one)`` takes it
            (ONE-api's ``OneAlyx``, whose URL, user and token are used, or our
            `one_flows.one.One`); None connects to the Alyx server configured in the
            environment.
        session_root: the folder ``create_new_session`` makes session folders in by default
            (with a ONE instance, by default its ``cache_dir``, as ONE-api's).
        digest_cache: a `DigestCache`, the path of one, True for `default_digest_cache_path()`
            or False to hash every file every time.
        max_workers: sessions registered at once by ``register_sessions`` and
            ``create_sessions``.
        hash_workers: threads hashing files (default: one per CPU).
        batch_size: files per registration request.
        ledger: a `RegistrationLedger`, the path of one, False for none, or True (the default)
            for ``registrations.sqlite`` beside the digest cache's file (in memory with an
            in-memory digest cache; none with ``digest_cache=False``).
    """

    def __init__(
        self,
        target: RegistrationTarget | AlyxClient | None = None,
        *,
        session_root: str | os.PathLike[str] | None = None,
        digest_cache: DigestCache | str | os.PathLike[str] | bool = True,
        max_workers: int = 4,
        hash_workers: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        ledger: RegistrationLedger | str | os.PathLike[str] | bool = True,
    ) -> None:
        self.one: Any = None
        """The ONE instance given in place of a target, as ONE-api's client keeps it."""
        if target is None:
            target = AlyxClient()
        elif not isinstance(target, AlyxClient | RegistrationTarget):
            self.one, target = target, _alyx_of(target)
            if session_root is None:
                session_root = getattr(self.one, "cache_dir", None)
        self.target: RegistrationTarget = (
            AlyxTarget(target) if isinstance(target, AlyxClient) else target
        )
        if max_workers < 1 or batch_size < 1:
            raise ValueError("max_workers and batch_size must be at least 1")
        self.session_root = None if session_root is None else Path(session_root)
        self.max_workers = max_workers
        self.hash_workers = hash_workers
        self.batch_size = batch_size
        self._digest_setting = digest_cache
        self._digests: DigestCache | None = None
        self._ledger_setting = ledger
        self._ledger: RegistrationLedger | None = None
        self._matcher: DatasetTypeMatcher | None = None
        self._known: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RegistrationClient({self.target!r})"

    # -- reference data ---------------------------------------------------------------------

    @property
    def dtypes(self) -> list[DatasetType] | None:
        """The target's dataset types (None: any ``object.attribute``)."""
        return self.target.dataset_types()

    @property
    def file_extensions(self) -> frozenset[str] | None:
        """The file extensions of the target's data formats (None: any)."""
        return self.target.file_extensions()

    def _dataset_type_matcher(self) -> DatasetTypeMatcher:
        with self._lock:
            if self._matcher is None:
                self._matcher = DatasetTypeMatcher(self.dtypes, self.file_extensions)
            return self._matcher

    def _digest_cache(self) -> DigestCache | None:
        with self._lock:
            if self._digests is None and self._digest_setting is not False:
                setting = self._digest_setting
                if isinstance(setting, DigestCache):
                    self._digests = setting
                else:
                    path = default_digest_cache_path() if setting is True else setting
                    self._digests = DigestCache(path)
            return self._digests

    def _registration_ledger(self) -> RegistrationLedger | None:
        with self._lock:
            if self._ledger is None and self._ledger_setting is not False:
                setting = self._ledger_setting
                if isinstance(setting, RegistrationLedger):
                    self._ledger = setting
                else:
                    path = _ledger_beside(self._digest_setting) if setting is True else setting
                    self._ledger = None if path is None else RegistrationLedger(path)
            return self._ledger

    def close(self) -> None:
        """Close the digest cache and the ledger if this client opened them."""
        with self._lock:
            if self._digests is not None and self._digests is not self._digest_setting:
                self._digests.close()
            if self._ledger is not None and self._ledger is not self._ledger_setting:
                self._ledger.close()
            self._digests = None
            self._ledger = None

    def assert_exists(self, member: str | Iterable[str], endpoint: str) -> Any:
        """Return the record(s) of ``member`` (a name or several) in ``endpoint``.

        Raises:
            SubjectNotFound: an unknown subject (``endpoint="subjects"``).
            MemberNotFound: any other unknown member.
        """
        if not isinstance(member, str):
            return [self.assert_exists(m, endpoint) for m in member]
        record = self.target.lookup(endpoint, str(member))
        if record is None:
            error = SubjectNotFound if endpoint.strip("/") == "subjects" else MemberNotFound
            raise error(str(member), endpoint)
        with self._lock:
            self._known[(endpoint, str(member))] = record
        return record

    def _require(self, endpoint: str, member: str) -> dict[str, Any]:
        """Like ``assert_exists``, answering from the records this client already found."""
        with self._lock:
            record = self._known.get((endpoint, member))
        return record if record is not None else self.assert_exists(member, endpoint)

    ensure_ISO8601 = staticmethod(ensure_ISO8601)

    # -- sessions ---------------------------------------------------------------------------

    def create_new_session(
        self,
        subject: str,
        session_root: str | os.PathLike[str] | None = None,
        date: Any = None,
        register: bool = True,
        **kwargs: Any,
    ) -> tuple[Path, uuid.UUID | None]:
        """Make the next ``session_root/subject/date/NNN`` folder, and its session record.

        ``date`` (a date, datetime or ISO string; default now) gives the folder's date and,
        when registering, the session's start time unless ``start_time`` is given. The subject
        must exist in the target. The number is past both the folders under ``session_root``
        and the sessions the target holds for the subject and day (which another machine may
        have created). Returns the folder and the session id as a ``uuid.UUID``, as ONE-api
        does (None when ``register`` is False). Other keyword arguments go to
        ``register_session``.
        """
        root = session_root if session_root is not None else self.session_root
        if root is None:
            raise ValueError("no session_root given, and the client has no default one")
        when = ensure_ISO8601(date)
        self._require("subjects", subject)
        held = self.target.find_sessions(subject, when[:10])
        taken = [s["number"] for s in held if isinstance(s.get("number"), int)]
        session_path = make_session_folder(root, subject, when[:10], taken)
        if not register:
            return session_path, None
        kwargs.setdefault("start_time", when)
        return session_path, uuid.UUID(self.register_session(session_path, **kwargs).eid)

    def register_session(
        self,
        ses_path: str | os.PathLike[str],
        users: str | Iterable[str] | None = None,
        file_list: bool | Iterable[str | os.PathLike[str]] = True,
        *,
        recheck: bool = False,
        record_from: SessionReport | None = None,
        **kwargs: Any,
    ) -> SessionReport:
        """Create the session record of a folder, or update the one that exists, and register
        its files.

        ``file_list`` True registers every registrable file under the folder, False none, and
        a list those files (which must lie in this session). Keyword arguments: ``location``,
        ``procedures``, ``n_correct_trials``, ``n_trials``, ``json``, ``projects``, ``type``,
        ``task_protocol``, ``lab`` (default: the path's ``lab/Subjects`` folder),
        ``start_time`` (on the path's date), ``end_time``, and ``register_files``' options
        (``repository``, ``created_by``, ``server_only``, ``default``, ``versions``,
        ``max_md5_size``, ``protected``); others are sent as session fields.

        With a ledger, a session it holds whose files all have their recorded stat (and whose
        fields, if given, are those last sent from here) is reported as all ``unchanged``
        without asking the target, unless the target can tell cheaply that it lacks them (local
        tables: see ``holds``); files the ledger knows are not matched against the dataset
        types again. The ledger misses what others changed on the target (a deleted dataset, a
        new dataset type): ``recheck=True`` asks the target whatever the ledger says.

        A session record is looked up, and created if there is none, under the session's lock
        (`session_lock`), so that threads and processes of this machine registering one
        session under several folder names create one record. Other machines are not held
        back (Alyx has no unique constraint on a session's subject, date and number): when the
        target holds several records for the session, every registration that asks it (the
        first, the first after any change in the folder, and right after creating one the
        creator, so that of two machines racing at least the later sees both) uses the same
        one (the latest start time, then the smallest id), logs a warning and lists the others
        in the report's ``duplicates``.

        When the whole folder is registered (``file_list=True``), datasets the target holds for
        the session whose file is no longer in the folder are logged as warnings, listed in the
        report's ``deleted`` and marked missing in targets that record it (local tables set
        ``exists`` to False; Alyx is left as it is, see the README).

        The report unpacks as ONE-api's answer: ``session, records = client.register_session(
        path)`` gives the session record as the target returns it (Alyx's full record; for a
        session that existed and got no new field, read once more) and the dataset records (None
        with ``file_list=False``); see `SessionReport`.

        ``record_from``, the report of an earlier call for this folder with ``file_list=False``
        in which the target created or found the session (as a flow's session step does), gives
        the record: it is not looked up again when no session field is given.

        Raises:
            ValueError, TypeError: a bad argument; nothing was sent.
            SubjectNotFound, MemberNotFound: an unknown subject or user.
        """
        key = SessionKey.from_path(ses_path)
        file_options = {name: kwargs.pop(name) for name in _FILE_OPTION_NAMES if name in kwargs}
        _check_file_options(
            file_options.get("protected", "revision"), file_options.get("max_md5_size")
        )
        fields = session_changes(key, users, kwargs)
        with_files = file_list is not False and file_list is not None
        ledger = self._registration_ledger()
        entry = None if ledger is None else ledger.session(self.target.label, key.path)
        if entry is not None and not recheck:
            if file_list is True:
                rel_paths = relative_files(key.path)
            else:
                listed = _listed(key, file_list) or []
                rel_paths = [p.relative_to(key.path).as_posix() for p in listed]
            report = _report_from_ledger(
                key, entry, fields, rel_paths, file_options, whole_folder=file_list is True
            )
            held = [o.dataset["id"] for o in report.files if o.dataset] if report else []
            if report is not None and self.target.holds(entry.eid, held):
                report.with_files = with_files
                logger.info("%s", report.summary())
                return report
        trusted = None if recheck else entry
        classifier = _Classifier(self._dataset_type_matcher, trusted)
        files = self._session_files(key, file_list, classifier)
        if trusted is None:
            self._require("subjects", key.subject)
        for user in fields.get("users", ()):
            self._require("users", user)
        if record_from is not None and not record_from.from_ledger and not fields:
            session, created = record_from.session, record_from.created
            duplicates = record_from.duplicates
        else:
            session, created, duplicates = self._create_or_update(key, fields)
            if not created and not fields:
                # A search found it: its short record, where ONE-api's update answers the full one.
                session = self.target.session_record(session["id"]) or session
        report = SessionReport(
            key.path, session, created, duplicates=duplicates, with_files=with_files
        )
        stats: dict[Path, os.stat_result] = {}
        if files is not None:
            paths, skipped = files
            if ledger is not None:
                stats = _settled_stats(paths)
            known = [] if created else self.target.session_datasets(session["id"])
            registered = self._register(
                paths, known={key.path: known}, classifier=classifier, **file_options
            )
            report.files = sorted([*skipped, *registered], key=lambda outcome: outcome.path)
            if file_list is True:
                present = {o.rel_path for o in report.files}
                report.deleted = self._gone(key, session["id"], known, present, file_options)
            logger.info("%s", report.summary())
        if ledger is not None:
            self._remember(
                ledger, key, report, fields, entry, stats, file_list is True, file_options
            )
        return report

    def _session_files(
        self,
        key: SessionKey,
        file_list: bool | Iterable[str | os.PathLike[str]],
        classifier: Classifier,
    ) -> tuple[list[Path], list[FileOutcome]] | None:
        """The files to register and those skipped, or None for no file registration."""
        if file_list is True:
            found = walk_session(key.path, classifier)
            return list(found), found.skipped
        paths = _listed(key, file_list)
        return None if paths is None else (paths, [])

    def _remember(
        self,
        ledger: RegistrationLedger,
        key: SessionKey,
        report: SessionReport,
        fields: dict[str, Any],
        entry: LedgerSession | None,
        stats: dict[Path, os.stat_result],
        whole_folder: bool,
        file_options: dict[str, Any],
    ) -> None:
        """Record in the ledger what the target confirmed of a session's registration."""
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
                row = _ledger_file(outcome, st, file_options.get("repository"), previous)
                if row is not None:
                    updated.files[row.rel_path] = row
            elif outcome.status is Outcome.SKIPPED and outcome.reason in _CLASSIFIED:
                updated.skipped[outcome.rel_path] = outcome.reason
        try:
            ledger.record(
                self.target.label, key.path, updated, covered if same and not whole_folder else None
            )
        except sqlite3.Error as exc:
            # The target holds the registration; the next run only asks it again.
            logger.warning("%s: registered, but not recorded in %r: %s", key.path, ledger, exc)

    def _gone(
        self,
        key: SessionKey,
        eid: str,
        known: list[RegisteredDataset],
        present: set[str | None],
        file_options: dict[str, Any],
    ) -> list[str]:
        """The datasets of a session whose file is not in its folder, logged and marked missing
        in the target; only those in the repository registered to, when one is named."""
        repository = file_options.get("repository")
        gone = sorted(
            d.rel_path
            for d in known
            if d.exists
            and d.rel_path not in present
            and (repository is None or not d.repositories or repository in d.repositories)
        )
        if not gone:
            return []
        marked = self.target.mark_missing(eid, gone)
        state = "marked missing" if marked else "still registered as existing"
        for rel_path in gone:
            logger.warning(
                "%s: registered to session %s but gone from the folder (%s in %s)",
                key.path / rel_path,
                eid,
                state,
                self.target.label,
            )
        return gone

    def _create_or_update(
        self, key: SessionKey, fields: dict[str, Any]
    ) -> tuple[dict[str, Any], bool, list[str]]:
        """The session's record, created or updated with ``fields``; whether this call created
        it; the ids of the other records the target holds for the session."""
        # Alyx creates a second record when the same session is posted twice: look first,
        # under the session's lock, which another thread or process may hold to create it.
        created = None
        with session_lock(default_lock_folder(), self.target.label, key):
            existing = self._find(key)
            if not existing:
                created = self._create(key, fields)
                # Another machine may have created it meanwhile: no lock reaches there.
                existing = self._find(key) or [created]
        session = _first(existing)
        duplicates = sorted(r["id"] for r in existing if r["id"] != session["id"])
        if duplicates:
            logger.warning(
                "%s: %d session records for %s; registering to %s, the others should be "
                "deleted: %s",
                key.path,
                len(existing),
                key.relative,
                session["id"],
                ", ".join(duplicates),
            )
        if created is not None and created["id"] == session["id"]:
            return created, True, duplicates
        if fields:
            session = self.target.update_session(session["id"], fields)
        return session, False, duplicates

    def _find(self, key: SessionKey) -> list[dict[str, Any]]:
        return self.target.find_sessions(key.subject, key.date, int(key.number))

    def _create(self, key: SessionKey, fields: dict[str, Any]) -> dict[str, Any]:
        """Create the session's record (or find the one a timed-out request created)."""
        fields = dict(fields)
        record: dict[str, Any] = {
            "subject": key.subject,
            "users": fields.pop("users", None) or [u for u in [self.target.user] if u],
            "type": "Experiment",
            "number": key.number,
            **({"lab": key.lab} if key.lab else {}),
            **fields,
        }
        if not record["users"]:
            del record["users"]  # the target's default: the requesting user
        record.setdefault("start_time", ensure_ISO8601(key.date))
        try:
            return self.target.create_session(record)
        except AlyxTransientError as exc:
            if not isinstance(exc.__cause__, requests.Timeout):
                raise
            # The server may still be creating it: a retry that looked now would post another.
            session = self._await_created(key)
            if session is None:
                raise
            return session

    def _await_created(self, key: SessionKey) -> dict[str, Any] | None:
        """The record of a session whose creation timed out, once the server shows it."""
        for wait in CREATE_SETTLE_WAITS:
            time.sleep(wait)
            try:
                found = self._find(key)
            except AlyxTransientError:
                continue
            if found:
                session = _first(found)
                logger.info("%s: the timed-out request created %s", key.relative, session["id"])
                return session
        return None

    def register_sessions(
        self, session_paths: Iterable[str | os.PathLike[str]], **kwargs: Any
    ) -> list[SessionReport]:
        """Register several session folders in parallel (``max_workers`` at once).

        Each gets a `SessionReport`, in input order; a session that raised has ``error`` set,
        and the others go on. Keyword arguments are those of ``register_session``.
        """
        paths = [Path(p) for p in session_paths]

        def one(path: Path) -> SessionReport:
            try:
                return self.register_session(path, **kwargs)
            except Exception as exc:
                logger.error("%s: registration failed: %s", path, exc)
                return SessionReport(path, error=exc)

        return self._parallel(one, paths)

    def _parallel(self, work: Any, items: list[Any]) -> list[Any]:
        if len(items) <= 1 or self.max_workers == 1:
            return [work(item) for item in items]
        with ThreadPoolExecutor(self.max_workers, thread_name_prefix="register") as pool:
            return list(pool.map(work, items))

    def create_sessions(
        self,
        root_data_folder: str | os.PathLike[str],
        glob_pattern: str = "**/create_me.flag",
        register_files: bool = False,
        dry: bool = False,
    ) -> tuple[list[Path], list[SessionReport]]:
        """Register the session of every flag file found under ``root_data_folder``.

        A flag's folder is the session folder. ``register_files`` also registers the files in
        it. A flag is removed once its session is registered, and kept when that failed.
        Returns the session folders and, unless ``dry``, a `SessionReport` for each, in the
        same order; a failed session has ``error`` set and does not stop the others.
        """
        flags: dict[Path, list[Path]] = {}
        for flag in scan_files(root_data_folder, glob_pattern):
            flags.setdefault(flag.parent, []).append(flag)
        sessions = list(flags)
        if dry:
            return sessions, []

        def one(path: Path) -> SessionReport:
            try:
                report = self.register_session(path, file_list=register_files)
            except Exception as exc:
                logger.error("%s: session not created: %s", path, exc)
                return SessionReport(path, error=exc)
            for flag in flags[path]:
                flag.unlink(missing_ok=True)
            return report

        return sessions, self._parallel(one, sessions)

    # -- files ------------------------------------------------------------------------------

    def find_files(self, session_path: str | os.PathLike[str]) -> FoundFiles:
        """Sort the files under a session folder into registrable datasets and the rest.

        Iterating over the result gives the registrable files; ``skipped`` says why each other
        file is not (not ALF, unknown extension, no dataset type, several dataset types).
        """
        return walk_session(Path(session_path), self._dataset_type_matcher())

    def register_files(
        self,
        file_list: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
        versions: str | Iterable[str | None] | None = None,
        default: bool = True,
        created_by: str | None = None,
        server_only: bool = False,
        repository: str | None = None,
        exists: bool = True,
        dry: bool = False,
        max_md5_size: int | None = None,
        protected: ProtectedMode = "revision",
        **kwargs: Any,
    ) -> RegisteredFiles | list[dict[str, Any]] | dict[str, Any] | None:
        """Register files to their sessions, one request per session (per ``batch_size`` files).

        Files are grouped by the session folder they lie in. Files of ``max_md5_size`` bytes
        or more are registered without a hash, as ONE-api does. ``versions`` is one version
        for all files or a list cycled over them. When the target refuses protected datasets,
        ``protected="revision"`` moves those files into a new revision folder and registers
        them there (ONE-api's behaviour); ``"fail"`` reports them as failed. Other keyword
        arguments are added to the request body.

        Returns what ONE-api's returns: for a list of files, a `RegisteredFiles`, the list of
        the dataset records in input order (None for a file not registered) whose ``outcomes``
        give one `FileOutcome` per file, in the same order; for one file (a str or path), its
        record or None (``register_files([path]).outcomes[0]`` says why). With ``dry``, the
        request bodies that would be sent (the one body for one file), after hashing, sending
        nothing.
        """
        single = isinstance(file_list, str | os.PathLike)
        paths = [Path(file_list)] if single else list(file_list)
        result = self._register(
            [Path(p) for p in paths],
            versions=versions,
            default=default,
            created_by=created_by,
            server_only=server_only,
            repository=repository,
            exists=exists,
            dry=dry,
            max_md5_size=max_md5_size,
            protected=protected,
            **kwargs,
        )
        if not dry:
            result = RegisteredFiles(result)
        if single:
            return result[0] if result else None
        return result

    def _register(
        self,
        paths: list[Path],
        *,
        known: dict[Path, list[RegisteredDataset]] | None = None,
        classifier: Classifier | None = None,
        versions: str | Iterable[str | None] | None = None,
        max_md5_size: int | None = None,
        dry: bool = False,
        created_by: str | None = None,
        repository: str | None = None,
        exists: bool = True,
        server_only: bool = False,
        default: bool = True,
        protected: ProtectedMode = "revision",
        **extra: Any,
    ) -> Any:
        _check_file_options(protected, max_md5_size)
        options = _FileOptions(
            created_by=created_by or self.target.user,
            repository=repository,
            exists=exists,
            server_only=server_only,
            default=default,
            protected=protected,
            extra=extra,
        )
        outcomes: list[FileOutcome | None] = [None] * len(paths)
        candidates = self._candidates(paths, versions, outcomes, classifier)
        self._hash(candidates, max_md5_size, outcomes)
        by_session: dict[Path, list[_Candidate]] = {}
        for c in candidates:
            if outcomes[c.index] is None:
                by_session.setdefault(c.session, []).append(c)
        payloads = []
        for session, files in by_session.items():
            key = SessionKey.from_path(session)
            if known is not None and session in known:
                files = self._drop_unchanged(files, known[session], repository, outcomes)
            for start in range(0, len(files), self.batch_size):
                chunk = files[start : start + self.batch_size]
                batch = _batch(key, chunk, options)
                if dry:
                    payloads.append(batch.payload())
                    continue
                for outcome, c in zip(self._send(batch, chunk, options), chunk, strict=True):
                    outcomes[c.index] = outcome
        if dry:
            return payloads
        return outcomes

    def _candidates(
        self,
        paths: list[Path],
        versions: str | Iterable[str | None] | None,
        outcomes: list[FileOutcome | None],
        classifier: Classifier | None = None,
    ) -> list[_Candidate]:
        """The registrable files; the others get their skipped outcome in ``outcomes``."""
        matcher = classifier or self._dataset_type_matcher()
        candidates = []
        for index, (path, version) in enumerate(zip(paths, _versions(versions), strict=False)):
            session = get_session_path(path)
            if session is None:
                outcomes[index] = FileOutcome(path, Outcome.SKIPPED, NOT_IN_SESSION)
                continue
            session = Path(session)
            rel_path = path.relative_to(session).as_posix()
            problem = name_problem(rel_path) or link_problem(path, session)
            if problem is not None:
                outcomes[index] = FileOutcome(path, Outcome.SKIPPED, problem, rel_path=rel_path)
                continue
            dataset_type, reason, _ = matcher.classify(rel_path)
            if dataset_type is None:
                outcomes[index] = FileOutcome(path, Outcome.SKIPPED, reason, rel_path=rel_path)
                continue
            candidates.append(_Candidate(index, path, session, rel_path, dataset_type, version))
        return candidates

    def _hash(
        self,
        candidates: list[_Candidate],
        max_md5_size: int | None,
        outcomes: list[FileOutcome | None],
    ) -> None:
        """Fill in sizes and md5s; files that cannot be hashed get their skipped outcome.

        As in ONE-api, files of ``max_md5_size`` bytes or more are not hashed but registered.
        """
        hashes = hash_files(
            [c.path for c in candidates],
            workers=self.hash_workers,
            max_md5_size=max_md5_size,
            cache=self._digest_cache(),
        )
        for c, result in zip(candidates, hashes, strict=True):
            c.size, c.md5 = result.size, result.md5
            if not result.ok and result.reason != ABOVE_MAX_MD5_SIZE:
                outcomes[c.index] = c.outcome(Outcome.SKIPPED, result.reason)

    @staticmethod
    def _drop_unchanged(
        files: list[_Candidate],
        registered: list[RegisteredDataset],
        repository: str | None,
        outcomes: list[FileOutcome | None],
    ) -> list[_Candidate]:
        """The files the target does not hold yet as they are; the others are ``unchanged``."""
        by_path = {d.rel_path: d for d in registered}
        remaining = []
        for c in files:
            held = by_path.get(c.rel_path)
            same = (
                held is not None
                and held.exists
                and held.file_size == c.size
                and (c.md5 is None or held.hash == c.md5)
                and (repository is None or repository in held.repositories)
            )
            if same:
                dataset = unchanged_record(held.id, c.rel_path, c.dataset_type, c.size)
                outcomes[c.index] = c.outcome(Outcome.UNCHANGED, dataset=dataset)
            else:
                remaining.append(c)
        return remaining

    def _send(
        self, batch: FileBatch, files: list[_Candidate], options: _FileOptions
    ) -> list[FileOutcome]:
        """Register one batch; every file gets an outcome, whatever the target answers."""
        try:
            records = self.target.register_files(batch)
        except ProtectedDatasets as exc:
            return self._resolve_protected(batch, files, exc.details, options)
        except RegistrationRefused as exc:
            return self._isolate_refusal(batch, files, exc, options)
        return [
            c.outcome(Outcome.CREATED, dataset=record)
            for c, record in zip(files, records, strict=True)
        ]

    def _isolate_refusal(
        self,
        batch: FileBatch,
        files: list[_Candidate],
        exc: RegistrationRefused,
        options: _FileOptions,
    ) -> list[FileOutcome]:
        """Fail the files a refusal names, and send the rest again.

        Alyx answers 500 for a whole batch when one file has no dataset type, naming the file
        (and registers the files before it). A 4xx, or a refusal that names no file of the
        batch, concerns the request as a whole: every file fails with it, unless the refusal
        came from an outage (a 5xx that names no file: the server's failure, raised).
        """
        reason = str(exc)
        named = [
            i for i, name in enumerate(batch.filenames) if f'"{name.rpartition("/")[2]}"' in reason
        ]
        cause = exc.__cause__
        if not named and cause is not None and is_outage(cause):
            raise cause
        if (exc.status is not None and exc.status < 500) or not named:
            return [c.outcome(Outcome.FAILED, reason) for c in files]
        outcomes: list[FileOutcome | None] = [None] * len(files)
        for i in named:
            outcomes[i] = files[i].outcome(Outcome.FAILED, reason)
        rest = [i for i in range(len(files)) if outcomes[i] is None]
        if rest:
            retried = self._send(batch.subset(rest), [files[i] for i in rest], options)
            for i, outcome in zip(rest, retried, strict=True):
                outcomes[i] = outcome
        return [o for o in outcomes if o is not None]

    def _resolve_protected(
        self,
        batch: FileBatch,
        files: list[_Candidate],
        details: dict[str, list[tuple[str, bool]]],
        options: _FileOptions,
    ) -> list[FileOutcome]:
        """Handle the target's refusal to overwrite protected datasets (see ``register_files``)."""
        outcomes: list[FileOutcome | None] = [None] * len(files)
        keep: list[int] = []
        names: list[str] = []
        for i, (c, name) in enumerate(zip(files, batch.filenames, strict=True)):
            revisions = details.get(name, [])
            if options.protected == "fail":
                if any(is_protected for _, is_protected in revisions):
                    outcomes[i] = c.outcome(Outcome.FAILED, PROTECTED)
                    continue
                new_name = name
            else:
                new_name = unprotected_rel_path(name, revisions)
            if new_name != name:
                problem = _move(c, new_name)
                if problem is not None:
                    outcomes[i] = c.outcome(Outcome.FAILED, f"{PROTECTED}: {problem}")
                    continue
            keep.append(i)
            names.append(new_name)
        if keep:
            # As ONE-api: the new revisions are free, so the server need not check again.
            retry = batch.subset(keep, filenames=names, check_protected=options.protected == "fail")
            for i, outcome in zip(
                keep, self._send(retry, [files[i] for i in keep], options), strict=True
            ):
                outcomes[i] = outcome
        return [o for o in outcomes if o is not None]

    # -- animal care ------------------------------------------------------------------------

    def register_weight(
        self,
        subject: str,
        weight: float,
        date_time: Any = None,
        user: str | None = None,
    ) -> dict[str, Any]:
        """Record a weighing of ``weight`` grams (rounded to 4 significant figures).

        ``date_time`` defaults to now and ``user`` to the target's user; both the subject and
        the user must exist.
        """
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
            raise ValueError(f"weight must be a positive number of grams, not {weight!r}")
        record = {
            "subject": subject,
            "date_time": ensure_ISO8601(date_time),
            "weight": float(f"{weight:.4g}"),
            "user": self._care_user(subject, user),
        }
        return self.target.register_weight(record)

    def register_water_administration(
        self, subject: str, volume: float, **kwargs: Any
    ) -> dict[str, Any]:
        """Record ``volume`` ml of water given to a subject (rounded to 4 significant figures).

        Keyword arguments: ``date_time`` (default now), ``water_type`` (default "Water"),
        ``user`` (default the target's user), ``session`` (an id, a session folder, or a
        session record) and ``adlib`` (default False).
        """
        if isinstance(volume, bool) or not isinstance(volume, int | float) or not volume > 0:
            raise ValueError(f"volume must be a positive number of ml, not {volume!r}")
        unknown = set(kwargs) - {"date_time", "water_type", "user", "session", "adlib"}
        if unknown:
            raise TypeError(f"unexpected keyword arguments: {', '.join(sorted(unknown))}")
        record: dict[str, Any] = {
            "subject": subject,
            "date_time": ensure_ISO8601(kwargs.get("date_time")),
            "water_administered": float(f"{volume:.4g}"),
            "water_type": kwargs.get("water_type") or "Water",
            "user": self._care_user(subject, kwargs.get("user")),
            "adlib": bool(kwargs.get("adlib", False)),
        }
        if kwargs.get("session"):
            record["session"] = self._session_id(kwargs["session"])
        return self.target.register_water_administration(record)

    def _care_user(self, subject: str, user: str | None) -> str | None:
        self._require("subjects", subject)
        user = user or self.target.user
        if user is not None:
            self._require("users", user)
        return user

    def _session_id(self, session: Any) -> str:
        """The id of a session given as an id, a record, or a session folder."""
        if isinstance(session, dict):
            eid = session.get("id") or str(session.get("url", ""))[-36:]
        elif is_uuid_string(str(session)):
            eid = str(session)
        else:
            found = self._find(SessionKey.from_path(session))
            eid = _first(found)["id"] if found else ""
        if not is_uuid_string(eid):
            raise ValueError(f"no session id found for {session!r}")
        return eid


_FILE_OPTION_NAMES = (
    "created_by",
    "repository",
    "server_only",
    "default",
    "exists",
    "protected",
    "versions",
    "max_md5_size",
)
"""The keyword arguments of ``register_session`` that are ``register_files``' options."""


def _first(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The record that registration uses among several of one session: the latest start time,
    then the smallest id, so that every machine picks the same one."""
    by_id = sorted(records, key=lambda r: r["id"])
    return max(by_id, key=lambda r: str(r.get("start_time") or ""))


def _versions(versions: str | Iterable[str | None] | None) -> Iterator[str | None]:
    if versions is None or isinstance(versions, str):
        return repeat(versions)
    return cycle(list(versions) or [None])


def _batch(key: SessionKey, files: list[_Candidate], options: _FileOptions) -> FileBatch:
    return FileBatch(
        session_path=key.relative,
        filenames=[c.rel_path for c in files],
        hashes=[c.md5 for c in files],
        sizes=[c.size for c in files],
        versions=[c.version for c in files],
        lab=key.lab,
        created_by=options.created_by,
        repository=options.repository,
        exists=options.exists,
        server_only=options.server_only,
        default=options.default,
        extra=dict(options.extra),
    )


def _move(c: _Candidate, new_rel_path: str) -> str | None:
    """Move a file within its session to ``new_rel_path``; returns a problem, or None."""
    target = c.session / new_rel_path
    if target.exists():
        return f"cannot move it to {new_rel_path}: a file is there already"
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(c.path, target)
    logger.info("moved %s to %s: its dataset is protected", c.path, target)
    c.moved_from, c.path, c.rel_path = c.path, target, new_rel_path
    return None


def _check_file_options(protected: Any, max_md5_size: Any) -> None:
    if protected not in ("revision", "fail"):
        raise ValueError(f'protected must be "revision" or "fail", not {protected!r}')
    if max_md5_size is not None and (
        isinstance(max_md5_size, bool) or not isinstance(max_md5_size, int) or max_md5_size < 0
    ):
        raise ValueError(f"max_md5_size must be a non-negative integer, not {max_md5_size!r}")


def _listed(
    key: SessionKey, file_list: bool | Iterable[str | os.PathLike[str]]
) -> list[Path] | None:
    """The files of an explicit ``file_list``; None for ``False`` (no file registration)."""
    if file_list is False or file_list is None:
        return None
    paths = [Path(p) for p in ([file_list] if isinstance(file_list, str) else file_list)]
    outside = [p for p in paths if get_session_path(p) != key.path]
    if outside:
        raise ValueError(f"files outside the session folder {key.path}: {outside[:3]}")
    return paths


class _Classifier:
    """Classifies files as the ledger recorded them; the target's dataset types (read on first
    need) decide only for files the ledger does not know."""

    def __init__(
        self, matcher: Callable[[], DatasetTypeMatcher], entry: LedgerSession | None
    ) -> None:
        self._matcher = matcher
        self._entry = entry

    def classify(self, rel_path: str) -> tuple[str | None, str | None, list[str]]:
        if self._entry is not None:
            if (known := self._entry.files.get(rel_path)) is not None:
                return known.dataset_type, None, [known.dataset_type]
            if (reason := self._entry.skipped.get(rel_path)) is not None:
                return None, reason, []
        return self._matcher().classify(rel_path)


def _report_from_ledger(
    key: SessionKey,
    entry: LedgerSession,
    fields: dict[str, Any],
    rel_paths: list[str],
    file_options: dict[str, Any],
    *,
    whole_folder: bool,
) -> SessionReport | None:
    """The report of a session the ledger shows as registered as it is, or None when it does
    not (a new, changed or unknown file, a registered file gone from the whole folder, or
    session fields not sent from here before)."""
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
        if (
            stat.S_ISLNK(st.st_mode)
            or known is None
            or not known.matches(st, repository, max_md5_size)
        ):
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


def _settled_stats(paths: list[Path]) -> dict[Path, os.stat_result]:
    """The stats of the files whose stat identifies their content (see `ledger.settled`)."""
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
