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
- ``register_sessions`` keeps a slow server's workers busy: the sessions with the most files go
  first, their files are hashed ahead while earlier sessions are sent, and the next sessions'
  records are created meanwhile (see `RegistrationClient.register_sessions`).

This module is the ONE-compatible facade; the work is done in the modules beside it:
``register_sessions``' scheduling across sessions in `one_flows.registration.batch`, the file
pipeline (``register_files`` and a session's files) in `one_flows.registration.pipeline`, the
ledger's fast path in `one_flows.registration.ledger`, animal care (``register_weight``,
``register_water_administration``) in `one_flows.registration.care`, session folders, locks
and fields in `one_flows.registration.sessions`, and the recovery of a timed-out session
creation in the target (`one_flows.targets.AlyxTarget`).
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from one_flows import flags
from one_flows.alf import get_session_path
from one_flows.alyx import AlyxClient
from one_flows.hashing import DigestCache
from one_flows.registration.batch import SessionBatch, in_parallel
from one_flows.registration.care import AnimalCare
from one_flows.registration.errors import MemberNotFound, SubjectNotFound
from one_flows.registration.files import (
    Classifier,
    DatasetTypeMatcher,
    FoundFiles,
    glob_matches,
    relative_files,
    walk_session,
)
from one_flows.registration.ledger import (
    LedgerClassifier,
    LedgerSession,
    RegistrationLedger,
    remember,
    report_from_ledger,
    settled_stats,
)
from one_flows.registration.outcomes import FileOutcome, RegisteredFiles, SessionReport
from one_flows.registration.pipeline import (
    DEFAULT_BATCH_SIZE,
    FileOptions,
    FilePipeline,
    ProtectedMode,
    check_options,
)
from one_flows.registration.sessions import (
    ensure_ISO8601,
    make_session_folder,
    session_changes,
    session_lock,
)
from one_flows.targets import AlyxTarget, DatasetType, RegisteredDataset, RegistrationTarget
from one_flows.targets.base import preferred_session
from one_flows.walk import SessionKey

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "RegistrationClient",
    "default_digest_cache_path",
    "default_ledger_path",
    "default_lock_folder",
]

logger = logging.getLogger(__name__)

LEDGER_FILE_NAME = "registrations.sqlite"
LOCK_FOLDER_NAME = "session-locks"


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

    Raises
    ------
    TypeError
        ``one`` is not connected to an Alyx (or not a ONE instance at all).
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


class RegistrationClient:
    """Creates sessions and registers files into a registration target.

    Parameters
    ----------
    target : RegistrationTarget, AlyxClient, ONE instance or None
        A `RegistrationTarget`; an `AlyxClient` (wrapped in an `AlyxTarget`); a ONE
        instance connected to an Alyx, as ONE-api's ``RegistrationClient(one)`` takes it
        (ONE-api's ``OneAlyx``, whose URL, user and token are used, or our
        `one_flows.one.One`); None connects to the Alyx server configured in the
        environment.
    session_root : str or PathLike, optional
        The folder ``create_new_session`` makes session folders in by default
        (with a ONE instance, by default its ``cache_dir``, as ONE-api's).
    digest_cache : DigestCache, str, PathLike or bool
        A `DigestCache`, the path of one, True for `default_digest_cache_path()`
        or False to hash every file every time.
    max_workers : int
        Sessions registered at once by ``create_sessions``; file batches sent at once by
        ``register_sessions``, which gets as many sessions more ready meanwhile (their records
        created, their files hashed).
    hash_workers : int, optional
        Threads hashing files (default: one per CPU).
    batch_size : int
        Files per registration request.
    ledger : RegistrationLedger, str, PathLike or bool
        A `RegistrationLedger`, the path of one, False for none, or True (the default)
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
        self._asking: dict[tuple[str, str], threading.Lock] = {}
        self._lock = threading.Lock()
        self._pipeline = FilePipeline(
            self.target, self._dataset_type_matcher, self._digest_cache, hash_workers, batch_size
        )
        self._batch = SessionBatch(
            self.target,
            self._pipeline,
            self._dataset_type_matcher,
            self._digest_cache,
            self._require,
            max_workers,
            hash_workers,
        )
        self._care = AnimalCare(self.target, self._require)

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

        Raises
        ------
        SubjectNotFound
            an unknown subject (``endpoint="subjects"``).
        MemberNotFound
            any other unknown member.
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
        """Like ``assert_exists``, answering from the records this client already found; of
        several threads needing one record, one asks and the others wait for its answer."""
        with self._lock:
            record = self._known.get((endpoint, member))
            asking = self._asking.setdefault((endpoint, member), threading.Lock())
        if record is not None:
            return record
        with asking:
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

        Raises
        ------
        ValueError, TypeError
            a bad argument; nothing was sent.
        SubjectNotFound, MemberNotFound
            an unknown subject or user.
        """
        key, file_options, fields = _arguments(ses_path, users, kwargs)
        with_files = file_list is not False and file_list is not None
        ledger = self._registration_ledger()
        entry = None if ledger is None else ledger.session(self.target.label, key.path)
        if entry is not None and not recheck:
            vouched = self._vouched(key, entry, fields, file_list, file_options)
            if vouched is not None:
                return vouched
        trusted = None if recheck else entry
        classifier = LedgerClassifier(self._dataset_type_matcher, trusted)
        files = self._session_files(key, file_list, classifier, reuse=trusted is None)
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
                stats = settled_stats(paths)
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
            remember(
                ledger,
                self.target.label,
                key,
                report,
                fields,
                entry,
                stats,
                whole_folder=file_list is True,
                repository=file_options.get("repository"),
            )
        return report

    def _vouched(
        self,
        key: SessionKey,
        entry: LedgerSession,
        fields: dict[str, Any],
        file_list: bool | Iterable[str | os.PathLike[str]],
        file_options: dict[str, Any],
    ) -> SessionReport | None:
        """The report of a session the ledger vouches for (see `report_from_ledger`) and the
        target does not contradict, without a request; None when it does not."""
        if file_list is True:
            rel_paths = relative_files(key.path)
        else:
            listed = _listed(key, file_list) or []
            rel_paths = [p.relative_to(key.path).as_posix() for p in listed]
        report = report_from_ledger(
            key, entry, fields, rel_paths, file_options, whole_folder=file_list is True
        )
        held = [o.dataset["id"] for o in report.files if o.dataset] if report else []
        if report is None or not self.target.holds(entry.eid, held):
            return None
        report.with_files = file_list is not False and file_list is not None
        logger.info("%s", report.summary())
        return report

    def _session_files(
        self,
        key: SessionKey,
        file_list: bool | Iterable[str | os.PathLike[str]],
        classifier: Classifier,
        *,
        reuse: bool,
    ) -> tuple[list[Path], list[FileOutcome]] | None:
        """The files to register and those skipped, or None for no file registration; with
        ``reuse``, those ``register_sessions`` found for the folder, if it did."""
        if file_list is True:
            found = self._batch.found(key.path) if reuse else None
            if found is None:
                found = walk_session(key.path, classifier)
            return list(found), found.skipped
        paths = _listed(key, file_list)
        return None if paths is None else (paths, [])

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
        session = preferred_session(existing)
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
        """Create the session's record."""
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
        return self.target.create_session(record)

    def register_sessions(
        self, session_paths: Iterable[str | os.PathLike[str]], **kwargs: Any
    ) -> list[SessionReport]:
        """Register several session folders in parallel.

        Each gets a `SessionReport`, in input order; a session that raised has ``error`` set,
        and the others go on. Keyword arguments are those of ``register_session``.

        Sessions the ledger vouches for are answered first, without a request. The others go
        most files first, so that the last to finish are short: at most ``max_workers`` send
        files at once, while as many more get ready (their records looked up and created), so
        that a server's workers go from one session's files to the next without waiting. With
        a digest cache, their files are hashed ahead, one session after another in that order
        (`HashAhead`), while the sessions before are being created and sent: a session's
        requests wait for its own hashing only, never for the others'.

        Calls on one client run one after another (each uses the client's ``max_workers``);
        ``register_session`` calls from other threads meanwhile share its bound on sending.
        """
        return self._batch.run(
            [Path(p) for p in session_paths],
            lambda path: self.register_session(path, **kwargs),
            lambda path: self._ledger_pass(path, kwargs),
            kwargs.get("max_md5_size"),
        )

    def _ledger_pass(self, path: Path, kwargs: dict[str, Any]) -> SessionReport | SessionKey | None:
        """What the ledger says of ``register_session(path, **kwargs)`` before it runs: its
        report, when the ledger vouches for the session; the session's key, when it will be
        registered as a whole folder and the ledger does not hold it (its files can be found
        and hashed ahead); None otherwise, or for bad arguments (which ``register_session``
        reports)."""
        ledger = self._registration_ledger()
        file_list = kwargs.get("file_list", True)
        try:
            key, file_options, fields = _arguments(
                path, kwargs.get("users"), _session_kwargs(kwargs)
            )
            entry = None if ledger is None else ledger.session(self.target.label, key.path)
            if entry is None or kwargs.get("recheck"):
                return key if file_list is True else None
            return self._vouched(key, entry, fields, file_list, file_options)
        except Exception:  # register_session meets it again and says what it is
            return None

    def create_sessions(
        self,
        root_data_folder: str | os.PathLike[str],
        glob_pattern: str = "**/create_me.flag",
        register_files: bool = False,
        dry: bool = False,
    ) -> tuple[list[Path], list[SessionReport]]:
        """Register the session of every flag file found under ``root_data_folder``.

        The last element of ``glob_pattern`` names the flag (a name ending in ``.flag``), and
        the flags are those of `one_flows.flags` (`flags.find_flags`: pending flags in session
        folders; a flag elsewhere is logged and left alone) whose path under the root matches
        the whole pattern. A flag's folder is the session folder. ``register_files`` also
        registers the files in it. A flag is claimed while its session is registered, removed
        once it is, and put back (with the reason) when that failed. Returns the session
        folders and, unless ``dry``, a `SessionReport` for each, in the same order; a failed
        session has ``error`` set and does not stop the others.
        """
        root = Path(root_data_folder)
        name = Path(glob_pattern).name
        found = {
            flag.session_path: flag
            for flag in flags.find_flags(root, names=[name], states=[flags.FlagState.PENDING])
            if glob_matches(flag.path.relative_to(root).as_posix(), glob_pattern)
        }
        sessions = sorted(found)
        if dry:
            return sessions, []
        run_id = f"create-sessions-{uuid.uuid4().hex}"

        def one(path: Path) -> SessionReport:
            try:
                claim = flags.claim(found[path], run_id)
            except flags.FlagError as exc:
                logger.error("%s: flag not claimed: %s", path, exc)
                return SessionReport(path, error=exc)
            if claim is None:
                error = flags.ClaimLost(found[path].path, "claimed by another run meanwhile")
                return SessionReport(path, error=error)
            try:
                report = self.register_session(path, file_list=register_files)
            except Exception as exc:
                logger.error("%s: session not created: %s", path, exc)
                flags.give_back([claim], f"session not created: {exc}", logger)
                return SessionReport(path, error=exc)
            except BaseException:
                flags.give_back([claim], "interrupted", logger)
                raise
            try:
                flags.complete(claim)
            except flags.FlagError as exc:
                logger.error("%s: session registered, but its flag was not removed: %s", path, exc)
                report.error = exc
            return report

        return sessions, in_parallel(one, sessions, self.max_workers)

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
    ) -> list[FileOutcome] | list[dict[str, Any]]:
        """The file pipeline's outcomes (request bodies with ``dry``) for ``register_files``'
        arguments."""
        check_options(protected, max_md5_size)
        options = FileOptions(
            created_by=created_by or self.target.user,
            repository=repository,
            exists=exists,
            server_only=server_only,
            default=default,
            protected=protected,
            extra=extra,
        )
        if dry:
            return self._pipeline.payloads(
                paths, options, versions=versions, max_md5_size=max_md5_size
            )
        return self._pipeline.register(
            paths,
            options,
            versions=versions,
            max_md5_size=max_md5_size,
            classifier=classifier,
            known=known,
        )

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
        return self._care.register_weight(subject, weight, date_time, user)

    def register_water_administration(
        self, subject: str, volume: float, **kwargs: Any
    ) -> dict[str, Any]:
        """Record ``volume`` ml of water given to a subject (rounded to 4 significant figures).

        Keyword arguments: ``date_time`` (default now), ``water_type`` (default "Water"),
        ``user`` (default the target's user), ``session`` (an id, a session folder, or a
        session record) and ``adlib`` (default False).
        """
        return self._care.register_water_administration(subject, volume, **kwargs)


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


def _arguments(
    ses_path: str | os.PathLike[str], users: str | Iterable[str] | None, kwargs: dict[str, Any]
) -> tuple[SessionKey, dict[str, Any], dict[str, Any]]:
    """The session key, ``register_files``' options and the session fields of
    ``register_session``'s arguments; the options are taken out of ``kwargs``.

    Raises
    ------
    ValueError, TypeError
        A bad argument.
    """
    key = SessionKey.from_path(ses_path)
    file_options = {name: kwargs.pop(name) for name in _FILE_OPTION_NAMES if name in kwargs}
    check_options(file_options.get("protected", "revision"), file_options.get("max_md5_size"))
    return key, file_options, session_changes(key, users, kwargs)


def _session_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``register_session``'s keyword arguments among those of ``register_sessions``, without
    those it names."""
    named = {"users", "file_list", "recheck", "record_from"}
    return {name: value for name, value in kwargs.items() if name not in named}


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
