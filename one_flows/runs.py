"""What a registration run did to each flagged session, and the claim bookkeeping around it.

A run claims each flagged session, registers it and settles the claim by what happened:
`SessionResult` says what that was, `RegistrationSummary` sums the run up and says whether it
failed, `settle` completes, gives back or fails the claim. `hold` and `let_go` do the same for a
manual run of one session, which never counts towards quarantine. Nothing here needs Prefect:
the flows of `one_flows.prefect.register` are compositions of these and of the step tasks.

What happened to a session (`SessionStatus`)::

    registered    the target holds it as it is (this run sent or checked it)
    unchanged     this machine's registration ledger vouches for it: nothing was sent
    failed        its own fault (the reason says which): an attempt is counted
    quarantined   failed for the last allowed time: left for a person
    pending       an outage kept it from registering: its flag waits as it was
    taken         another run claimed it first
    dry run       what a real run would register
    would fail    what the target would refuse a real run for

A run is fine (Completed) when every session is registered, unchanged, taken or previewed.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from one_flows import flags
from one_flows.errors import is_outage
from one_flows.registration import (
    FileOutcome,
    MemberNotFound,
    Outcome,
    RegistrationClient,
    SessionFailed,
    SessionReport,
)
from one_flows.walk import SessionKey

__all__ = [
    "FINE",
    "GONE",
    "FileRow",
    "RegistrationSummary",
    "SessionResult",
    "SessionStatus",
    "data_root",
    "hold",
    "let_go",
    "refusals",
    "registered_types",
    "session_name",
    "session_url",
    "settle",
    "shown",
    "warnings_of",
]

SessionStatus = Literal[
    "registered", "unchanged", "failed", "quarantined", "pending", "taken", "dry run", "would fail"
]
"""What happened to a session (see the module's docstring)."""
FINE: frozenset[str] = frozenset({"registered", "unchanged", "taken", "dry run", "would fail"})
"""The statuses of the sessions of a run that ends Completed."""


class FileRow(BaseModel):
    """What happened to one file."""

    path: str
    status: str = Field(description="created, unchanged, skipped, failed, or would register.")
    dataset_type: str | None = None
    reason: str | None = None

    @classmethod
    def of(cls, outcome: FileOutcome, session_path: Path) -> FileRow:
        """The row of a file's outcome, its path relative to the session folder."""
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
    duplicates: list[str] = Field(
        default_factory=list,
        description="Ids of other records the target holds for this session, to be deleted.",
    )
    deleted: list[str] = Field(
        default_factory=list,
        description="Files registered before, now gone from the folder (relative to it).",
    )

    @property
    def counts(self) -> dict[str, int]:
        """Number of files per status."""
        return dict(Counter(f.status for f in self.files))

    @property
    def why(self) -> str:
        """The reason, without the session folder it starts with (for tables that name it)."""
        return (self.reason or "").removeprefix(f"{self.session_path}: ")

    @property
    def notices(self) -> list[str]:
        """What a person should look at in the session, whatever its status (see `warnings_of`)."""
        return warnings_of(self.duplicates, self.deleted)

    @classmethod
    def of_report(cls, session_path: Path, report: SessionReport) -> SessionResult:
        """The result of a session the target (or the ledger) answered for.

        ``registered``, or ``unchanged`` when the ledger vouched for it; ``failed`` when the
        target refused a file, the reason naming the first.
        """
        result = cls(
            session_path=str(session_path),
            status="unchanged" if report.from_ledger else "registered",
            eid=report.eid,
            retries=report.attempts - 1,
            files=[FileRow.of(o, session_path) for o in sorted(report.files, key=lambda f: f.path)],
            duplicates=report.duplicates,
            deleted=report.deleted,
        )
        failed = [f for f in result.files if f.status == Outcome.FAILED]
        if failed:
            result.status = "failed"
            result.reason = (
                f"{session_path}: {len(failed)} files refused, e.g. {failed[0].path}: "
                f"{failed[0].reason}"
            )
        return result

    @classmethod
    def of_error(cls, session_path: Path, exc: BaseException) -> SessionResult:
        """The result of a session an error stopped: ``pending`` when the error is an outage
        (`one_flows.errors.is_outage`), else ``failed``."""
        return cls(
            session_path=str(session_path),
            status="pending" if is_outage(exc) else "failed",
            reason=f"{session_path}: {exc}",
        )

    @classmethod
    def preview(
        cls,
        session_path: Path,
        to_register: list[Path],
        skipped: list[FileOutcome],
        refused: list[str],
    ) -> SessionResult:
        """What a real run would do to a session: register ``to_register``, skip ``skipped``,
        or be refused for the reasons in ``refused``."""
        rows = [
            FileRow(path=p.relative_to(session_path).as_posix(), status="would register")
            for p in to_register
        ]
        rows += [FileRow.of(o, session_path) for o in skipped]
        return cls(
            session_path=str(session_path),
            status="would fail" if refused else "dry run",
            reason=f"{session_path}: {'; '.join(refused)}" if refused else None,
            files=sorted(rows, key=lambda r: r.path),
        )


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

    @property
    def sessions_in_words(self) -> str:
        """``4 registered, 2 failed``: the number of sessions per status, most first."""
        counts = Counter(s.status for s in self.sessions).most_common()
        return ", ".join(f"{n} {status}" for status, n in counts) or "none"

    @property
    def files_in_words(self) -> str:
        """``48 created, 16 skipped``: the number of files per status."""
        counts = sorted(self.file_counts.items())
        return ", ".join(f"{n} {status}" for status, n in counts) or "none"

    def failure(self) -> str | None:
        """Why the run failed, in one line, or None when every session is fine.

        An outage (sessions left pending) is named first; otherwise the sessions failed or
        quarantined are counted and the first is named with its reason.
        """
        pending = self.by_status("pending")
        failed = [s for s in self.sessions if s.status not in FINE and s.status != "pending"]
        if pending:
            also = f", and {len(failed)} failed" if failed else ""
            return (
                f"{self.target} failed: {len(pending)} of {len(self.sessions)} sessions left "
                f"pending for a later run (no attempt counted){also}; first: {pending[0].reason}"
            )
        if failed:
            quarantined = len(self.by_status("quarantined"))
            also = f" ({quarantined} quarantined)" if quarantined else ""
            return (
                f"{len(failed)} of {len(self.sessions)} sessions failed{also}; "
                f"first: {failed[0].reason}"
            )
        return None

    def relative(self, session: SessionResult) -> str:
        """A session's folder relative to the run's root (as it is when outside it)."""
        path, root = Path(session.session_path), Path(self.root)
        return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)

    def table(self) -> list[dict[str, Any]]:
        """Rows for a table artifact: one per session, then one per file of it; sessions are
        named relative to the root."""
        rows = []
        for s in self.sessions:
            session = self.relative(s)
            rows.append(
                {
                    "session": session,
                    "file": "",
                    "status": s.status,
                    "dataset_type": "",
                    "why": "; ".join([s.why] if s.reason else s.notices),
                }
            )
            rows.extend(
                {
                    "session": session,
                    "file": f.path,
                    "status": f.status,
                    "dataset_type": f.dataset_type or "",
                    "why": f.reason or "",
                }
                for f in s.files
            )
            rows.extend(
                {
                    "session": session,
                    "file": path,
                    "status": "gone",
                    "dataset_type": "",
                    "why": GONE,
                }
                for path in s.deleted
            )
        return rows

    def markdown(self) -> str:
        """What the run did, in a few sentences of markdown, with a line per session that did
        not just register (and a link to each session's record, for an Alyx target)."""
        lines = [
            f"**{len(self.sessions)} sessions** under `{self.root}` into `{self.target}`: "
            f"{self.sessions_in_words}.",
            "",
            f"Files: {self.files_in_words}; retries after transient faults: {self.retries}.",
        ]
        if failure := self.failure():
            lines += ["", f"**The run failed**: {failure}"]
        lines.append("")
        for s in self.sessions:
            name = self.relative(s)
            url = session_url(self.target, s.eid)
            link = f"[{name}]({url})" if url else f"`{name}`"
            counts = ", ".join(f"{n} {status}" for status, n in sorted(s.counts.items()))
            why = f": {s.why}" if s.reason and s.status != "registered" else ""
            notes = "".join(f"; **{notice}**" for notice in s.notices)
            lines.append(f"- {link} {s.status} ({counts or 'no files'}){why}{notes}")
        return "\n".join(lines)


GONE = "registered before, no longer in the folder"
"""Why a file that was registered to a session and is gone from its folder is listed."""


def warnings_of(duplicates: list[str], deleted: list[str]) -> list[str]:
    """What a person should look at in a session, in words: the other records the target holds
    for it (``duplicates``, ids: Alyx lets two machines create one session twice), and the
    files registered to it that are gone from its folder (``deleted``, relative paths)."""
    said = []
    if duplicates:
        records = "record" if len(duplicates) == 1 else "records"
        said.append(
            f"{len(duplicates)} other session {records} for this session on the target, to be "
            f"deleted: {', '.join(duplicates)}"
        )
    if deleted:
        files = "file" if len(deleted) == 1 else "files"
        said.append(f"{len(deleted)} {files} {GONE}: {', '.join(deleted)}")
    return said


def session_url(target: str, eid: str | None) -> str | None:
    """The address of a session's record in a target labelled ``alyx:<url>``, else None."""
    kind, _, url = target.partition(":")
    return f"{url}/sessions/{eid}" if kind == "alyx" and eid else None


def session_name(session_path: str | os.PathLike[str]) -> str:
    """``subject-YYYY-MM-DD-NNN``: a session's name in task runs and logs."""
    key = SessionKey.from_path(session_path)
    return f"{key.subject}-{key.date}-{key.number}"


def registered_types(report: SessionReport) -> list[str]:
    """The dataset types the target holds for a session's files, sorted."""
    registered = (Outcome.CREATED, Outcome.UNCHANGED)
    return sorted(
        {f.dataset_type for f in report.files if f.status in registered and f.dataset_type}
    )


def settle(
    claim: flags.Claim, result: SessionResult, *, max_attempts: int, keep_done_marker: bool
) -> None:
    """End a claim by what happened to its session.

    Registered or unchanged: the flag is completed (removed, or kept as a done marker).
    Pending: the claim is given back as it was, no attempt counted. Anything else: an attempt
    is counted, and the ``max_attempts``-th quarantines the session (``result`` says so).
    """
    if result.status in ("registered", "unchanged"):
        flags.complete(claim, keep_done_marker=keep_done_marker)
    elif result.status == "pending":
        flags.release(claim, reason=f"outage: {result.reason}")
    else:
        moved = flags.fail(claim, result.reason or "failed", max_attempts=max_attempts)
        if moved.state is flags.FlagState.QUARANTINED:
            result.status = "quarantined"


def hold(session_path: Path, run_id: str) -> list[flags.Claim]:
    """Claim a session's flags, of any claimable state, for a manual run ``run_id``.

    Raises
    ------
    SessionFailed
        another run holds the session (its flags are left as they were).
    FlagError
        a flag cannot be claimed (the flags claimed before it are given back).
    """
    holders = {f.run_id for f in flags.find_flags(session_path, states=[flags.FlagState.CLAIMED])}
    claims: list[flags.Claim] = []
    try:
        for flag in flags.find_flags(session_path):
            claim = flags.claim(flag, run_id)
            if claim is None:
                holders.add("another run")
            else:
                claims.append(claim)
        if holders:
            raise SessionFailed(
                f"{session_path}: claimed by flow run {', '.join(sorted(map(str, holders)))}"
            )
    except BaseException as exc:
        flags.give_back(claims, f"the manual run did not get the session: {exc}")
        raise
    return claims


def let_go(claims: list[flags.Claim], result: SessionResult, *, keep_done_marker: bool) -> None:
    """End the claims of a manual run: completed when the session registered, else given back
    as they were (a manual run never counts towards quarantine)."""
    for claim in claims:
        if result.status in ("registered", "unchanged"):
            flags.complete(claim, keep_done_marker=keep_done_marker)
        else:
            flags.release(claim, reason=f"manual run did not register it: {result.reason}")


def refusals(client: RegistrationClient, session_path: Path) -> list[str]:
    """What the target would refuse a real run of the session for: an unknown subject, lab or
    user (the records a run names; it sends no projects)."""
    key = SessionKey.from_path(session_path)
    named = [("subjects", key.subject), ("labs", key.lab), ("users", client.target.user)]
    refused = []
    for endpoint, name in named:
        if name is None:
            continue
        try:
            client.assert_exists(name, endpoint)
        except MemberNotFound as exc:
            refused.append(str(exc))
    return refused


def data_root(session_path: str | os.PathLike[str]) -> Path:
    """The folder holding a session's ``lab/Subjects`` (or ``subject``) folder.

    Raises
    ------
    SessionFailed
        ``session_path`` is not a session folder, or there is no such folder.
    """
    path = Path(session_path)
    try:
        key = SessionKey.from_path(path)
    except ValueError as exc:
        raise SessionFailed(str(exc)) from None
    if not path.is_dir():
        raise SessionFailed(f"no such session folder: {path}")
    return _root(key, path)


def shown(path: str | os.PathLike[str], session_path: str | os.PathLike[str]) -> str:
    """A path in a session folder as logs show it: from the data root on
    (``cortexlab/Subjects/KS022/2026-01-05/001/alf/spikes.times.npy``)."""
    session_path = Path(session_path)
    root = _root(SessionKey.from_path(session_path), session_path)
    return Path(path).relative_to(root).as_posix()


def _root(key: SessionKey, session_path: Path) -> Path:
    return session_path.parents[4 if key.lab else 2]
