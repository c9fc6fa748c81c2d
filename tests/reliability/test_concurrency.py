"""Runs that overlap: two scheduled runs on one root, and a manual one-session run during one.

Claims make each session the work of one run at a time, so each is registered once: one session
record, one dataset per file, one ``register-file`` request per session.
"""

from __future__ import annotations

import threading
import time

import pytest

from one_flows.flags import FlagState
from one_flows.prefect.register import (
    RegistrationOptions,
    register_new_sessions,
    register_session,
)
from one_flows.prefect.retries import RetrySettings
from one_flows.registration import SessionFailed

OPTIONS = RegistrationOptions(retry=RetrySettings(retries=2, delay_seconds=0, jitter_factor=0))


def _together(*calls) -> list:
    """Run the calls at the same time, each in a thread; returns their results or exceptions."""
    results: list = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _slow_lookups(server, seconds: float = 0.2) -> None:
    # Every run is still looking its sessions up when the other starts: the overlap is certain.
    server.faults.add(method="GET", path="/sessions", kind="delay", seconds=seconds)


def test_two_runs_on_one_root_register_each_session_once(
    prefect_api, alyx_server, alyx_env, tree_factory, audit_server
):
    tree = tree_factory(6, 5)
    alyx_env(alyx_server)
    _slow_lookups(alyx_server)

    def scheduled():
        return register_new_sessions(
            tree.root, alyx=alyx_server.url, quiet_seconds=0, options=OPTIONS
        )

    first, second = _together(scheduled, scheduled)

    registered = [s.session_path for r in (first, second) for s in r.by_status("registered")]
    taken = [s.session_path for r in (first, second) for s in r.by_status("taken")]
    assert sorted(registered) == sorted(str(s) for s in tree.sessions)
    assert set(taken) <= set(registered)
    assert alyx_server.request_count("POST", "/register-file") == len(tree.sessions)
    assert tree.flags() == []
    audit_server(alyx_server, tree).assert_exact()


def test_a_manual_run_during_a_scheduled_run_does_not_register_twice(
    prefect_api, alyx_server, alyx_env, tree_factory, audit_server
):
    tree = tree_factory(3, 5)
    alyx_env(alyx_server)
    # Long enough for the manual flow run to start while the scheduled one holds the session;
    # the manual run is refused before it sends anything.
    _slow_lookups(alyx_server, seconds=3.0)
    session = tree.sessions[0]
    summaries = []
    scheduled = threading.Thread(
        target=lambda: summaries.append(
            register_new_sessions(tree.root, alyx=alyx_server.url, quiet_seconds=0, options=OPTIONS)
        )
    )
    scheduled.start()
    try:
        deadline = time.monotonic() + 60
        while not tree.flags(FlagState.CLAIMED) and time.monotonic() < deadline:
            time.sleep(0.001)
        claimed = [f.session_path for f in tree.flags(FlagState.CLAIMED)]
        assert session in claimed
        # The scheduled run holds the session: the manual run refuses it, naming the holder.
        with pytest.raises(SessionFailed, match="claimed by flow run") as refused:
            register_session(session, alyx=alyx_server.url, options=OPTIONS)
        assert str(session) in str(refused.value)
    finally:
        scheduled.join()
    assert [s.status for s in summaries[0].sessions] == ["registered"] * 3
    audit_server(alyx_server, tree).assert_exact()
    # Once the claim has ended, a manual run may register the session again: nothing changes,
    # and the ledger of this machine vouches for that without sending anything.
    again = register_session(session, alyx=alyx_server.url, options=OPTIONS)
    assert again.status == "unchanged" and {f.status for f in again.files} == {"unchanged"}
    audit_server(alyx_server, tree).assert_exact()
