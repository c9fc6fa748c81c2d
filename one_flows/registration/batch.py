"""Cross-session scheduling for `RegistrationClient.register_sessions`.

`SessionBatch` registers several session folders so that a slow server's workers stay busy:

- Sessions the ledger vouches for are answered first, in the calling thread, without a request.
- The others go biggest first (most files), so that the last to finish are short.
- Their reference records (data formats, subjects) are read and their folders walked ahead, and
  with a digest cache their files are hashed ahead, one session after another in that order
  (`HashAhead`), while earlier sessions are being created and sent.
- At most ``max_workers`` sessions send file batches at once, while as many more get ready
  (their records looked up and created).
- Calls on one batch run one after another.

The per-session work (``register_session``) stays the client's: this module only orders it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from one_flows.hashing import DigestCache
from one_flows.registration.errors import SessionFolderUnreadable
from one_flows.registration.files import DatasetTypeMatcher, FoundFiles, walk_session
from one_flows.registration.outcomes import SessionReport
from one_flows.registration.pipeline import FilePipeline, HashAhead, check_options
from one_flows.targets import RegistrationTarget
from one_flows.walk import SessionKey

__all__ = ["SessionBatch", "in_parallel"]

logger = logging.getLogger(__name__)

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


def in_parallel(
    work: Callable[[_Item], _Result],
    items: list[_Item],
    max_workers: int,
    threads: int | None = None,
) -> list[_Result]:
    """``work`` applied to each item, in order: in ``threads`` threads (default
    ``max_workers``), or in this thread for one item or ``max_workers=1``."""
    if len(items) <= 1 or max_workers == 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(threads or max_workers, thread_name_prefix="register") as pool:
        return list(pool.map(work, items))


class SessionBatch:
    """Schedules the registration of several sessions for one client (see the module).

    Parameters
    ----------
    target : RegistrationTarget
        The client's target.
    pipeline : FilePipeline
        The client's file pipeline, whose sending and hashing ahead a call bounds and feeds.
    matcher : callable
        Gives the client's `DatasetTypeMatcher`.
    digest_cache : callable
        Gives the client's `DigestCache`, or None without one.
    require : callable
        ``require(endpoint, member)``: the client's cached look-up of a reference record.
    max_workers : int
        Sessions sending file batches at once.
    hash_workers : int, optional
        Threads hashing files ahead (default: one per CPU).
    """

    def __init__(
        self,
        target: RegistrationTarget,
        pipeline: FilePipeline,
        matcher: Callable[[], DatasetTypeMatcher],
        digest_cache: Callable[[], DigestCache | None],
        require: Callable[[str, str], Any],
        max_workers: int,
        hash_workers: int | None,
    ) -> None:
        self.target = target
        self.pipeline = pipeline
        self.matcher = matcher
        self.digest_cache = digest_cache
        self.require = require
        self.max_workers = max_workers
        self.hash_workers = hash_workers
        self._walked: dict[Path, FoundFiles] = {}
        self._lock = threading.Lock()
        self._running = threading.Lock()  # one run at a time

    def found(self, path: Path) -> FoundFiles | None:
        """The files a running call found in a session folder, handed over once."""
        with self._lock:
            return self._walked.pop(path, None)

    def run(
        self,
        paths: list[Path],
        register: Callable[[Path], SessionReport],
        ledger_pass: Callable[[Path], SessionReport | SessionKey | None],
        max_md5_size: Any = None,
    ) -> list[SessionReport]:
        """A `SessionReport` for each path, in order, from ``register`` (a session that raised
        gets its ``error`` set) or from ``ledger_pass``: a report when the ledger vouches for
        the session, the session's key when its whole folder will be registered (its files are
        then found and hashed ahead), None otherwise."""
        # Sessions the ledger vouches for are answered here: no request, nothing to overlap.
        passed = [ledger_pass(p) for p in paths]
        reports = {i: r for i, r in enumerate(passed) if isinstance(r, SessionReport)}
        unheld = [key if isinstance(key, SessionKey) else None for key in passed]
        subjects = list(dict.fromkeys(key.subject for key in unheld if key is not None))
        looking_up = threading.Thread(
            target=self._look_up_ahead, args=(subjects,), name="look-up-ahead", daemon=True
        )

        def one(i: int) -> SessionReport:
            try:
                return register(paths[i])
            except Exception as exc:
                logger.error("%s: registration failed: %s", paths[i], exc)
                return SessionReport(paths[i], error=exc)

        with self._running:
            if subjects:
                looking_up.start()
            ahead = None
            try:
                files = self._walk_ahead(unheld)
                order = sorted(
                    (i for i in range(len(paths)) if i not in reports),
                    key=lambda i: -len(files[i] or ()),
                )
                ahead = self._hash_ahead(
                    [(found.session_path, list(found)) for i in order if (found := files[i])],
                    max_md5_size,
                )
                # As many sessions as send files at once get their records and hashes ready.
                self.pipeline.sending = threading.Semaphore(self.max_workers)
                done = in_parallel(one, order, self.max_workers, 2 * self.max_workers)
                reports.update(zip(order, done, strict=True))
            finally:
                if subjects:
                    looking_up.join()
                with self._lock:
                    self._walked.clear()
                self.pipeline.sending = None
                if ahead is not None:
                    self.pipeline.ahead = None
                    ahead.stop()
        return [reports[i] for i in range(len(paths))]

    def _look_up_ahead(self, subjects: list[str]) -> None:
        """Read the data formats and the subjects' records while the folders are walked."""
        try:
            self.target.file_extensions()
            for subject in subjects:
                self.require("subjects", subject)
        except Exception as exc:  # each session that needs it asks again, and reports
            logger.debug("reference records not read ahead: %s", exc)

    def _walk_ahead(self, keys: list[SessionKey | None]) -> list[FoundFiles | None]:
        """The files ``register_session`` will find in these session folders, kept for it;
        None for no key, or a folder that cannot be walked. Nothing is walked when the target's
        dataset types cannot be read: each session then meets the cause and reports it."""
        if not any(keys):
            return [None] * len(keys)
        try:
            matcher = self.matcher()
        except Exception:
            return [None] * len(keys)
        found: list[FoundFiles | None] = []
        for key in keys:
            try:
                found.append(None if key is None else walk_session(key.path, matcher))
            except (OSError, SessionFolderUnreadable):
                found.append(None)
        with self._lock:
            self._walked.update(
                (key.path, files) for key, files in zip(keys, found, strict=True) if key and files
            )
        return found

    def _hash_ahead(
        self, sessions: list[tuple[Path, list[Path]]], max_md5_size: Any
    ) -> HashAhead | None:
        """Start hashing ``sessions`` ahead of the pipeline, with a digest cache."""
        cache = self.digest_cache()
        if cache is None or len(sessions) < 2 or self.max_workers == 1:
            return None
        try:
            check_options("revision", max_md5_size)
        except ValueError:
            return None  # each session reports it
        ahead = HashAhead(sessions, cache, self.hash_workers, max_md5_size)
        self.pipeline.ahead = ahead
        return ahead
