"""The file pipeline of registration: one outcome for every file, whatever happens to it.

Files go through these steps, each of which may settle a file's outcome:

1. candidates: the files inside a session folder, with a good name and one dataset type
   (otherwise ``skipped``, with the reason);
2. hash: sizes and md5s, through the digest cache (a file that cannot be read is ``skipped``;
   files of ``max_md5_size`` bytes or more are registered without a hash, as ONE-api does);
3. drop unchanged: files the target holds with the same size and hash are not sent again
   (``unchanged``);
4. send: one ``register-file`` request per session and ``batch_size`` files (``created``);
5. isolate refusals: a batch the target refused because of some of its files fails those files
   and sends the others again (``failed``, with the target's answer);
6. protected revisions: files of protected datasets are moved into a new revision folder and
   sent there (ONE-api's behaviour), or failed, as the caller asks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import cycle, repeat
from pathlib import Path
from typing import Any, Literal

from one_flows.alf import get_session_path
from one_flows.errors import is_outage
from one_flows.hashing import ABOVE_MAX_MD5_SIZE, DigestCache, hash_files
from one_flows.registration.files import Classifier, DatasetTypeMatcher, name_problem
from one_flows.registration.outcomes import (
    NOT_IN_SESSION,
    PROTECTED,
    FileOutcome,
    Outcome,
    unchanged_record,
)
from one_flows.registration.revisions import unprotected_rel_path
from one_flows.targets import (
    FileBatch,
    ProtectedDatasets,
    RegisteredDataset,
    RegistrationRefused,
    RegistrationTarget,
)
from one_flows.walk import SessionKey, link_problem

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "FileOptions",
    "FilePipeline",
    "HashAhead",
    "ProtectedMode",
    "check_options",
]

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 1000
"""Files per ``register-file`` request; a session with more files is sent in several."""

NO_HASH = f"{ABOVE_MAX_MD5_SIZE}: registered without a hash"
ProtectedMode = Literal["revision", "fail"]


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
class FileOptions:
    """The ``register_files`` arguments that apply to every batch.

    Attributes
    ----------
    created_by : str or None
        The user the datasets are registered as (None: the target's).
    repository : str or None
        The data repository the files are in.
    exists, server_only, default : bool
        The flags of Alyx's ``register-file`` of the same names.
    protected : {"revision", "fail"}
        What to do with the files of protected datasets.
    extra : dict
        Other fields of the request body.
    """

    created_by: str | None = None
    repository: str | None = None
    exists: bool = True
    server_only: bool = False
    default: bool = True
    protected: ProtectedMode = "revision"
    extra: dict[str, Any] | None = None


def check_options(protected: Any, max_md5_size: Any) -> None:
    """Refuse a bad ``protected`` or ``max_md5_size`` argument before anything is sent.

    Raises
    ------
    ValueError
        ``protected`` is not "revision" or "fail", or ``max_md5_size`` is not a non-negative
        integer (or None).
    """
    if protected not in ("revision", "fail"):
        raise ValueError(f'protected must be "revision" or "fail", not {protected!r}')
    if max_md5_size is not None and (
        isinstance(max_md5_size, bool) or not isinstance(max_md5_size, int) or max_md5_size < 0
    ):
        raise ValueError(f"max_md5_size must be a non-negative integer, not {max_md5_size!r}")


class FilePipeline:
    """Registers files into a target, one outcome per file.

    Parameters
    ----------
    target : RegistrationTarget
        Where the files are registered.
    matcher : callable
        Returns the `DatasetTypeMatcher` of the target (called on first need).
    digests : callable
        Returns the digest cache to hash through, or None.
    hash_workers : int or None
        Threads hashing files (None: one per CPU).
    batch_size : int
        Files per registration request.
    """

    def __init__(
        self,
        target: RegistrationTarget,
        matcher: Callable[[], DatasetTypeMatcher],
        digests: Callable[[], DigestCache | None],
        hash_workers: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self.target = target
        self._matcher = matcher
        self._digests = digests
        self.hash_workers = hash_workers
        self.batch_size = batch_size
        self.ahead: HashAhead | None = None
        """Hashing ahead of this pipeline's requests, across sessions (see `HashAhead`)."""
        self.sending: threading.Semaphore | None = None
        """Bounds the batches being sent at once, when set."""

    def register(
        self,
        paths: list[Path],
        options: FileOptions,
        *,
        versions: str | Iterable[str | None] | None = None,
        max_md5_size: int | None = None,
        classifier: Classifier | None = None,
        known: dict[Path, list[RegisteredDataset]] | None = None,
    ) -> list[FileOutcome]:
        """Register files; returns one outcome per path, in order.

        Parameters
        ----------
        paths : list of Path
            The files, in any sessions.
        options : FileOptions
            What to record about every file.
        versions : str or iterable, optional
            One version for all files, or a list cycled over them.
        max_md5_size : int, optional
            Files of this many bytes or more are registered without a hash.
        classifier : Classifier, optional
            Decides the dataset types (default: the target's `DatasetTypeMatcher`).
        known : dict, optional
            The datasets the target holds, by session folder: files held as they are are not
            sent again.
        """
        settled, by_session = self._prepare(paths, versions, max_md5_size, classifier)
        for session, files in by_session.items():
            if known is not None and session in known:
                files = _drop_unchanged(files, known[session], options.repository, settled)
            for batch, chunk in self._batches(session, files, options):
                with self.sending or contextlib.nullcontext():
                    sent = self._send(batch, chunk, options)
                for outcome, c in zip(sent, chunk, strict=True):
                    settled[c.index] = outcome
        return [settled[i] for i in range(len(paths))]

    def payloads(
        self,
        paths: list[Path],
        options: FileOptions,
        *,
        versions: str | Iterable[str | None] | None = None,
        max_md5_size: int | None = None,
    ) -> list[dict[str, Any]]:
        """The request bodies that ``register`` would send, after hashing, sending nothing."""
        _, by_session = self._prepare(paths, versions, max_md5_size, None)
        return [
            batch.payload()
            for session, files in by_session.items()
            for batch, _ in self._batches(session, files, options)
        ]

    def _prepare(
        self,
        paths: list[Path],
        versions: str | Iterable[str | None] | None,
        max_md5_size: int | None,
        classifier: Classifier | None,
    ) -> tuple[dict[int, FileOutcome], dict[Path, list[_Candidate]]]:
        """The outcomes settled before sending (by index), and the files to send by session."""
        candidates, settled = self._candidates(paths, versions, classifier)
        settled.update(self._hash(candidates, max_md5_size))
        by_session: dict[Path, list[_Candidate]] = {}
        for c in candidates:
            if c.index not in settled:
                by_session.setdefault(c.session, []).append(c)
        return settled, by_session

    def _batches(
        self, session: Path, files: list[_Candidate], options: FileOptions
    ) -> Iterator[tuple[FileBatch, list[_Candidate]]]:
        key = SessionKey.from_path(session)
        for start in range(0, len(files), self.batch_size):
            chunk = files[start : start + self.batch_size]
            yield _batch(key, chunk, options), chunk

    def _candidates(
        self,
        paths: list[Path],
        versions: str | Iterable[str | None] | None,
        classifier: Classifier | None,
    ) -> tuple[list[_Candidate], dict[int, FileOutcome]]:
        """The registrable files, and the skipped outcomes of the others by index."""
        matcher = classifier or self._matcher()
        candidates = []
        skipped: dict[int, FileOutcome] = {}
        for index, (path, version) in enumerate(zip(paths, _versions(versions), strict=False)):
            session = get_session_path(path)
            if session is None:
                skipped[index] = FileOutcome(path, Outcome.SKIPPED, NOT_IN_SESSION)
                continue
            session = Path(session)
            rel_path = path.relative_to(session).as_posix()
            problem = name_problem(rel_path) or link_problem(path, session)
            if problem is None:
                dataset_type, problem, _ = matcher.classify(rel_path)
                if dataset_type is not None:
                    candidates.append(
                        _Candidate(index, path, session, rel_path, dataset_type, version)
                    )
                    continue
            skipped[index] = FileOutcome(path, Outcome.SKIPPED, problem, rel_path=rel_path)
        return candidates, skipped

    def _hash(
        self, candidates: list[_Candidate], max_md5_size: int | None
    ) -> dict[int, FileOutcome]:
        """Fill in sizes and md5s; returns the skipped outcomes of files that cannot be hashed."""
        if (ahead := self.ahead) is not None:
            ahead.wait({c.session for c in candidates})
        hashes = hash_files(
            [c.path for c in candidates],
            workers=self.hash_workers,
            max_md5_size=max_md5_size,
            cache=self._digests(),
        )
        skipped = {}
        for c, result in zip(candidates, hashes, strict=True):
            c.size, c.md5 = result.size, result.md5
            if not result.ok and result.reason != ABOVE_MAX_MD5_SIZE:
                skipped[c.index] = c.outcome(Outcome.SKIPPED, result.reason)
        return skipped

    def _send(
        self, batch: FileBatch, files: list[_Candidate], options: FileOptions
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
        options: FileOptions,
    ) -> list[FileOutcome]:
        """Fail the files a refusal names, and send the rest again.

        Alyx answers 500 for a whole batch when one file has no dataset type, naming the file
        (and registers the files before it). A 4xx, or a refusal that names no file of the
        batch, concerns the request as a whole: every file fails with it, unless the refusal
        came from an outage (a 5xx that names no file: the server's failure, raised).
        """
        reason = str(exc)
        named = {
            i for i, name in enumerate(batch.filenames) if f'"{name.rpartition("/")[2]}"' in reason
        }
        cause = exc.__cause__
        if not named and cause is not None and is_outage(cause):
            raise cause
        if (exc.status is not None and exc.status < 500) or not named:
            return [c.outcome(Outcome.FAILED, reason) for c in files]
        rest = [i for i in range(len(files)) if i not in named]
        retried: Iterator[FileOutcome] = iter(())
        if rest:
            retried = iter(self._send(batch.subset(rest), [files[i] for i in rest], options))
        return [
            files[i].outcome(Outcome.FAILED, reason) if i in named else next(retried)
            for i in range(len(files))
        ]

    def _resolve_protected(
        self,
        batch: FileBatch,
        files: list[_Candidate],
        details: dict[str, list[tuple[str, bool]]],
        options: FileOptions,
    ) -> list[FileOutcome]:
        """Handle the target's refusal to overwrite protected datasets (see ``register_files``)."""
        failed: dict[int, FileOutcome] = {}
        keep: list[int] = []
        names: list[str] = []
        for i, (c, name) in enumerate(zip(files, batch.filenames, strict=True)):
            revisions = details.get(name, [])
            if options.protected == "fail":
                if any(is_protected for _, is_protected in revisions):
                    failed[i] = c.outcome(Outcome.FAILED, PROTECTED)
                    continue
                new_name = name
            else:
                new_name = unprotected_rel_path(name, revisions)
            if new_name != name:
                problem = _move(c, new_name)
                if problem is not None:
                    failed[i] = c.outcome(Outcome.FAILED, f"{PROTECTED}: {problem}")
                    continue
            keep.append(i)
            names.append(new_name)
        sent: Iterator[FileOutcome] = iter(())
        if keep:
            # As ONE-api: the new revisions are free, so the server need not check again.
            retry = batch.subset(keep, filenames=names, check_protected=options.protected == "fail")
            sent = iter(self._send(retry, [files[i] for i in keep], options))
        return [failed[i] if i in failed else next(sent) for i in range(len(files))]


class _Stopped(Exception):
    """Stops `HashAhead`'s hashing of a session, from its progress callback."""


class HashAhead:
    """Hashes sessions' files into the digest cache, in order, ahead of their registration.

    A thread hashes one session after another (each with ``workers`` threads), so that while
    the first sessions' files are being sent, the next sessions' are hashed; a pipeline hashing
    a session's files first waits for that session's turn, and then finds every digest in the
    cache.

    Parameters
    ----------
    sessions : list of (Path, list of Path)
        The session folders, in the order they will be registered, with the files to hash.
    cache : DigestCache
        Where the digests go.
    workers : int or None
        Threads hashing one session's files (None: one per CPU).
    max_md5_size : int or None
        Files of this many bytes or more are not hashed.
    """

    def __init__(
        self,
        sessions: list[tuple[Path, list[Path]]],
        cache: DigestCache,
        workers: int | None = None,
        max_md5_size: int | None = None,
    ) -> None:
        self._sessions = sessions
        self._done = {session: threading.Event() for session, _ in sessions}
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(cache, workers, max_md5_size), name="hash-ahead", daemon=True
        )
        self._thread.start()

    def _run(self, cache: DigestCache, workers: int | None, max_md5_size: int | None) -> None:
        for session, paths in self._sessions:
            if self._stopped.is_set():
                break
            try:
                hash_files(
                    paths,
                    workers=workers,
                    max_md5_size=max_md5_size,
                    cache=cache,
                    progress=self._go_on,
                )
            except Exception as exc:  # the session's own hashing will meet it and report it
                logger.debug("%s: not hashed ahead: %s", session, exc)
            finally:
                self._done[session].set()
        for done in self._done.values():
            done.set()

    def _go_on(self, done: int, total: int) -> None:
        """Stop hashing, between two chunks, once `stop` was called."""
        if self._stopped.is_set():
            raise _Stopped

    def wait(self, sessions: Iterable[Path]) -> None:
        """Wait until the sessions' files were hashed ahead (at once for other sessions)."""
        for session in sessions:
            if (done := self._done.get(session)) is not None:
                done.wait()

    def stop(self) -> None:
        """Stop hashing (the files being read stop at their next chunk) and wait for it."""
        self._stopped.set()
        self._thread.join()


def _drop_unchanged(
    files: list[_Candidate],
    registered: list[RegisteredDataset],
    repository: str | None,
    settled: dict[int, FileOutcome],
) -> list[_Candidate]:
    """The files the target does not hold yet as they are; the others are settled
    ``unchanged`` in ``settled``."""
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
            settled[c.index] = c.outcome(Outcome.UNCHANGED, dataset=dataset)
        else:
            remaining.append(c)
    return remaining


def _versions(versions: str | Iterable[str | None] | None) -> Iterator[str | None]:
    if versions is None or isinstance(versions, str):
        return repeat(versions)
    return cycle(list(versions) or [None])


def _batch(key: SessionKey, files: list[_Candidate], options: FileOptions) -> FileBatch:
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
        extra=dict(options.extra or {}),
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
