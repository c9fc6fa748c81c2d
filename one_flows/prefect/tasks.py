"""Prefect tasks for the steps of registering sessions: thin wrappers over the library.

Each task wraps a library function (`one_flows.flags`, `one_flows.registration`), so the steps
show up in the Prefect UI, retry on their own (`one_flows.prefect.retries`) and can be composed
into other flows. Tasks take only plain, picklable arguments: where registrations go is a
`Target`, and each task gets the flow run's client for it (`registration_client`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext, TaskRunContext
from prefect.exceptions import ObjectNotFound
from pydantic import BaseModel, ConfigDict

from one_flows import flags
from one_flows.prefect.hashing import hash_into_cache
from one_flows.prefect.retries import RetrySettings, retry_if_transient
from one_flows.prefect.targets import Target, registration_client
from one_flows.registration import (
    AMBIGUOUS_TYPE,
    NO_DATASET_TYPE,
    FileOutcome,
    Outcome,
    SessionReport,
)
from one_flows.runs import session_name, shown, warnings_of

__all__ = [
    "DiscoveredFiles",
    "check_target",
    "create_or_fetch_session",
    "current_run_id",
    "discover_files",
    "find_flagged_sessions",
    "flow_run_is_running",
    "hash_session_files",
    "reap_stale_claims",
    "register_session_files",
    "register_session_folder",
    "register_water_administration",
    "register_weight",
    "session_step_name",
]

_STEP = {"cache_policy": NO_CACHE, "retry_condition_fn": retry_if_transient, "retries": 4}


def session_step_name(step: str, parameter: str = "session_path") -> Callable[..., str]:
    """The ``task_run_name`` of a step of one session: ``<step>-<subject>-<date>-<number>``,
    of the session folder given as ``parameter`` (or of the flag given so)."""

    def name(parameters: dict[str, Any]) -> str:
        value = parameters[parameter]
        return f"{step}-{session_name(getattr(value, 'session_path', value))}"

    return name


@task(**_STEP, name="check-target", task_run_name="check-target")
def check_target(target: Target, repository: str | None = None) -> str:
    """Make sure the target can be used, and has the data ``repository`` when one is named
    (see `RegistrationTarget.check`); returns its label.

    Raises
    ------
    TargetUnavailable
        it cannot be used; the message names the cause and what to do.
    RepositoryNotFound
        it has no such repository; the message names those it has.
    """
    checked = registration_client(target).target
    checked.check(repository)
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
    try:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(run_id)
    except (ObjectNotFound, ValueError):
        return False
    return run.state is None or not run.state.is_final()


@task(cache_policy=NO_CACHE, name="take-back-stale-claims", task_run_name="take-back-stale-claims")
def reap_stale_claims(root: Path, flag: str) -> list[flags.Flag]:
    """Return the claims of flow runs that are no longer running to the pool; returns them."""
    reaped = flags.reap_stale_claims(root, flow_run_is_running, names=(flag,))
    for found in reaped:
        get_run_logger().warning("took back %s: its flow run is not running", found.path)
    return reaped


@task(cache_policy=NO_CACHE, name="find-flagged-sessions", task_run_name="find-flagged-sessions")
def find_flagged_sessions(root: Path, flag: str, quiet_seconds: float) -> list[flags.Flag]:
    """The claimable flags under ``root`` whose session has been quiet for ``quiet_seconds``."""
    ready = []
    for found in flags.find_flags(root, names=(flag,)):
        if flags.is_quiet(found.session_path, quiet_seconds):
            ready.append(found)
        else:
            get_run_logger().info("%s: files still changing; left for later", found.session_path)
    return sorted(ready, key=lambda f: f.session_path)


# -- sessions and files ---------------------------------------------------------------------------


def _attempts(report: SessionReport) -> SessionReport:
    """``report`` with the run count of the task run that made it as its ``attempts``."""
    context = TaskRunContext.get()
    if context is not None:
        report.attempts = context.task_run.run_count
    return report


@task(**_STEP, task_run_name=session_step_name("create-session"))
def create_or_fetch_session(
    session_path: Path, target: Target, recheck: bool = False
) -> SessionReport:
    """The session record of a folder, created if the target has none; no file is registered.

    A session this machine's registration ledger knows is answered from it, unless
    ``recheck``.
    """
    client = registration_client(target)
    return _attempts(client.register_session(session_path, file_list=False, recheck=recheck))


class DiscoveredFiles(BaseModel):
    """A session's files to register, and those that cannot be, with why."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    to_register: list[Path]
    skipped: list[FileOutcome]


@task(**_STEP, task_run_name=session_step_name("find-files"))
def discover_files(
    session_path: Path, target: Target, listed: Iterable[str] | None = None
) -> DiscoveredFiles:
    """The files of a session to register: ``listed`` (relative paths), else every file that
    matches a dataset type of the target; the others are reported as skipped."""
    if listed is not None:
        return DiscoveredFiles(to_register=[session_path / p for p in listed], skipped=[])
    found = registration_client(target).find_files(session_path)
    return DiscoveredFiles(to_register=list(found), skipped=list(found.skipped))


@task(cache_policy=NO_CACHE, task_run_name=session_step_name("hash"))
def hash_session_files(
    session_path: Path, paths: list[Path], max_md5_size: int | None = None
) -> int:
    """Hash a session's files into the digest cache; returns the number hashed (see
    `one_flows.prefect.hashing.hash_into_cache`)."""
    return hash_into_cache(session_path, paths, max_md5_size)


@task(**_STEP, task_run_name=session_step_name("register-files"))
def register_session_files(
    session_path: Path,
    target: Target,
    session: SessionReport | None = None,
    listed: list[str] | None = None,
    max_md5_size: int | None = None,
    recheck: bool = False,
    repository: str | None = None,
) -> SessionReport:
    """Register a session's files (``listed`` relative paths, else every file that matches a
    dataset type), one outcome per file, into the data ``repository`` of an Alyx (by name; see
    `RegistrationClient.register_files`); ``session`` is the report of `create_or_fetch_session`,
    whose record is used as it is. Logs the counts, a warning per file refused or of no
    dataset type, and one for other records of the session and one for files gone (paths
    from the data root on)."""
    paths = True if listed is None else [session_path / p for p in listed]
    report = registration_client(target).register_session(
        session_path,
        file_list=paths,
        max_md5_size=max_md5_size,
        recheck=recheck,
        record_from=session,
        repository=repository,
    )
    logger = get_run_logger()
    name = shown(session_path, session_path)
    logger.info("%s: %s", name, report.summary().removeprefix(f"{report.session_path}: "))
    for outcome in report.files:
        if outcome.status is Outcome.FAILED or outcome.reason in (NO_DATASET_TYPE, AMBIGUOUS_TYPE):
            path = shown(outcome.path, session_path)
            logger.warning("%s %s: %s", path, outcome.status.value, outcome.reason)
    for warning in warnings_of(report.duplicates, report.deleted):
        logger.warning("%s: %s", name, warning)
    return _attempts(report)


@task(cache_policy=NO_CACHE, task_run_name=session_step_name("register"))
def register_session_folder(
    session_path: Path,
    target: Target,
    listed: list[str] | None = None,
    max_md5_size: int | None = None,
    recheck: bool = False,
    retry: RetrySettings = RetrySettings(),  # noqa: B008 (immutable)
    repository: str | None = None,
) -> SessionReport:
    """Register a session folder step by step, each step a task run that retries on its own
    (``retry``): create or find its record, find its files, hash them into the digest cache,
    register them (into the data ``repository``, when named). A transient fault while
    registering does not repeat the record's creation, nor read again the files already
    hashed. ``recheck`` asks the target even when the registration ledger knows the session.
    """
    steps = retry.task_options()
    session = create_or_fetch_session.with_options(**steps)(session_path, target, recheck)
    found = discover_files.with_options(**steps)(session_path, target, listed)
    hash_session_files(session_path, found.to_register, max_md5_size)
    report = register_session_files.with_options(**steps)(
        session_path, target, session, listed, max_md5_size, recheck, repository
    )
    report.attempts += session.attempts - 1
    return report


@task(**_STEP, name="register-weight")
def register_weight(
    target: Target, subject: str, weight: float, date_time: str | None = None
) -> dict[str, Any]:
    """Record a weighing of ``weight`` grams."""
    return registration_client(target).register_weight(subject, weight, date_time=date_time)


@task(**_STEP, name="register-water")
def register_water_administration(
    target: Target, subject: str, volume: float, **kwargs: Any
) -> dict[str, Any]:
    """Record ``volume`` ml of water given to a subject."""
    return registration_client(target).register_water_administration(subject, volume, **kwargs)
