"""Outages are not the sessions' fault, and a run's state tells the truth.

Against a real Prefect API and the Alyx test server: a run that cannot reach or log in to its
target fails at once with one clear message and claims, renames and counts nothing; a target that
goes away mid-run leaves the sessions not done pending; the next good run registers everything.
A session's own failure fails the run while the others register, and a "flow run failed"
automation fires.
"""

import threading
import time
from pathlib import Path

import httpx
import pytest
from prefect.automations import Automation, DoNothing
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.events.worker import EventsWorker
from prefect.settings import PREFECT_API_URL, temporary_settings

from one_flows._prefect_api import free_port
from one_flows.flags import FlagState, find_flags
from one_flows.prefect.register import RegistrationOptions, register_new_sessions, register_session
from one_flows.prefect.retries import RetrySettings
from one_flows.registration import RunFailed
from one_flows.targets import TargetUnavailable

FAST = RegistrationOptions(retry=RetrySettings(retries=2, delay_seconds=0, jitter_factor=0))
SESSIONS = 6


def _states(root: Path) -> list[FlagState]:
    return sorted(f.state for f in find_flags(root, states=set(FlagState), on_error=None))


def _run(root: Path, url: str, **kwargs):
    kwargs.setdefault("options", FAST)
    return register_new_sessions(root, alyx=url, quiet_seconds=0, return_state=True, **kwargs)


def _wrong_password(alyx, monkeypatch):
    monkeypatch.setenv("ALYX_PASSWORD", "not-the-password")
    return alyx.url


def _no_credentials(alyx, monkeypatch):
    monkeypatch.delenv("ALYX_LOGIN")
    monkeypatch.delenv("ALYX_PASSWORD")
    return alyx.url


def _refused_connection(alyx, monkeypatch):
    return f"http://127.0.0.1:{free_port()}"


def _server_errors(alyx, monkeypatch):
    alyx.faults.add(kind="status", status=503)
    return alyx.url


@pytest.mark.parametrize(
    ("make_outage", "cause"),
    [
        (_wrong_password, "bad credentials"),
        (_no_credentials, "no credentials"),
        (_refused_connection, "unreachable"),
        (_server_errors, "server error 503"),
    ],
)
def test_a_target_that_cannot_be_used_fails_the_run_before_any_claim(
    prefect_api, alyx, sample_root, monkeypatch, make_outage, cause
):
    url = make_outage(alyx, monkeypatch)
    state = _run(sample_root, url)

    assert state.is_failed()
    failure = state.result(raise_on_failure=False)
    assert isinstance(failure, TargetUnavailable) and failure.cause == cause
    assert f": {cause} (" in state.message
    assert _states(sample_root) == [FlagState.PENDING] * SESSIONS  # none claimed or counted
    assert alyx.request_count("POST", "/sessions") == 0
    if make_outage is _server_errors:  # the check is retried as the other steps are
        assert alyx.request_count("POST", "/auth-token") == 1 + FAST.retry.retries

    alyx.faults.clear()
    monkeypatch.setenv("ALYX_LOGIN", alyx.username)
    monkeypatch.setenv("ALYX_PASSWORD", alyx.password)
    good = _run(sample_root, alyx.url)
    assert good.is_completed(), good.message
    assert [s.status for s in good.result().sessions] == ["registered"] * SESSIONS
    assert _states(sample_root) == []


def test_a_server_gone_mid_run_leaves_the_sessions_not_done_pending(prefect_api, alyx, sample_root):
    url = alyx.url
    # Each session's look-up takes a moment: the third cannot be done before the server stops.
    alyx.faults.add(method="GET", path="/sessions", kind="delay", seconds=0.3)

    def stop_after_two_sessions() -> None:
        deadline = time.monotonic() + 60
        while len(_states(sample_root)) > SESSIONS - 2 and time.monotonic() < deadline:
            time.sleep(0.002)
        alyx.stop()

    stopper = threading.Thread(target=stop_after_two_sessions)
    stopper.start()
    state = _run(sample_root, url, max_parallel_sessions=1)
    stopper.join()

    assert state.is_failed()
    failure = state.result(raise_on_failure=False)
    assert isinstance(failure, RunFailed)
    statuses = [s.status for s in failure.summary.sessions]
    assert statuses == ["registered"] * 2 + ["pending"] * (SESSIONS - 2)
    assert state.message.startswith(f"alyx:{url} failed: 4 of 6 sessions left pending")
    assert "could not connect" in state.message or "dropped" in state.message
    # No attempt was counted: every flag not done waits as it was, not failed-1.
    assert _states(sample_root) == [FlagState.PENDING] * (SESSIONS - 2)

    alyx.faults.clear()
    alyx.start()  # the same port, the same data
    good = _run(sample_root, url)
    assert good.is_completed(), good.message
    assert [s.status for s in good.result().sessions] == ["registered"] * (SESSIONS - 2)
    assert _states(sample_root) == []
    assert alyx.request_count("POST", "/register-file") >= SESSIONS
    assert len(alyx.store.all("SELECT id FROM sessions")) == SESSIONS  # none posted twice


def test_a_session_that_fails_fails_the_run_and_the_others_register(
    prefect_api, alyx_server, monkeypatch, sample_root
):
    monkeypatch.setenv("ALYX_LOGIN", alyx_server.username)
    monkeypatch.setenv("ALYX_PASSWORD", alyx_server.password)
    for subject in ("KS022", "SWC_043"):  # KS023 is unknown
        alyx_server.add_subject(subject, lab="cortexlab" if subject == "KS022" else "hoferlab")
    state = _run(sample_root, alyx_server.url)

    assert state.is_failed()
    assert state.message.startswith("2 of 6 sessions failed; first: ")
    assert "KS023/2026-01-05/001" in state.message and '"KS023" does not exist' in state.message
    summary = state.result(raise_on_failure=False).summary
    by_subject = {(Path(s.session_path).parts[-3], s.status) for s in summary.sessions}
    assert by_subject == {("KS022", "registered"), ("SWC_043", "registered"), ("KS023", "failed")}
    assert alyx_server.request_count("POST", "/register-file") == 4
    assert _states(sample_root) == [FlagState.FAILED] * 2


def test_a_dry_run_says_what_the_target_would_refuse(prefect_api, alyx_server, sample_root):
    """Checked against the target, named per session; nothing claimed or sent."""
    alyx_server.add_subject("KS022", lab="cortexlab")  # KS023 and SWC_043 are unknown
    moved = sample_root / "nolab/Subjects/KS022/2026-01-05/001"
    moved.parent.mkdir(parents=True)
    (sample_root / "cortexlab/Subjects/KS022/2026-01-05/001").rename(moved)
    block = _block(alyx_server)
    state = register_new_sessions(
        sample_root, alyx=block, quiet_seconds=0, dry_run=True, return_state=True
    )

    assert state.is_completed()
    summary = state.result()
    verdicts = {
        str(Path(s.session_path).relative_to(sample_root)): (s.status, s.reason)
        for s in summary.sessions
    }
    assert verdicts["cortexlab/Subjects/KS022/2026-01-05/002"] == ("dry run", None)
    status, reason = verdicts["nolab/Subjects/KS022/2026-01-05/001"]
    assert status == "would fail" and reason.endswith('"nolab" does not exist in labs')
    for session in (
        "cortexlab/Subjects/KS023/2026-01-05/001",
        "hoferlab/Subjects/SWC_043/2026-01-05/002",
    ):
        status, reason = verdicts[session]
        assert status == "would fail"
        assert (
            reason
            == f'{sample_root / session}: "{session.split("/")[2]}" does not exist in subjects'
        )
    assert _states(sample_root) == [FlagState.PENDING] * SESSIONS
    assert alyx_server.request_count("POST", "/sessions") == 0
    assert alyx_server.request_count("POST", "/register-file") == 0


def _block(server) -> str:
    """A saved AlyxCredentials block for ``server``; returns its name."""
    from one_flows.prefect.blocks import AlyxCredentials

    name = f"outages-{server.port}"
    AlyxCredentials(base_url=server.url, username=server.username, password=server.password).save(
        name, overwrite=True
    )
    return name


def test_a_failed_run_fires_a_flow_run_failed_automation(prefect_server, alyx_server, sample_root):
    alyx_server.add_subject("KS022", lab="cortexlab")  # the other subjects are unknown
    with temporary_settings({PREFECT_API_URL: prefect_server.api_url}):
        automation = Automation(
            name="registration failed",
            trigger=EventTrigger(
                match={"prefect.resource.id": "prefect.flow-run.*"},
                match_related={
                    "prefect.resource.role": "flow",
                    "prefect.resource.name": "register-new-sessions",
                },
                expect={"prefect.flow-run.Failed"},
                for_each={"prefect.resource.id"},
                posture=Posture.Reactive,
                threshold=1,
                within=0,
            ),
            actions=[DoNothing()],
        ).create()
        try:
            time.sleep(2)  # the trigger service loads new automations periodically
            state = _run(sample_root, _block(alyx_server))
            EventsWorker.drain_all()
            fired = _automation_fired(prefect_server.api_url, automation.id, wait_seconds=60)
        finally:
            automation.delete()
    assert state.is_failed() and state.message.startswith("4 of 6 sessions failed")
    run_id = state.state_details.flow_run_id
    assert f"prefect.flow-run.{run_id}" in fired, prefect_server.log_tail()


def _automation_fired(api_url: str, automation_id, wait_seconds: float) -> set[str]:
    """The flow runs whose events have triggered the automation so far."""
    body = {
        "filter": {
            "event": {"name": ["prefect.automation.triggered"]},
            "resource": {"id": [f"prefect.automation.{automation_id}"]},
        },
        "limit": 50,
    }
    fired: set[str] = set()
    deadline = time.monotonic() + wait_seconds
    while not fired and time.monotonic() < deadline:
        events = httpx.post(f"{api_url}/events/filter", json=body).json()["events"]
        fired = {e["payload"]["triggering_labels"].get("prefect.resource.id", "") for e in events}
        time.sleep(0.5)
    return fired


def test_a_manual_run_against_an_unreachable_target_leaves_the_flag_alone(prefect_api, sample_root):
    session = sample_root / "cortexlab/Subjects/KS022/2026-01-05/001"
    url = f"http://127.0.0.1:{free_port()}"
    state = register_session(session, alyx=url, options=FAST, return_state=True)
    assert state.is_failed() and ": unreachable (" in state.message
    assert [p.name for p in session.iterdir() if "flag" in p.name] == ["create_me.flag"]
