"""Registration flows: every new flagged session under a data root, or one session folder.

``register-new-sessions`` takes back claims of crashed runs, finds flagged sessions whose files
are quiet, claims each, registers it (sessions in parallel, bounded) and completes or fails its
claim; it publishes a table artifact with a row per session and per file and returns a
`RegistrationSummary`. ``register-session`` registers one folder, for re-runs from the UI.

Each session is one task run (`register_session_folder`), retried as a whole on transient
faults; claims are plain file renames in the flow. The finer step tasks of `one_flows.tasks`
are for flows of your own: a task run costs more orchestration than registering a small session.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, ConfigDict, Field

from one_flows import flags
from one_flows.alf import session_path_parts
from one_flows.events import emit_session_registered
from one_flows.registration import FileOutcome, Outcome, SessionReport
from one_flows.tasks import (
    RetrySettings,
    Target,
    current_run_id,
    discover_files,
    find_flagged_sessions,
    reap_stale_claims,
    register_session_folder,
    registration_client,
)

__all__ = [
    "FileRow",
    "RegistrationOptions",
    "RegistrationSummary",
    "SessionResult",
    "data_root",
    "register_new_sessions",
    "register_session",
]

SessionStatus = Literal["registered", "failed", "quarantined", "taken", "dry run"]
"""What happened to a session: ``taken`` means another run claimed it first."""


class FileRow(BaseModel):
    """What happened to one file."""

    path: str
    status: str = Field(description="created, unchanged, skipped, failed, or would register.")
    dataset_type: str | None = None
    reason: str | None = None

    @classmethod
    def of(cls, outcome: FileOutcome, session_path: Path) -> FileRow:
        path = outcome.path
        relative = path.relative_to(session_path) if path.is_relative_to(session_path) else path
        return cls(
            path=relative.as_posix(),
            status=outcome.status.value,
            dataset_type=outcome.dataset_type,
            reason=outcome.reason,
        )


class SessionResult(BaseModel):
    """What happened to one session folder, and to each of its files."""

    session_path: str
    status: SessionStatus
    eid: str | None = None
    reason: str | None = None
    retries: int = Field(default=0, description="Tries after the first (transient faults).")
    files: list[FileRow] = Field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        """Number of files per status."""
        return dict(Counter(f.status for f in self.files))


class RegistrationSummary(BaseModel):
    """What a registration run did: one result per session."""

    root: str
    target: str
    dry_run: bool = False
    sessions: list[SessionResult] = Field(default_factory=list)

    @property
    def retries(self) -> int:
        """Tries after the first, over the sessions that registered."""
        return sum(s.retries for s in self.sessions)

    def by_status(self, status: SessionStatus) -> list[SessionResult]:
        """The sessions with that status."""
        return [s for s in self.sessions if s.status == status]

    @property
    def file_counts(self) -> dict[str, int]:
        """Number of files per status, over all sessions."""
        total: Counter[str] = Counter()
        for session in self.sessions:
            total.update(session.counts)
        return dict(total)

    def table(self) -> list[dict[str, Any]]:
        """Rows for a table artifact: one per session, then one per file of it."""
        rows = []
        for s in self.sessions:
            rows.append(
                {
                    "session": s.session_path,
                    "file": "",
                    "status": s.status,
                    "dataset_type": "",
                    "why": s.reason or "",
                }
            )
            rows.extend(
                {
                    "session": s.session_path,
                    "file": f.path,
                    "status": f.status,
                    "dataset_type": f.dataset_type or "",
                    "why": f.reason or "",
                }
                for f in s.files
            )
        return rows


class RegistrationOptions(BaseModel):
    """How each session is registered."""

    model_config = ConfigDict(frozen=True)

    max_md5_size: int | None = Field(
        default=None, ge=0, description="Files this size (bytes) or larger are not hashed."
    )
    max_attempts: int = Field(
        default=3, ge=1, description="Failed attempts after which a session is quarantined."
    )
    keep_done_marker: bool = Field(
        default=False, description="Rename the flag of a registered session to .done."
    )
    recheck: bool = Field(
        default=False,
        description=(
            "Ask the target about every session, whatever the ledger of this machine's past "
            "registrations says (it cannot see datasets deleted on the server)."
        ),
    )
    retry: RetrySettings = Field(default_factory=RetrySettings)


def _registered_types(report: SessionReport) -> list[str]:
    registered = (Outcome.CREATED, Outcome.UNCHANGED)
    return sorted(
        {f.dataset_type for f in report.files if f.status in registered and f.dataset_type}
    )


class SessionFailed(RuntimeError):
    """A session's registration gave up; the message names the session and the reason."""


def _result(session_path: Path, target: Target, report: SessionReport) -> SessionResult:
    """The result of a registered session; ``one.session.registered`` is emitted for it.

    A session whose files all registered (or were skipped) is ``registered``; one with a
    refused file is ``failed`` and emits nothing.
    """
    result = SessionResult(
        session_path=str(session_path),
        status="registered",
        eid=report.eid,
        retries=report.attempts - 1,
        files=[FileRow.of(o, session_path) for o in sorted(report.files, key=lambda f: f.path)],
    )
    failed = [f for f in result.files if f.status == Outcome.FAILED]
    if failed:
        result.status = "failed"
        result.reason = f"{len(failed)} files refused, e.g. {failed[0].path}: {failed[0].reason}"
        return result
    label = registration_client(target).target.label
    emit_session_registered(report.eid, session_path, label, _registered_types(report))
    return result


def _gave_up(session_path: Path, exc: BaseException) -> SessionResult:
    return SessionResult(
        session_path=str(session_path), status="failed", reason=f"{session_path}: {exc}"
    )


def _preview(session_path: Path, target: Target, listed: Iterable[str] | None) -> SessionResult:
    """What registering a session would do, without claiming or sending anything."""
    found = discover_files(session_path, target, listed)
    rows = [
        FileRow(path=p.relative_to(session_path).as_posix(), status="would register")
        for p in found.to_register
    ]
    rows += [FileRow.of(o, session_path) for o in found.skipped]
    return SessionResult(
        session_path=str(session_path), status="dry run", files=sorted(rows, key=lambda r: r.path)
    )


def _finish(claim: flags.Claim, result: SessionResult, options: RegistrationOptions) -> None:
    """Complete the claim of a registered session; fail (or quarantine) any other."""
    if result.status == "registered":
        flags.complete(claim, keep_done_marker=options.keep_done_marker)
        return
    get_run_logger().error("%s", result.reason)
    moved = flags.fail(claim, result.reason or "failed", max_attempts=options.max_attempts)
    if moved.state is flags.FlagState.QUARANTINED:
        result.status = "quarantined"


def _register_flagged(
    found: list[flags.Flag], target: Target, options: RegistrationOptions, workers: int
) -> list[SessionResult]:
    """Claim each flagged session, register the claimed ones in parallel (one task run each),
    and complete or fail each claim; one result per flag, in order."""
    run_id = current_run_id()
    session_task = register_session_folder.with_options(**options.retry.task_options())
    results: list[SessionResult | None] = [None] * len(found)
    running = []
    with ThreadPoolTaskRunner(max_workers=workers) as runner:
        for i, flag in enumerate(found):
            claim = flags.claim(flag, run_id)
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
                results[i] = _gave_up(flag.session_path, exc)
                _finish(claim, results[i], options)
                continue
            parameters = {
                "session_path": flag.session_path,
                "target": target,
                "listed": listed,
                "max_md5_size": options.max_md5_size,
                "recheck": options.recheck,
            }
            running.append((i, claim, runner.submit(session_task, parameters)))
        for i, claim, future in running:
            session_path = found[i].session_path
            report = future.result(raise_on_failure=False)
            if isinstance(report, BaseException):
                results[i] = _gave_up(session_path, report)
            else:
                results[i] = _result(session_path, target, report)
            _finish(claim, results[i], options)
    return [r for r in results if r is not None]


def _publish(summary: RegistrationSummary, key: str) -> None:
    counts = ", ".join(f"{n} {status}" for status, n in sorted(summary.file_counts.items()))
    sessions = Counter(s.status for s in summary.sessions)
    create_table_artifact(
        summary.table(),
        key=key,
        description=(
            f"Registration of {summary.root} into {summary.target}: "
            f"sessions {dict(sessions)}; files: {counts or 'none'}; retries: {summary.retries}"
        ),
    )


@flow(name="register-new-sessions", log_prints=True)
def register_new_sessions(
    root: Path,
    alyx: str | None = None,
    cache_dir: Path | None = None,
    flag: str = "create_me.flag",
    dry_run: bool = False,
    quiet_seconds: float = flags.QUIET_SECONDS,
    max_parallel_sessions: int = 4,
    session_path: Path | None = None,
    options: RegistrationOptions = RegistrationOptions(),  # noqa: B008 (immutable)
) -> RegistrationSummary:
    """Register every flagged session under ``root`` whose files have been quiet a while.

    Args:
        root: the data folder to scan for flags.
        alyx: an AlyxCredentials block name or an Alyx URL; with neither this nor
            ``cache_dir``, the Alyx configured in the environment, else cache tables in ``root``.
        cache_dir: register into the ONE cache tables in this folder instead of Alyx.
        flag: the flag file name that marks a session to register.
        dry_run: report what would be registered; claim and send nothing.
        quiet_seconds: a session is taken only when no file changed for this long.
        max_parallel_sessions: sessions registered at once.
        session_path: look for flags in this session folder under ``root`` only (as the
            deployment triggered by ``one-flows watch`` does).
        options: how each session is registered (hashing, attempts, retries).
    """
    if max_parallel_sessions < 1:
        raise ValueError(f"max_parallel_sessions must be at least 1, not {max_parallel_sessions}")
    root = Path(root)
    scanned = root if session_path is None else Path(session_path)
    if not scanned.is_relative_to(root):
        raise ValueError(f"session_path {scanned} is not under root {root}")
    target = Target.choose(alyx, cache_dir, root)
    summary = RegistrationSummary(root=str(root), target=_describe(target), dry_run=dry_run)
    if dry_run:
        for found in find_flagged_sessions(scanned, flag, quiet_seconds):
            listed = flags.read_flag(found).files
            summary.sessions.append(_preview(found.session_path, target, listed))
        _publish(summary, "register-new-sessions-dry-run")
        return summary
    reap_stale_claims(scanned, flag)
    found = find_flagged_sessions(scanned, flag, quiet_seconds)
    summary.sessions = _register_flagged(found, target, options, max_parallel_sessions)
    _publish(summary, "register-new-sessions")
    return summary


@flow(name="register-session", log_prints=True)
def register_session(
    session_path: Path,
    alyx: str | None = None,
    cache_dir: Path | None = None,
    options: RegistrationOptions = RegistrationOptions(),  # noqa: B008 (immutable)
) -> SessionResult:
    """Register one session folder, flagged or not.

    A session that another run holds (its flag claimed) is refused. Its pending or failed flag
    is claimed while this run works: completed when the session is registered, given back
    unchanged when it is not (a manual run does not count towards quarantine).

    Args:
        session_path: the session folder, ``[lab/Subjects/]subject/YYYY-MM-DD/NNN``.
        alyx: an AlyxCredentials block name or an Alyx URL (see ``register-new-sessions``).
        cache_dir: register into the ONE cache tables in this folder instead of Alyx.
        options: how the session is registered (hashing, retries).
    """
    session_path = Path(session_path)
    root = data_root(session_path)
    target = Target.choose(alyx, cache_dir, root)
    claims = _hold(session_path)
    session_task = register_session_folder.with_options(**options.retry.task_options())
    try:
        report = session_task(
            session_path, target, max_md5_size=options.max_md5_size, recheck=options.recheck
        )
        result = _result(session_path, target, report)
    except Exception as exc:
        result = _gave_up(session_path, exc)
    for claim in claims:
        if result.status == "registered":
            flags.complete(claim, keep_done_marker=options.keep_done_marker)
        else:
            flags.release(claim, reason=f"manual run failed: {result.reason}")
    summary = RegistrationSummary(root=str(root), target=_describe(target), sessions=[result])
    _publish(summary, "register-session")
    if result.status != "registered":
        raise SessionFailed(result.reason)
    return result


def _hold(session_path: Path) -> list[flags.Claim]:
    """Claim a session's flags for this run.

    Raises:
        SessionFailed: another run holds the session.
    """
    holders = {f.run_id for f in flags.find_flags(session_path, states=[flags.FlagState.CLAIMED])}
    claims = []
    for flag in flags.find_flags(session_path):
        claim = flags.claim(flag, current_run_id())
        if claim is None:
            holders.add("another run")
        else:
            claims.append(claim)
    if holders:
        for claim in claims:
            flags.release(claim, reason="the session is held by another run")
        raise SessionFailed(
            f"{session_path}: claimed by flow run {', '.join(sorted(map(str, holders)))}"
        )
    return claims


def data_root(session_path: Path) -> Path:
    """The folder holding a session's ``lab/Subjects`` (or ``subject``) folder."""
    lab, *_ = session_path_parts(session_path)
    return session_path.parents[4 if lab else 2]


def _describe(target: Target) -> str:
    return registration_client(target).target.label
