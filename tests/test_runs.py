"""What a registration run did to each session, and how its claims are settled: the library under
the flows, tested without Prefect."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from one_flows import flags
from one_flows.alyx import AlyxClient, AlyxTransientError
from one_flows.flags import FlagState
from one_flows.registration import (
    FileOutcome,
    Outcome,
    RegistrationClient,
    SessionFailed,
    SessionFolderUnreadable,
    SessionReport,
    SubjectNotFound,
)
from one_flows.runs import (
    GONE,
    RegistrationSummary,
    SessionResult,
    data_root,
    hold,
    let_go,
    refusals,
    settle,
    shown,
)
from one_flows.targets import AlyxTarget, LocalTarget

SESSION = Path("/data/cortexlab/Subjects/KS022/2026-01-05/001")


def _report(*outcomes: tuple[str, Outcome, str | None], from_ledger: bool = False):
    files = [FileOutcome(SESSION / rel, status, reason) for rel, status, reason in outcomes]
    return SessionReport(SESSION, {"id": "e1"}, False, files, from_ledger=from_ledger)


def test_a_report_is_registered_unchanged_or_failed_by_its_files():
    ok = _report(("alf/a.b.npy", Outcome.CREATED, None), ("notes.txt", Outcome.SKIPPED, "x"))
    assert SessionResult.of_report(SESSION, ok).status == "registered"
    vouched = _report(("alf/a.b.npy", Outcome.UNCHANGED, None), from_ledger=True)
    assert SessionResult.of_report(SESSION, vouched).status == "unchanged"
    refused = _report(
        ("alf/a.b.npy", Outcome.CREATED, None),
        ("alf/c.d.npy", Outcome.FAILED, "400: no"),
        ("alf/e.f.npy", Outcome.FAILED, "400: no"),
    )
    result = SessionResult.of_report(SESSION, refused)
    assert result.status == "failed" and result.eid == "e1"
    assert result.reason == f"{SESSION}: 2 files refused, e.g. alf/c.d.npy: 400: no"
    assert [f.path for f in result.files] == ["alf/a.b.npy", "alf/c.d.npy", "alf/e.f.npy"]


def test_duplicate_records_and_files_gone_are_said_in_the_result_table_and_summary():
    report = _report(("alf/a.b.npy", Outcome.CREATED, None))
    report.duplicates = ["e2", "e3"]
    report.deleted = ["alf/gone.times.npy"]
    result = SessionResult.of_report(SESSION, report)
    assert result.status == "registered"  # the session itself is fine
    assert (result.duplicates, result.deleted) == (["e2", "e3"], ["alf/gone.times.npy"])
    assert result.notices == [
        "2 other session records for this session on the target, to be deleted: e2, e3",
        f"1 file {GONE}: alf/gone.times.npy",
    ]
    summary = RegistrationSummary(root="/data", target="alyx:https://a.org", sessions=[result])
    session = "cortexlab/Subjects/KS022/2026-01-05/001"
    rows = summary.table()
    assert rows[0] == {
        "session": session,
        "file": "",
        "status": "registered",
        "dataset_type": "",
        "why": "; ".join(result.notices),
    }
    assert rows[-1] == {
        "session": session,
        "file": "alf/gone.times.npy",
        "status": "gone",
        "dataset_type": "",
        "why": GONE,
    }
    line = summary.markdown().splitlines()[-1]
    assert line.startswith(f"- [{session}](https://a.org/sessions/e1) registered (1 created)")
    assert all(f"**{notice}**" in line for notice in result.notices)
    assert summary.failure() is None


def test_a_folder_that_cannot_be_listed_is_the_sessions_own_failure():
    result = SessionResult.of_error(SESSION, SessionFolderUnreadable(SESSION / "alf", "denied"))
    assert result.status == "failed"
    assert result.reason == f"{SESSION}: cannot list {SESSION / 'alf'}: denied"


def test_an_error_is_an_outage_or_the_sessions_own():
    outage = SessionResult.of_error(SESSION, AlyxTransientError("GET /x → could not connect"))
    own = SessionResult.of_error(SESSION, SubjectNotFound("KS022"))
    assert (outage.status, own.status) == ("pending", "failed")
    assert own.reason == f'{SESSION}: "KS022" does not exist in subjects'


def _flagged(tmp_path: Path) -> flags.Flag:
    session = tmp_path / "cortexlab/Subjects/KS022/2026-01-05/001"
    session.mkdir(parents=True)
    (session / "create_me.flag").touch()
    (found,) = flags.find_flags(tmp_path)
    return found


def _states(root: Path) -> list[FlagState]:
    return [f.state for f in flags.find_flags(root, states=set(FlagState), on_error=None)]


@pytest.mark.parametrize(
    ("status", "max_attempts", "states", "final"),
    [
        ("registered", 3, [], "registered"),
        ("unchanged", 3, [], "unchanged"),
        ("pending", 1, [FlagState.PENDING], "pending"),  # no attempt counted, even the last
        ("failed", 3, [FlagState.FAILED], "failed"),
        ("failed", 1, [FlagState.QUARANTINED], "quarantined"),
    ],
)
def test_a_claim_is_settled_by_what_happened(tmp_path, status, max_attempts, states, final):
    claim = flags.claim(_flagged(tmp_path), str(uuid.uuid4()))
    result = SessionResult(session_path=str(claim.flag.session_path), status=status, reason="why")
    settle(claim, result, max_attempts=max_attempts, keep_done_marker=False)
    assert _states(tmp_path) == states
    assert result.status == final


def test_a_manual_run_holds_the_session_and_never_counts_an_attempt(tmp_path):
    flag = _flagged(tmp_path)
    other = str(uuid.uuid4())
    flags.claim(flag, other)
    with pytest.raises(SessionFailed, match=f"claimed by flow run {other}"):
        hold(flag.session_path, str(uuid.uuid4()))
    flags.release(
        flags.claims.claim_of(next(flags.find_flags(tmp_path, states=[FlagState.CLAIMED])))
    )

    claims = hold(flag.session_path, str(uuid.uuid4()))
    failed = SessionResult(session_path=str(flag.session_path), status="failed", reason="no")
    let_go(claims, failed, keep_done_marker=False)
    assert _states(tmp_path) == [FlagState.PENDING]
    claims = hold(flag.session_path, str(uuid.uuid4()))
    done = SessionResult(session_path=str(flag.session_path), status="registered")
    let_go(claims, done, keep_done_marker=False)
    assert _states(tmp_path) == []


def test_a_manual_run_that_cannot_claim_every_flag_gives_back_those_it_took(tmp_path, monkeypatch):
    flag = _flagged(tmp_path)
    flags.fail(flags.claim(flag, str(uuid.uuid4())), "no", max_attempts=3)
    (flag.session_path / "create_me.flag").touch()  # flagged again: two flags to claim
    claimed = []
    real_claim = flags.claim

    def second_claim_refused(found, run_id):
        if claimed:
            raise flags.FlagError(found.path, "cannot claim: Permission denied")
        claimed.append(real_claim(found, run_id))
        return claimed[-1]

    monkeypatch.setattr(flags, "claim", second_claim_refused)
    with pytest.raises(flags.FlagError, match="cannot claim"):
        hold(flag.session_path, str(uuid.uuid4()))
    assert len(claimed) == 1
    assert set(_states(tmp_path)) == {FlagState.PENDING, FlagState.FAILED}
    assert len(_states(tmp_path)) == 2


def _summary(*statuses: str) -> RegistrationSummary:
    sessions = [
        SessionResult(session_path=f"/d/s{i}", status=status, reason=f"/d/s{i}: why {i}")
        for i, status in enumerate(statuses)
    ]
    return RegistrationSummary(root="/d", target="alyx:https://a.org", sessions=sessions)


@pytest.mark.parametrize(
    ("statuses", "failure"),
    [
        (("registered", "unchanged", "taken"), None),
        (("dry run", "would fail"), None),
        (
            ("registered", "failed", "quarantined"),
            "2 of 3 sessions failed (1 quarantined); first: /d/s1: why 1",
        ),
        (("failed",), "1 of 1 sessions failed; first: /d/s0: why 0"),
        (
            ("registered", "pending", "failed", "pending"),
            "alyx:https://a.org failed: 2 of 4 sessions left pending for a later run "
            "(no attempt counted), and 1 failed; first: /d/s1: why 1",
        ),
    ],
)
def test_a_run_fails_when_a_session_failed_or_is_pending(statuses, failure):
    assert _summary(*statuses).failure() == failure


def test_summaries_name_sessions_from_the_root_and_say_why_once():
    summary = _summary("registered", "failed")
    assert summary.sessions_in_words == "1 registered, 1 failed"
    assert summary.files_in_words == "none"
    assert summary.markdown().splitlines()[-1] == "- `s1` failed (no files): why 1"
    assert summary.table()[1] == {
        "session": "s1",
        "file": "",
        "status": "failed",
        "dataset_type": "",
        "why": "why 1",
    }
    assert (
        shown(SESSION / "alf/a.b.npy", SESSION)
        == "cortexlab/Subjects/KS022/2026-01-05/001/alf/a.b.npy"
    )


def test_the_data_root_of_a_session_folder(tmp_path):
    with_lab = tmp_path / "cortexlab/Subjects/KS022/2026-01-05/001"
    without = tmp_path / "KS023/2026-01-05/002"
    for path in (with_lab, without):
        path.mkdir(parents=True)
        assert data_root(path) == tmp_path
    with pytest.raises(SessionFailed, match="no such session folder"):
        data_root(tmp_path / "cortexlab/Subjects/KS022/2026-01-05/002")
    with pytest.raises(SessionFailed, match="not a session folder"):
        data_root(tmp_path / "cortexlab/Subjects/KS022/2026-01-05")


def test_refusals_name_what_the_target_does_not_know(alyx_server, tmp_path):
    alyx_server.add_subject("KS022", lab="cortexlab")
    with AlyxClient(
        alyx_server.url, username=alyx_server.username, password=alyx_server.password
    ) as alyx:
        client = RegistrationClient(AlyxTarget(alyx), digest_cache=False)
        assert refusals(client, SESSION) == []
        assert refusals(client, Path("/data/nolab/Subjects/KS099/2026-01-05/001")) == [
            '"KS099" does not exist in subjects',
            '"nolab" does not exist in labs',
        ]
    local = RegistrationClient(LocalTarget(tmp_path), digest_cache=False)
    assert refusals(local, Path("/data/nolab/Subjects/KS099/2026-01-05/001")) == []
