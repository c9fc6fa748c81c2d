"""Prefect tasks for each step of registering a session, and the settings they share.

Each task is a thin wrapper over a library function (`one_flows.flags`,
`one_flows.registration`, `one_flows.hashing`), so the steps show up in the Prefect UI, retry on
their own and can be composed into other flows. Tasks take only plain, picklable arguments:
where registrations go is a `Target` (the name of an `AlyxCredentials` block, an Alyx URL, or a
cache folder), and each task builds its client from it. One client per target is kept per flow
run, so a flow run logs in once.

Retries: tasks that talk to the target retry what `is_transient` calls transient (429, 502,
503, 504, dropped and refused connections, timeouts) with exponential backoff and jitter, and
wait at least as long as a ``Retry-After`` from the server asks; a 500 is retried at most
`SERVER_ERROR_RETRIES` times, and 4xx never. `RetrySettings` sets the number and the delays, and
flows take it as a parameter, so each deployment can choose.
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import TaskRun
from prefect.concurrency.sync import rate_limit
from prefect.context import FlowRunContext, TaskRunContext
from prefect.exceptions import ObjectNotFound
from prefect.states import State
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, ConfigDict, Field, model_validator

from one_flows import flags
from one_flows.alyx import AlyxClient, AlyxServerError, is_transient
from one_flows.alyx.ratelimit import RateLimiter
from one_flows.alyx.retry import retry_after
from one_flows.alyx.settings import ENV_URL
from one_flows.hashing import DigestCache, FileHash, hash_files
from one_flows.prefect.blocks import alyx_client
from one_flows.registration import (
    FileOutcome,
    RegistrationClient,
    SessionReport,
    default_digest_cache_path,
)
from one_flows.targets import AlyxTarget, LocalTarget, RegistrationTarget, TargetUnavailable

__all__ = [
    "HASHING_PROGRESS_MIN_BYTES",
    "HASH_BATCH_BYTES",
    "MAX_RETRY_AFTER",
    "SERVER_ERROR_RETRIES",
    "SHARED_LIMIT_BATCH",
    "DiscoveredFiles",
    "RetrySettings",
    "SharedRateLimit",
    "Target",
    "alyx_rate_limit_name",
    "check_target",
    "claim_session",
    "complete_claim",
    "create_or_fetch_session",
    "current_run_id",
    "discover_files",
    "fail_claim",
    "find_flagged_sessions",
    "flow_run_is_running",
    "hash_file_batch",
    "hash_session_files",
    "pace_by_shared_limit",
    "reap_stale_claims",
    "register_session_files",
    "register_session_folder",
    "register_water_administration",
    "register_weight",
    "registration_client",
    "retry_if_transient",
]

logger = logging.getLogger(__name__)

SERVER_ERROR_RETRIES = 2
"""Retries of a server error (500), which the input usually causes, so more seldom help."""
MAX_RETRY_AFTER = 120.0
"""The longest ``Retry-After`` (seconds) a task waits for; a longer one fails the attempt."""


# -- retries ------------------------------------------------------------------------------------


def retry_if_transient(task: Any, task_run: TaskRun, state: State) -> bool:
    """Prefect's ``retry_condition_fn``: whether a failed task run is worth running again.

    Transient faults are; a server error (500) only for the first `SERVER_ERROR_RETRIES` runs;
    anything else is not. When the server asked for a longer wait (``Retry-After``) than the
    task's next retry delay, the difference is waited here, up to `MAX_RETRY_AFTER`.
    """
    exc = state.result(raise_on_failure=False)
    if not isinstance(exc, BaseException):
        return False
    if isinstance(exc, TargetUnavailable) and exc.__cause__ is not None:
        exc = exc.__cause__  # a failed check is retried as the fault that failed it
    if isinstance(exc, AlyxServerError):
        return task_run.run_count <= SERVER_ERROR_RETRIES
    if not is_transient(exc):
        return False
    asked = retry_after(exc)
    if asked is None:
        return True
    if asked > MAX_RETRY_AFTER:
        return False
    time.sleep(max(0.0, asked - _next_delay(task.retry_delay_seconds, task_run.run_count)))
    return True


def _next_delay(delays: float | list[float] | None, run_count: int) -> float:
    """The delay Prefect waits before run number ``run_count + 1`` of a task."""
    if not delays:
        return 0.0
    if isinstance(delays, int | float):
        return float(delays)
    return float(delays[min(run_count - 1, len(delays) - 1)])


class RetrySettings(BaseModel):
    """How often, and after how long, a step that failed transiently is run again."""

    model_config = ConfigDict(frozen=True)

    retries: int = Field(default=4, ge=0, le=20, description="Retries of a step, at most.")
    delay_seconds: float = Field(
        default=2.0, ge=0, description="Wait before the first retry; doubled for each next one."
    )
    max_delay_seconds: float = Field(default=60.0, ge=0, description="Longest wait.")
    jitter_factor: float = Field(
        default=0.5, ge=0, description="Random spread of each wait, as a fraction of it."
    )

    def task_options(self) -> dict[str, Any]:
        """Keyword arguments of ``Task.with_options`` that apply these settings."""
        delays = [
            min(self.max_delay_seconds, self.delay_seconds * 2**i) for i in range(self.retries)
        ]
        return {
            "retries": self.retries,
            "retry_delay_seconds": delays or 0,
            "retry_jitter_factor": self.jitter_factor or None,
        }


# -- where registrations go -----------------------------------------------------------------------


class Target(BaseModel):
    """Where sessions are registered: an Alyx database, or ONE cache tables in a folder.

    ``alyx`` is the name of a saved `AlyxCredentials` block or an Alyx URL (with credentials
    from the environment); ``cache_dir`` a folder of ONE cache tables. With neither, the
    Alyx database configured in the environment (``ALYX_URL``, or ONE-api's default).
    """

    model_config = ConfigDict(frozen=True)

    alyx: str | None = Field(
        default=None, description="An AlyxCredentials block name, or an Alyx URL."
    )
    cache_dir: Path | None = Field(default=None, description="A folder of ONE cache tables.")

    @model_validator(mode="after")
    def _one_target(self) -> Target:
        if self.alyx and self.cache_dir is not None:
            raise ValueError("register into Alyx or into a cache folder, not both")
        return self

    @classmethod
    def choose(
        cls, alyx: str | None, cache_dir: str | os.PathLike[str] | None, root: Path
    ) -> Target:
        """The target asked for; with none, the Alyx of ``ALYX_URL`` if set, else cache tables.

        ONE-api's default database is never chosen implicitly: registering writes, so Alyx is
        used only when named here or in the environment.
        """
        if alyx or cache_dir is not None:
            return cls(alyx=alyx or None, cache_dir=cache_dir)
        if os.environ.get(ENV_URL):
            return cls()
        return cls(cache_dir=root)

    @property
    def is_local(self) -> bool:
        """Whether registrations go to cache tables rather than Alyx."""
        return self.cache_dir is not None

    def open(self) -> RegistrationTarget:
        """A new registration target (with a new client) for these settings.

        In a flow run, an Alyx client also keeps to its server's shared rate limit, when the
        Prefect server has one (see `pace_by_shared_limit`).
        """
        if self.cache_dir is not None:
            return LocalTarget(self.cache_dir)
        if self.alyx and self.alyx.startswith(("http://", "https://")):
            client = alyx_client(url=self.alyx)
        else:
            client = alyx_client(block_name=self.alyx)
        if FlowRunContext.get() is not None:
            pace_by_shared_limit(client)
        return AlyxTarget(client)


# -- the rate all workers together send to an Alyx server ----------------------------------------

SHARED_LIMIT_BATCH = 10
"""Slots a client takes at once from its Alyx server's shared rate limit, for its next requests."""


def alyx_rate_limit_name(base_url: str) -> str:
    """The name of the Prefect global concurrency limit that paces every worker's requests to
    an Alyx server: ``alyx:<host[:port]>``, e.g. ``alyx:alyx.internationalbrainlab.org``."""
    host = urlsplit(base_url).netloc.lower()
    if not host:
        raise ValueError(f"not an Alyx URL with a host: {base_url!r}")
    return f"alyx:{host}"


class SharedRateLimit:
    """Paces one client's requests by a Prefect global concurrency limit with slot decay.

    Every request takes a slot; slots are taken from Prefect ``batch`` at a time (one call to
    the Prefect API for that many Alyx requests) and spent on the next requests. The limit's
    decay is the rate all its users together keep to. ``local``, the client's own limiter,
    applies as well. Has the ``acquire`` of `one_flows.alyx.ratelimit.RateLimiter`.
    """

    def __init__(
        self,
        name: str,
        local: RateLimiter | None = None,
        *,
        batch: int = SHARED_LIMIT_BATCH,
        timeout_seconds: float | None = None,
    ) -> None:
        if batch < 1:
            raise ValueError(f"batch must be at least 1, not {batch}")
        self.name = name
        self.local = local
        self.batch = batch
        self.timeout_seconds = timeout_seconds
        self._left = 0
        # Held while waiting for Prefect, so the client's threads take their turns in order.
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait until a request may start, and return the seconds waited.

        Raises:
            TimeoutError: the slots were not granted within ``timeout_seconds``.
        """
        waited = self.local.acquire() if self.local is not None else 0.0
        with self._lock:
            if self._left == 0:
                started = time.monotonic()
                rate_limit(self.name, occupy=self.batch, timeout_seconds=self.timeout_seconds)
                waited += time.monotonic() - started
                self._left = self.batch
            self._left -= 1
        return waited


def pace_by_shared_limit(client: AlyxClient, timeout_seconds: float | None = None) -> bool:
    """Make ``client`` keep to its server's shared rate limit too, if the Prefect server has an
    active one with slot decay, named `alyx_rate_limit_name`; returns whether it does.

    Create the limit once for all workers, e.g. for at most 530 requests in any minute::

        prefect gcl create alyx:alyx.example.org --limit 50 --slot-decay-per-second 8
    """
    name = alyx_rate_limit_name(client.base_url)
    try:
        with get_client(sync_client=True) as prefect:
            limit = prefect.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        return False
    if not limit.active:
        return False
    if not limit.slot_decay_per_second:
        logger.warning("global concurrency limit %s has no slot decay, so no rate: ignored", name)
        return False
    client.rate_limiter = SharedRateLimit(
        name,
        client.rate_limiter,
        batch=min(SHARED_LIMIT_BATCH, limit.limit),
        timeout_seconds=timeout_seconds,
    )
    return True


_CLIENTS: OrderedDict[tuple[Target, str | None], RegistrationClient] = OrderedDict()
_CLIENTS_LOCK = threading.Lock()
_MAX_CLIENTS = 8


def registration_client(target: Target) -> RegistrationClient:
    """The `RegistrationClient` of the current flow run for ``target``, made on first use.

    Alyx clients are kept for the few most recent flow runs of this process, so the tasks of a
    run share one login, and a long-running worker picks up changed credentials with its next
    flow run. A cache folder has one client per process, whose target serialises the writes of
    concurrent runs to the tables.
    """
    flow_run = FlowRunContext.get()
    run_id = str(flow_run.flow_run.id) if flow_run and flow_run.flow_run else None
    key = (target, None if target.is_local else run_id)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            client = _CLIENTS[key] = RegistrationClient(target.open())
            while len(_CLIENTS) > _MAX_CLIENTS:
                _CLIENTS.popitem(last=False)[1].close()
        _CLIENTS.move_to_end(key)
        return client


@task(cache_policy=NO_CACHE, retry_condition_fn=retry_if_transient, retries=4)
def check_target(target: Target) -> str:
    """Make sure the target can be used (see `RegistrationTarget.check`); returns its label.

    Raises:
        TargetUnavailable: it cannot; the message names the cause and what to do.
    """
    checked = registration_client(target).target
    checked.check()
    return checked.label


# -- flags ----------------------------------------------------------------------------------------


def current_run_id() -> str:
    """The id of the running flow run, which claims are made in the name of."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        raise RuntimeError("claims are made by flow runs: call this inside a flow")
    return str(context.flow_run.id)


def flow_run_is_running(run_id: str) -> bool:
    """Whether the flow run ``run_id`` may still be working: known to the API and not final."""
    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(run_id)
    except (ObjectNotFound, ValueError):
        return False
    return run.state is None or not run.state.is_final()


_STEP = {"cache_policy": NO_CACHE, "retry_condition_fn": retry_if_transient, "retries": 4}


@task(cache_policy=NO_CACHE)
def reap_stale_claims(root: Path, flag: str) -> list[flags.Flag]:
    """Return the claims of flow runs that are no longer running to the pool; returns them."""
    reaped = flags.reap_stale_claims(root, flow_run_is_running, names=(flag,))
    for found in reaped:
        get_run_logger().warning("took back %s: its flow run is not running", found.path)
    return reaped


@task(cache_policy=NO_CACHE)
def find_flagged_sessions(root: Path, flag: str, quiet_seconds: float) -> list[flags.Flag]:
    """The claimable flags under ``root`` whose session has been quiet for ``quiet_seconds``."""
    ready = []
    for found in flags.find_flags(root, names=(flag,)):
        if flags.is_quiet(found.session_path, quiet_seconds):
            ready.append(found)
        else:
            get_run_logger().info("%s: files still changing; left for later", found.session_path)
    return sorted(ready, key=lambda f: f.session_path)


@task(cache_policy=NO_CACHE, task_run_name="claim-{flag.session_path.name}")
def claim_session(flag: flags.Flag) -> flags.Claim | None:
    """Claim a flag for this flow run; None when another run took it first."""
    return flags.claim(flag, current_run_id())


@task(cache_policy=NO_CACHE)
def complete_claim(claim: flags.Claim, keep_done_marker: bool = False) -> None:
    """Mark a claimed session registered: remove its flag (or keep a done marker)."""
    flags.complete(claim, keep_done_marker=keep_done_marker)


@task(cache_policy=NO_CACHE)
def fail_claim(claim: flags.Claim, reason: str, max_attempts: int) -> flags.Flag:
    """Record a failed attempt; after ``max_attempts`` the session is quarantined."""
    return flags.fail(claim, reason, max_attempts=max_attempts)


# -- sessions and files ---------------------------------------------------------------------------


@task(**_STEP)
def create_or_fetch_session(session_path: Path, target: Target) -> dict[str, Any]:
    """The session record of a folder, created if the target has none."""
    return registration_client(target).register_session(session_path, file_list=False).session


class DiscoveredFiles(BaseModel):
    """A session's files to register, and those that cannot be, with why."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    to_register: list[Path]
    skipped: list[FileOutcome]


@task(**_STEP)
def discover_files(
    session_path: Path, target: Target, listed: Iterable[str] | None = None
) -> DiscoveredFiles:
    """The files of a session to register: ``listed`` (relative paths), else every file that
    matches a dataset type of the target; the others are reported as skipped."""
    if listed is not None:
        return DiscoveredFiles(to_register=[session_path / p for p in listed], skipped=[])
    found = registration_client(target).find_files(session_path)
    return DiscoveredFiles(to_register=list(found), skipped=list(found.skipped))


class _Progress:
    """Reports hashing progress to a progress artifact, at most every `interval` seconds."""

    def __init__(self, artifact_id: Any, interval: float = 1.0) -> None:
        self.artifact_id = artifact_id
        self.interval = interval
        self.last = 0.0
        # hash_files calls back from its worker threads, which lack the flow run's context.
        self.context = contextvars.copy_context()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self.last < self.interval:
            return
        self.last = now
        percent = 100.0 * done / total if total else 100.0
        self.context.run(update_progress_artifact, self.artifact_id, percent)


HASH_BATCH_BYTES = 1 << 30
"""Bytes of files a `hash_file_batch` task reads, when hashing goes to the flow's task runner."""


@task(cache_policy=NO_CACHE)
def hash_session_files(
    paths: list[Path], max_md5_size: int | None = None, workers: int | None = None
) -> int:
    """Hash files in parallel into the digest cache, showing a progress artifact; returns the
    number of files hashed (registration then reads their digests from the cache).

    With the flow's default thread pool, the files are hashed here, ``workers`` at a time. With
    another task runner (e.g. prefect-dask's ``DaskTaskRunner``), the files not in the cache
    are hashed in `hash_file_batch` tasks on it, so a cluster that mounts the same data shares
    the reading.
    """
    context = TaskRunContext.get()
    name = context.task_run.name if context else "hashing"
    artifact_id = create_progress_artifact(0.0, description=f"Hashing files ({name})")
    progress = _Progress(artifact_id)
    flow_run = FlowRunContext.get()
    with DigestCache(default_digest_cache_path()) as cache:
        if flow_run is None or isinstance(flow_run.task_runner, ThreadPoolTaskRunner):
            results = hash_files(
                paths, workers=workers, max_md5_size=max_md5_size, cache=cache, progress=progress
            )
        else:
            results = _hash_on_task_runner(paths, max_md5_size, cache, progress)
    update_progress_artifact(artifact_id, 100.0)
    return sum(1 for r in results if r.ok)


@task(cache_policy=NO_CACHE, task_run_name="hash-from-{paths[0].name}")
def hash_file_batch(paths: list[Path], max_md5_size: int | None = None) -> list[FileHash]:
    """Hash files where the task runs; the digests go back to the flow run, which caches them."""
    return hash_files(paths, max_md5_size=max_md5_size)


def _hash_on_task_runner(
    paths: list[Path], max_md5_size: int | None, cache: DigestCache, progress: _Progress
) -> list[FileHash]:
    """Hash the files the cache lacks in `hash_file_batch` tasks of the flow's task runner,
    about `HASH_BATCH_BYTES` a task, and cache the digests of files unchanged meanwhile."""
    results: dict[Path, FileHash] = {}
    before: dict[Path, os.stat_result | None] = {}
    for path in map(Path, paths):
        try:
            st = path.stat()
        except OSError:
            st = None  # the task reports why
        md5 = cache.get(path, st) if st is not None else None
        if md5 is not None and st is not None:
            results[path] = FileHash(path, st.st_size, md5, cached=True)
        else:
            before[path] = st
    batches: list[list[Path]] = [[]]
    size = 0
    for path, st in before.items():
        if batches[-1] and size >= HASH_BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(path)
        size += st.st_size if st is not None else 0
    total = sum(st.st_size for st in before.values() if st is not None)
    done = 0
    futures = [hash_file_batch.submit(batch, max_md5_size) for batch in batches if batch]
    for future in futures:
        for hashed in future.result():
            results[hashed.path] = hashed
            done += hashed.size or 0
            st = before[hashed.path]
            if hashed.ok and st is not None and _unchanged(hashed.path, st):
                cache.put(hashed.path, st, hashed.md5)
        progress(done, total)
    return [results[Path(p)] for p in paths]


def _unchanged(path: Path, st: os.stat_result) -> bool:
    try:
        now = path.stat()
    except OSError:
        return False
    return (now.st_size, now.st_mtime_ns, now.st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)


@task(**_STEP)
def register_session_files(
    session_path: Path, target: Target, paths: list[Path], max_md5_size: int | None = None
) -> SessionReport:
    """Register files of a session; one outcome per file (created, unchanged, skipped, failed)."""
    return registration_client(target).register_session(
        session_path, file_list=paths, max_md5_size=max_md5_size
    )


HASHING_PROGRESS_MIN_BYTES = 1 << 30
"""Sessions with less to hash show no progress artifact: it would finish before anyone looks."""


@task(**_STEP, task_run_name="register-{session_path.name}")
def register_session_folder(
    session_path: Path,
    target: Target,
    listed: list[str] | None = None,
    max_md5_size: int | None = None,
    recheck: bool = False,
) -> SessionReport:
    """Register a session folder in one task run: its record, then its files (``listed``
    relative paths, else every file matching a dataset type), one outcome per file.
    ``recheck`` asks the target even when the registration ledger knows the session.

    The steps are those of the step tasks above, run as library calls: a task run costs
    ~15-20 ms of orchestration, more than the registration of a small session, and a retry
    repeats the whole session safely (the record is looked up before it is created, the
    register-file call is get-or-create, digests come from the cache). Sessions with more than
    `HASHING_PROGRESS_MIN_BYTES` to hash show a progress artifact.
    """
    client = registration_client(target)
    paths = None if listed is None else [session_path / p for p in listed]
    if flags.session_activity(session_path).total_size >= HASHING_PROGRESS_MIN_BYTES:
        to_hash = list(client.find_files(session_path)) if paths is None else paths
        hash_session_files.fn(to_hash, max_md5_size)
    report = client.register_session(
        session_path,
        file_list=True if paths is None else paths,
        max_md5_size=max_md5_size,
        recheck=recheck,
    )
    context = TaskRunContext.get()
    if context is not None:
        report.attempts = context.task_run.run_count
    return report


@task(**_STEP)
def register_weight(
    target: Target, subject: str, weight: float, date_time: str | None = None
) -> dict[str, Any]:
    """Record a weighing of ``weight`` grams."""
    return registration_client(target).register_weight(subject, weight, date_time=date_time)


@task(**_STEP)
def register_water_administration(
    target: Target, subject: str, volume: float, **kwargs: Any
) -> dict[str, Any]:
    """Record ``volume`` ml of water given to a subject."""
    return registration_client(target).register_water_administration(subject, volume, **kwargs)
