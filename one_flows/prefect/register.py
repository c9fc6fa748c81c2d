"""Registration flows: every new flagged session under a data root, or one session folder.

``register-new-sessions`` checks that it can use its target, takes back claims of crashed runs,
finds flagged sessions whose files are quiet, and registers them, a few at a time: each is
claimed as its turn comes, registered step by step (`register_session_folder`) and its claim
settled by what happened (`one_flows.runs`). It publishes a table artifact with a row per
session and per file and a summary in words, and returns a `RegistrationSummary`, or ends
Failed when a session failed or an outage left sessions pending.
``register-session`` registers one folder, for re-runs from the UI.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Annotated

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import PrefectFuture, as_completed
from prefect.states import Failed, State
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from one_flows import flags
from one_flows.prefect.blocks import AlyxCredentials
from one_flows.prefect.events import emit_session_registered
from one_flows.prefect.forms import form, no_null_default, no_null_defaults
from one_flows.prefect.retries import RetrySettings
from one_flows.prefect.targets import Target, registration_client
from one_flows.prefect.tasks import (
    check_target,
    current_run_id,
    discover_files,
    find_flagged_sessions,
    reap_stale_claims,
    register_session_folder,
)
from one_flows.registration import RunFailed, SessionFailed, SessionReport
from one_flows.runs import (
    RegistrationSummary,
    SessionResult,
    data_root,
    hold,
    let_go,
    refusals,
    registered_types,
    settle,
    shown,
)
from one_flows.targets import TargetUnavailable

__all__ = ["RegistrationOptions", "register_new_sessions", "register_session"]


class RegistrationOptions(BaseModel):
    """How each session is registered."""

    model_config = ConfigDict(frozen=True)

    max_md5_size: Annotated[int, Field(ge=0)] | SkipJsonSchema[None] = Field(
        default=None,
        title="Largest file hashed (bytes)",
        description="Files this size or larger are registered without a hash; empty: all.",
        json_schema_extra=no_null_default,
    )
    max_attempts: int = Field(
        default=3,
        ge=1,
        title="Attempts before quarantine",
        description="Failed attempts after which a session is quarantined.",
    )
    keep_done_marker: bool = Field(
        default=False,
        title="Keep a done marker",
        description="Rename the flag of a registered session to .done.",
    )
    recheck: bool = Field(
        default=False,
        title="Ask the target about every session",
        description=(
            "Whatever the ledger of this machine's past registrations says (it cannot see "
            "datasets deleted on the server)."
        ),
    )
    retry: RetrySettings = Field(
        default_factory=RetrySettings,
        title="Retry policy",
        description="How each step that failed transiently is run again.",
    )


Root = Annotated[Path, form("Data folder")]
Alyx = Annotated[
    AlyxCredentials | SkipJsonSchema[str] | SkipJsonSchema[None], form("Alyx database")
]
"""An AlyxCredentials block in the form; from code and the CLI, also a block name or a URL."""
CacheDir = Annotated[Path | SkipJsonSchema[None], form("Cache tables folder")]
Repository = Annotated[str | SkipJsonSchema[None], form("Data repository")]
"""The name of the Alyx data repository whose server serves the data folder."""
Options = Annotated[RegistrationOptions, form("Registration options")]


@no_null_defaults
@flow(name="register-new-sessions", log_prints=True)
def register_new_sessions(
    root: Root,
    alyx: Alyx = None,
    cache_dir: CacheDir = None,
    repository: Repository = None,
    flag: Annotated[str, form("Flag file name")] = "create_me.flag",
    dry_run: Annotated[bool, form("Dry run")] = False,
    quiet_seconds: Annotated[float, form("Quiet time (s)", ge=0)] = flags.QUIET_SECONDS,
    max_parallel_sessions: Annotated[int, form("Sessions at once", ge=1)] = 4,
    session_path: Annotated[Path | SkipJsonSchema[None], form("Only this session")] = None,
    options: Options = RegistrationOptions(),  # noqa: B008 (immutable)
) -> RegistrationSummary | State:
    """Register every flagged session under ``root`` whose files have been quiet a while.

    Args:
        root: The data folder to scan for flags.
        alyx: The Alyx database to register into (an AlyxCredentials block; from code, also a
            block name or an Alyx URL). With neither this nor a cache folder: the Alyx of
            ALYX_URL, else cache tables in the data folder.
        cache_dir: Register into the ONE cache tables in this folder instead of Alyx.
        repository: The Alyx data repository (its name) whose server serves the data folder:
            the files are registered as there, so that ONE can download them. Empty: they are
            registered on the lab's repositories as not there, and cannot be downloaded. A
            name the Alyx does not know fails the run before any session is claimed.
        flag: The flag file that marks a session to register.
        dry_run: Report what would be registered or refused; claim and send nothing.
        quiet_seconds: Take a session only when none of its files changed for this long.
        max_parallel_sessions: Sessions registered at once.
        session_path: Look for flags in this session folder under the data folder only (as
            the deployment triggered by `one-flows watch` does).
        options: How each session is registered: hashing, attempts, retries.
    """
    root = Path(root)
    scanned = root if session_path is None else Path(session_path)
    if not scanned.is_relative_to(root):
        raise ValueError(f"session_path {scanned} is not under root {root}")
    if not scanned.is_dir():
        raise SessionFailed(f"no such session folder: {scanned}")
    target = Target.choose(alyx, cache_dir, root)
    label = check_target.with_options(**options.retry.task_options())(target, repository)
    summary = RegistrationSummary(root=str(root), target=label, dry_run=dry_run)
    if dry_run:
        for found in find_flagged_sessions(scanned, flag, quiet_seconds):
            summary.sessions.append(_preview(found, target))
        _publish(summary, "register-new-sessions-dry-run")
        return summary
    reap_stale_claims(scanned, flag)
    found = find_flagged_sessions(scanned, flag, quiet_seconds)
    summary.sessions = _register_flagged(found, target, options, max_parallel_sessions, repository)
    _publish(summary, "register-new-sessions")
    return _final(summary)


@no_null_defaults
@flow(name="register-session", log_prints=True)
def register_session(
    session_path: Annotated[Path, form("Session folder")],
    alyx: Alyx = None,
    cache_dir: CacheDir = None,
    repository: Repository = None,
    options: Options = RegistrationOptions(),  # noqa: B008 (immutable)
) -> SessionResult:
    """Register one session folder, flagged or not.

    A session that another run holds (its flag claimed) is refused. Its pending or failed flag
    is claimed while this run works: completed when the session is registered, given back
    unchanged when it is not (a manual run does not count towards quarantine).

    Args:
        session_path: The session folder, [lab/Subjects/]subject/YYYY-MM-DD/NNN.
        alyx: The Alyx database to register into (an AlyxCredentials block; from code, also a
            block name or an Alyx URL); see register-new-sessions.
        cache_dir: Register into the ONE cache tables in this folder instead of Alyx.
        repository: The Alyx data repository whose server serves the data folder; see
            register-new-sessions.
        options: How the session is registered: hashing, retries.
    """
    session_path = Path(session_path)
    root = data_root(session_path)
    target = Target.choose(alyx, cache_dir, root)
    label = check_target.with_options(**options.retry.task_options())(target, repository)
    claims = hold(session_path, current_run_id())
    result = SessionResult(
        session_path=str(session_path), status="pending", reason="the run stopped"
    )
    try:
        report = register_session_folder(
            session_path,
            target,
            max_md5_size=options.max_md5_size,
            recheck=options.recheck,
            retry=options.retry,
            repository=repository,
        )
    except Exception as exc:
        result = SessionResult.of_error(session_path, exc)
        if result.status == "pending":
            raise
    else:
        result = _registered(session_path, target, report)
    finally:
        let_go(claims, result, keep_done_marker=options.keep_done_marker)
    summary = RegistrationSummary(root=str(root), target=label, sessions=[result])
    _publish(summary, "register-session")
    if result.status not in ("registered", "unchanged"):
        raise SessionFailed(result.reason)
    return result


def _preview(found: flags.Flag, target: Target) -> SessionResult:
    """What registering a flagged session would do, without claiming or sending anything; a
    flag that cannot be read fails its session's preview alone."""
    try:
        listed = flags.read_flag(found).files
    except flags.FlagError as exc:
        return SessionResult.of_error(found.session_path, exc)
    files = discover_files(found.session_path, target, listed)
    refused = refusals(registration_client(target), found.session_path)
    return SessionResult.preview(found.session_path, files.to_register, files.skipped, refused)


def _registered(session_path: Path, target: Target, report: SessionReport) -> SessionResult:
    """The result of a session the target answered for; ``one.session.registered`` is emitted
    for a session this run registered."""
    result = SessionResult.of_report(session_path, report)
    if result.status == "registered":
        label = registration_client(target).target.label
        emit_session_registered(report.eid, session_path, label, registered_types(report))
    return result


def _register_flagged(
    found: list[flags.Flag],
    target: Target,
    options: RegistrationOptions,
    workers: int,
    repository: str | None,
) -> list[SessionResult]:
    """Register the flagged sessions, ``workers`` at once (a task run each, holding its steps),
    into the data ``repository`` when named: each is claimed as its turn comes, and its claim
    settled; one result per flag, in order.

    After an outage the target is checked again: if it is down, no other session is claimed,
    and those left are ``pending``. A flag that cannot be claimed fails its session alone; one
    that cannot be settled is logged, its result kept. Claims not settled when the run stops
    are given back."""
    run_id = current_run_id()
    results: dict[int, SessionResult] = {}
    waiting = deque(enumerate(found))
    running: dict[PrefectFuture, tuple[int, flags.Claim]] = {}
    outage: str | None = None

    def finish(i: int, claim: flags.Claim | None, result: SessionResult) -> None:
        name = shown(result.session_path, result.session_path)
        if result.status == "pending":
            get_run_logger().warning("%s: %s", name, result.why)
        elif result.status == "failed":
            get_run_logger().error("%s: %s", name, result.why)
        results[i] = result
        if claim is None:
            return
        try:
            settle(
                claim,
                result,
                max_attempts=options.max_attempts,
                keep_done_marker=options.keep_done_marker,
            )
        except flags.FlagError as exc:
            get_run_logger().warning("%s: its flag could not be settled: %s", name, exc)

    try:
        with ThreadPoolTaskRunner(max_workers=workers) as runner:
            while running or (waiting and outage is None):
                while waiting and outage is None and len(running) < workers:
                    i, flag = waiting.popleft()
                    try:
                        claim = flags.claim(flag, run_id)
                    except flags.FlagError as exc:
                        finish(i, None, SessionResult.of_error(flag.session_path, exc))
                        continue
                    if claim is None:
                        results[i] = SessionResult(
                            session_path=str(flag.session_path),
                            status="taken",
                            reason="claimed by another run",
                        )
                        continue
                    try:
                        listed = flags.read_flag(claim.flag).files
                    except flags.FlagError as exc:
                        finish(i, claim, SessionResult.of_error(flag.session_path, exc))
                        continue
                    parameters = {
                        "session_path": flag.session_path,
                        "target": target,
                        "listed": listed,
                        "max_md5_size": options.max_md5_size,
                        "recheck": options.recheck,
                        "retry": options.retry,
                        "repository": repository,
                    }
                    running[runner.submit(register_session_folder, parameters)] = (i, claim)
                if not running:
                    continue
                future = next(as_completed(list(running)))
                i, claim = running[future]
                session = found[i].session_path
                report = future.result(raise_on_failure=False)
                if isinstance(report, BaseException):
                    result = SessionResult.of_error(session, report)
                else:
                    result = _registered(session, target, report)
                del running[future]
                finish(i, claim, result)
                if result.status == "pending" and waiting and outage is None:
                    outage = _down(target, options)
    finally:
        flags.give_back(
            [claim for _, claim in running.values()],
            "the run stopped before it settled the session",
            get_run_logger(),
        )
    for i, flag in waiting:
        results[i] = SessionResult(
            session_path=str(flag.session_path),
            status="pending",
            reason=f"{flag.session_path}: not tried, {outage}",
        )
    return [results[i] for i in sorted(results)]


def _down(target: Target, options: RegistrationOptions) -> str | None:
    """Why the target cannot be used now, or None when its check passes."""
    try:
        check_target.with_options(**options.retry.task_options())(target)
    except TargetUnavailable as exc:
        return str(exc)
    return None


def _final(summary: RegistrationSummary) -> RegistrationSummary | State:
    """The summary of a run in which every session is fine; else a Failed state saying why,
    whose result is a `RunFailed` that carries the summary."""
    failure = summary.failure()
    if failure is None:
        return summary
    get_run_logger().error("%s", failure)
    return Failed(message=failure, data=RunFailed(failure, summary))


def _publish(summary: RegistrationSummary, key: str) -> None:
    """Publish the run's table (a row per session and per file) and its summary in words, as
    new versions of the artifacts ``key`` and ``key-summary``; a run that found no session
    publishes nothing, so the last real run stays the latest version."""
    if not summary.sessions:
        get_run_logger().info("no flagged session ready under %s", summary.root)
        return
    create_table_artifact(
        summary.table(),
        key=key,
        description=(
            f"Registration of {summary.root} into {summary.target}: sessions: "
            f"{summary.sessions_in_words}; files: {summary.files_in_words}; "
            f"retries: {summary.retries}"
        ),
    )
    create_markdown_artifact(
        summary.markdown(), key=f"{key}-summary", description="What the run did, in words"
    )
