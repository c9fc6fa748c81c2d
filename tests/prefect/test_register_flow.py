"""The register-new-sessions flow against a real Prefect API and the Alyx-compatible server."""

import asyncio
import os
import threading
import time
import uuid
from pathlib import Path

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.states import Crashed, Running

from one_flows import flags
from one_flows.flags import FlagState, claim, find_flags
from one_flows.prefect import register
from one_flows.prefect.register import RegistrationOptions, register_new_sessions
from one_flows.prefect.retries import SERVER_ERROR_RETRIES, RetrySettings


@flow(name="crashing")
def _crashing() -> None:
    """Stands for a flow run that held claims and crashed."""


FAST = RegistrationOptions(retry=RetrySettings(retries=3, delay_seconds=0, jitter_factor=0))
SESSIONS = 6


def _flags(root: Path, *states: FlagState) -> list:
    return list(find_flags(root, states=states or set(FlagState), on_error=None))


def _register(root: Path, alyx, **kwargs):
    kwargs.setdefault("options", FAST)
    return register_new_sessions(root, alyx=alyx.url, quiet_seconds=0, **kwargs)


def test_new_flags_are_registered_once(prefect_api, alyx, sample_root):
    first = _register(sample_root, alyx)
    assert [s.status for s in first.sessions] == ["registered"] * SESSIONS
    assert _flags(sample_root) == []
    assert alyx.request_count("POST", "/sessions") == SESSIONS
    assert alyx.request_count("POST", "/register-file") == SESSIONS
    assert first.file_counts["created"] > 0 and "failed" not in first.file_counts
    registered = {s.eid for s in first.sessions}
    assert len(registered) == SESSIONS and None not in registered

    second = _register(sample_root, alyx)
    assert second.sessions == []
    assert alyx.request_count("POST", "/sessions") == SESSIONS

    # A new flag on a registered session: the record is found, the files are unchanged.
    session = Path(first.sessions[0].session_path)
    (session / "create_me.flag").touch()
    third = _register(sample_root, alyx)
    assert [(s.session_path, s.eid) for s in third.sessions] == [
        (str(session), first.sessions[0].eid)
    ]
    assert set(third.file_counts) <= {"unchanged", "skipped"}
    assert alyx.request_count("POST", "/sessions") == SESSIONS
    assert alyx.request_count("POST", "/register-file") == SESSIONS


def test_the_ledger_spares_requests_unless_asked_to_recheck(prefect_api, alyx, sample_root):
    an_hour_ago = time.time() - 3600  # the ledger does not trust files modified just now
    for path in sample_root.rglob("*"):
        os.utime(path, (an_hour_ago, an_hour_ago))
    first = _register(sample_root, alyx)
    session = Path(first.sessions[0].session_path)
    asked = alyx.request_count()
    per_run = [("POST", "/auth-token"), ("GET", "/dataset-types"), ("GET", "/data-formats")]
    before = [alyx.request_count(*request) for request in per_run]
    (session / "create_me.flag").touch()
    again = _register(sample_root, alyx)
    assert set(again.file_counts) <= {"unchanged", "skipped"}
    # This machine registered it: nothing is asked about the session, and nothing is said to
    # have been registered; the run only checked that it could reach and log in to the server,
    # and read the data formats that sort a session's files.
    assert [(s.session_path, s.status) for s in again.sessions] == [(str(session), "unchanged")]
    assert alyx.request_count() - asked == len(per_run)
    assert [alyx.request_count(*request) for request in per_run] == [n + 1 for n in before]
    (session / "create_me.flag").touch()
    rechecked = register_new_sessions(
        sample_root,
        alyx=alyx.url,
        quiet_seconds=0,
        options=RegistrationOptions(retry=FAST.retry, recheck=True),
    )
    assert set(rechecked.file_counts) <= {"unchanged", "skipped"}
    assert alyx.request_count("GET", "/sessions") > 0 and alyx.request_count() > asked


def test_transient_faults_are_retried_until_they_pass(prefect_api, alyx, sample_root):
    alyx.faults.add(method="POST", path="/register-file", kind="status", status=503, times=2)
    alyx.faults.add(
        method="GET", path="/sessions", kind="status", status=429, retry_after=1, times=1
    )
    alyx.faults.add(method="GET", path="/datasets", kind="drop", times=1)
    alyx.faults.add(method="POST", path="/sessions", kind="status", status=502, html=True, times=1)
    summary = _register(sample_root, alyx)
    assert [s.status for s in summary.sessions] == ["registered"] * SESSIONS
    assert alyx.request_count("POST", "/register-file") == SESSIONS + 2
    # The 502 may have created the session before the proxy answered: it is looked up again.
    assert alyx.request_count("POST", "/sessions") == SESSIONS + 1
    assert _flags(sample_root) == []


def _failed(root: Path, alyx, **kwargs):
    """Run the flow, which must end Failed; returns its message and its summary."""
    kwargs.setdefault("options", FAST)
    state = register_new_sessions(root, alyx=alyx.url, quiet_seconds=0, return_state=True, **kwargs)
    assert state.is_failed()
    return state.message, state.result(raise_on_failure=False).summary


def test_a_refused_request_is_not_retried(prefect_api, alyx, sample_root):
    alyx.faults.add(method="POST", path="/sessions", kind="status", status=400, times=1)
    message, summary = _failed(sample_root, alyx, max_parallel_sessions=1)
    failed = summary.by_status("failed")
    assert len(failed) == 1 and len(summary.by_status("registered")) == SESSIONS - 1
    assert message == f"1 of {SESSIONS} sessions failed; first: {failed[0].reason}"
    assert alyx.request_count("POST", "/sessions") == SESSIONS
    assert failed[0].reason.startswith(failed[0].session_path) and "400" in failed[0].reason
    assert [f.state for f in _flags(sample_root)] == [FlagState.FAILED]


def test_a_server_error_is_retried_a_couple_of_times_then_waits_as_an_outage(
    prefect_api, alyx, sample_root
):
    alyx.faults.add(method="POST", path="/sessions", kind="status", status=500)
    message, summary = _failed(sample_root, alyx, max_parallel_sessions=1)
    assert [s.status for s in summary.sessions] == ["pending"] * SESSIONS
    # Each was tried 1 + SERVER_ERROR_RETRIES times: the server's check passed after each.
    assert alyx.request_count("POST", "/sessions") == SESSIONS * (1 + SERVER_ERROR_RETRIES)
    reason = summary.sessions[0].reason
    assert reason.startswith(summary.sessions[0].session_path) and "500" in reason
    assert message.startswith(f"alyx:{alyx.url} failed: {SESSIONS} of {SESSIONS} sessions left")
    assert {f.state for f in _flags(sample_root)} == {FlagState.PENDING}


def test_a_batch_the_server_fails_naming_no_file_is_an_outage(prefect_api, alyx, sample_root):
    alyx.faults.add(method="POST", path="/register-file", kind="status", status=500)
    message, summary = _failed(sample_root, alyx, max_parallel_sessions=1)
    assert [s.status for s in summary.sessions] == ["pending"] * SESSIONS
    assert alyx.request_count("POST", "/register-file") == SESSIONS * (1 + SERVER_ERROR_RETRIES)
    assert "POST /register-file → 500" in message
    assert {f.state for f in _flags(sample_root)} == {FlagState.PENDING}


def test_a_crashed_claim_is_taken_back_and_registered(prefect_api, alyx, sample_root):
    crashed = asyncio.run(_flow_run(Crashed()))
    flags = sorted(_flags(sample_root), key=lambda f: f.session_path)
    claim(flags[0], str(crashed))
    claim(flags[1], str(uuid.uuid4()))  # a run the API never heard of
    assert len(_flags(sample_root, FlagState.CLAIMED)) == 2
    summary = _register(sample_root, alyx)
    assert [s.status for s in summary.sessions] == ["registered"] * SESSIONS
    assert _flags(sample_root) == []


def test_a_claim_of_a_running_flow_run_is_left_alone(prefect_api, alyx, sample_root):
    running = asyncio.run(_flow_run(Running()))
    held = sorted(_flags(sample_root), key=lambda f: f.session_path)[0]
    claim(held, str(running))
    summary = _register(sample_root, alyx)
    assert len(summary.by_status("registered")) == SESSIONS - 1
    assert [f.session_path for f in _flags(sample_root)] == [held.session_path]


async def _flow_run(state):
    async with get_client() as client:
        run = await client.create_flow_run(flow=_crashing, state=state)
        return run.id


def test_a_dry_run_claims_and_sends_nothing(prefect_api, alyx, sample_root):
    summary = _register(sample_root, alyx, dry_run=True)
    assert summary.dry_run and [s.status for s in summary.sessions] == ["dry run"] * SESSIONS
    assert {f.status for s in summary.sessions for f in s.files} >= {"would register"}
    assert alyx.request_count("POST", "/sessions") + alyx.request_count("POST", "/register") == 0
    assert len(_flags(sample_root, FlagState.PENDING)) == SESSIONS


def test_a_dry_run_fails_only_the_preview_of_a_flag_it_cannot_read(prefect_api, alyx, sample_root):
    bad = sorted(_flags(sample_root), key=lambda f: f.session_path)[0]
    bad.path.write_text("../outside.npy\n")
    summary = _register(sample_root, alyx, dry_run=True)
    statuses = {s.session_path: s.status for s in summary.sessions}
    assert statuses.pop(str(bad.session_path)) == "failed"
    assert set(statuses.values()) == {"dry run"} and len(statuses) == SESSIONS - 1
    assert "'..' is refused" in summary.sessions[0].reason
    assert len(_flags(sample_root, FlagState.PENDING)) == SESSIONS


def test_a_failing_session_does_not_stop_the_others(
    prefect_api, alyx_server, monkeypatch, sample_root
):
    monkeypatch.setenv("ALYX_LOGIN", alyx_server.username)
    monkeypatch.setenv("ALYX_PASSWORD", alyx_server.password)
    alyx_server.add_subject("KS022", lab="cortexlab")  # KS023 and SWC_043 are unknown
    message, summary = _failed(
        sample_root, alyx_server, options=RegistrationOptions(max_attempts=1)
    )
    by_subject = {Path(s.session_path).parts[-3]: s.status for s in summary.sessions}
    assert by_subject == {"KS022": "registered", "KS023": "quarantined", "SWC_043": "quarantined"}
    quarantined = summary.by_status("quarantined")[0]
    assert "KS023" in quarantined.reason or "SWC_043" in quarantined.reason
    assert message == f"4 of 6 sessions failed (4 quarantined); first: {quarantined.reason}"
    assert {f.state for f in _flags(sample_root)} == {FlagState.QUARANTINED}
    assert len(_flags(sample_root)) == 4


def test_concurrent_runs_register_each_session_once(prefect_api, alyx, sample_root):
    summaries = []
    runs = [
        threading.Thread(target=lambda: summaries.append(_register(sample_root, alyx)))
        for _ in range(2)
    ]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    registered = [s.session_path for summary in summaries for s in summary.by_status("registered")]
    assert sorted(registered) == sorted(set(registered)) and len(registered) == SESSIONS
    assert alyx.request_count("POST", "/sessions") == SESSIONS
    assert alyx.request_count("POST", "/register-file") == SESSIONS
    assert _flags(sample_root) == []


def test_a_run_logs_in_and_reads_the_reference_tables_once(prefect_api, alyx, sample_root):
    summary = _register(sample_root, alyx, max_parallel_sessions=4)
    assert [s.status for s in summary.sessions] == ["registered"] * SESSIONS
    per_run = {("POST", "/auth-token"), ("GET", "/dataset-types"), ("GET", "/data-formats")}
    assert {alyx.request_count(m, p) for m, p in per_run} == {1}
    per_session = {("POST", "/sessions"), ("POST", "/register-file")}
    assert {alyx.request_count(m, p) for m, p in per_session} == {SESSIONS}
    # A new session is looked up before its creation and after (for another machine's record).
    assert alyx.request_count("GET", "/sessions") == 2 * SESSIONS
    # Subjects are looked up once per client too, bar sessions of a subject asking at once.
    subjects = alyx.request_count("GET", "/subjects/")
    assert 3 <= subjects <= SESSIONS
    assert alyx.request_count() == len(per_run) + (len(per_session) + 2) * SESSIONS + subjects


def test_a_flag_that_cannot_be_claimed_fails_its_session_alone(
    prefect_api, alyx, sample_root, monkeypatch
):
    """A session folder the run may not write to (its flag cannot be renamed): that session
    fails, its flag left as it was; the others register."""
    stuck = sorted(_flags(sample_root), key=lambda f: f.session_path)[0]
    if os.geteuid() != 0:
        stuck.session_path.chmod(0o555)
    else:  # root renames whatever the modes say: the claim is refused as it would be
        real_claim = flags.claim

        def claim_refused(flag, run_id):
            if flag.session_path == stuck.session_path:
                raise flags.FlagError(flag.path, "cannot claim: Permission denied")
            return real_claim(flag, run_id)

        monkeypatch.setattr(flags, "claim", claim_refused)
    try:
        message, summary = _failed(sample_root, alyx)
    finally:
        stuck.session_path.chmod(0o755)
    statuses = {s.session_path: s.status for s in summary.sessions}
    assert statuses.pop(str(stuck.session_path)) == "failed"
    assert set(statuses.values()) == {"registered"} and len(statuses) == SESSIONS - 1
    assert message.startswith(f"1 of {SESSIONS} sessions failed; first: {stuck.session_path}: ")
    assert "cannot claim" in message
    assert [(f.path, f.state) for f in _flags(sample_root)] == [(stuck.path, FlagState.PENDING)]


def test_a_claim_lost_before_it_is_settled_keeps_the_session_registered(
    prefect_api, alyx, sample_root, monkeypatch
):
    """A claimed flag removed (by hand, or by another process) while its session registers."""
    lost = sorted(_flags(sample_root), key=lambda f: f.session_path)[0]
    real_complete = flags.complete

    def complete_after_removal(claim, keep_done_marker=False):
        if claim.flag.session_path == lost.session_path:
            claim.flag.path.unlink()
        return real_complete(claim, keep_done_marker=keep_done_marker)

    monkeypatch.setattr(flags, "complete", complete_after_removal)
    summary = _register(sample_root, alyx)
    assert [s.status for s in summary.sessions] == ["registered"] * SESSIONS
    assert _flags(sample_root) == []


def test_a_run_that_stops_gives_back_the_claims_it_has_not_settled(
    prefect_api, alyx, sample_root, monkeypatch
):
    def events_down(*args, **kwargs):
        raise RuntimeError("events down")

    monkeypatch.setattr(register, "emit_session_registered", events_down)
    state = register_new_sessions(
        sample_root,
        alyx=alyx.url,
        quiet_seconds=0,
        max_parallel_sessions=2,
        options=FAST,
        return_state=True,
    )
    assert state.is_failed() and "events down" in state.message
    assert [f.state for f in _flags(sample_root)] == [FlagState.PENDING] * SESSIONS
