"""The registration flow against an Alyx server that fails at random, or restarts mid-run.

Whatever the faults, repeated runs converge: every session registered once, every file once
with its right md5 and size, no flag left. The bounded version runs by default; the full one
(20 sessions × 30 files) is marked ``slow``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from one_flows.alyx import AlyxClient
from one_flows.prefect.blocks import AlyxCredentials
from one_flows.prefect.register import RegistrationOptions, register_new_sessions
from one_flows.prefect.retries import RetrySettings
from one_flows.registration import Outcome, RegistrationClient, RunFailed
from one_flows.targets import TargetUnavailable

FAULT_RATE = 0.30
READ_TIMEOUT = 0.5
# Each kind fires with the same probability; together 30 % of requests fail.
KINDS = (
    {"kind": "status", "status": 429, "retry_after": 0},
    {"kind": "status", "status": 500},
    {"kind": "status", "status": 502, "html": True},
    {"kind": "status", "status": 503},
    {"kind": "status", "status": 503, "html": True},
    {"kind": "drop"},
    {"kind": "delay", "seconds": 2 * READ_TIMEOUT},
)
OPTIONS = RegistrationOptions(
    max_attempts=20, retry=RetrySettings(retries=10, delay_seconds=0, jitter_factor=0)
)
MAX_RUNS = 8


def _block(server, read_timeout: float = READ_TIMEOUT) -> str:
    """Save credentials for ``server`` with a short read timeout; returns the block name."""
    name = f"reliability-{uuid.uuid4().hex[:8]}"
    AlyxCredentials(
        base_url=server.url,
        username=server.username,
        password=server.password,
        read_timeout=read_timeout,
        max_requests_per_minute=None,
    ).save(name)
    return name


def _inject(server, monkeypatch, seed: int) -> Counter:
    """Make 30 % of the server's requests fail at random; returns a tally of faults fired."""
    per_kind = 1 - (1 - FAULT_RATE) ** (1 / len(KINDS))
    for i, kind in enumerate(KINDS):
        server.faults.add(probability=per_kind, seed=seed + i, **kind)
    fired: Counter = Counter()
    pick = server.faults.pick

    def counting(method: str, path: str):
        fault = pick(method, path)
        if fault is not None:
            fired[fault.kind if fault.kind != "status" else fault.status] += 1
        return fault

    monkeypatch.setattr(server.faults, "pick", counting)
    return fired


def _assert_rate_near(fired: int, total: int, rate: float) -> None:
    """Assert ``fired`` of ``total`` is within four binomial standard deviations of ``rate``.

    Thread scheduling decides which request draws which roll, so the count varies from run to
    run; with a few dozen requests a fixed interval such as 20–40 % fails one run in ten.
    """
    expected = rate * total
    spread = 4 * (total * rate * (1 - rate)) ** 0.5
    assert abs(fired - expected) <= spread, (fired, total)


def _retries(flow_run_ids: list) -> int:
    """Task runs re-run after a failure, over the given flow runs, read from the Prefect API."""
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=flow_run_ids))
        )
    return sum(max(0, run.run_count - 1) for run in runs)


def _run_until_done(tree, alyx: str, **kwargs) -> list:
    """Run the flow until no flag is left (at most `MAX_RUNS` times); returns the final states."""
    states = []
    for _ in range(MAX_RUNS):
        states.append(
            register_new_sessions(
                tree.root, alyx=alyx, quiet_seconds=0, options=OPTIONS, return_state=True, **kwargs
            )
        )
        if not tree.flags():
            break
    return states


@pytest.mark.parametrize(
    "size",
    [
        pytest.param((12, 10), id="12x10"),
        pytest.param((20, 30), id="20x30", marks=pytest.mark.slow),
    ],
)
def test_random_faults_lose_nothing_and_duplicate_nothing(
    prefect_api, alyx_server, tree_factory, audit_server, monkeypatch, size
):
    tree = tree_factory(*size)
    block = _block(alyx_server)
    fired = _inject(alyx_server, monkeypatch, seed=20260301)

    states = _run_until_done(tree, block)

    alyx_server.faults.clear()
    # A run ends Completed, or Failed by an outage (faults that outlasted the retries) that
    # left sessions pending: never a session failed for the server's faults.
    assert states[-1].is_completed(), [s.message for s in states]
    for state in states:
        failure = state.result(raise_on_failure=False)
        assert state.is_completed() or isinstance(failure, RunFailed | TargetUnavailable)
        assert not {"failed", "quarantined"} & {s.status for s in _sessions(state)}
    assert tree.flags() == []
    audit_server(alyx_server, tree).assert_exact()
    # The faults did happen, of every kind, and the flow retried through them.
    assert len(fired) >= 4 and {"drop", "delay"} & set(fired)
    _assert_rate_near(sum(fired.values()), alyx_server.request_count(), FAULT_RATE)
    retries = _retries([s.state_details.flow_run_id for s in states])
    assert retries > 0
    registered = Counter(s.status for st in states for s in _sessions(st))
    assert registered["registered"] == size[0]


def _sessions(state) -> list:
    """The session results of a run, whether it completed or failed (none when its check of
    the server failed, before anything was claimed)."""
    result = state.result(raise_on_failure=False)
    if isinstance(result, TargetUnavailable):
        return []
    return result.summary.sessions if isinstance(result, RunFailed) else result.sessions


def test_a_server_restart_mid_run_loses_and_duplicates_nothing(
    prefect_api, alyx_server, tree_factory, audit_server
):
    tree = tree_factory(6, 10)
    block = _block(alyx_server, read_timeout=5.0)
    restarted = threading.Event()

    def restart_after_two_batches() -> None:
        deadline = time.monotonic() + 60
        while alyx_server.request_count("POST", "/register-file") < 2:
            if time.monotonic() > deadline:
                return
            time.sleep(0.005)
        alyx_server.restart()
        restarted.set()

    watcher = threading.Thread(target=restart_after_two_batches)
    watcher.start()
    first = register_new_sessions(
        tree.root,
        alyx=block,
        quiet_seconds=0,
        max_parallel_sessions=2,
        options=OPTIONS,
        return_state=True,
    )
    watcher.join()
    assert restarted.is_set()
    # The run ends in a known state: completed with every session registered, or failed by the
    # outage with the sessions it kept from registering pending (their flags as they were).
    statuses = {s.status for s in _sessions(first)}
    assert statuses <= {"registered", "pending"}
    assert first.is_completed() == (statuses == {"registered"}), first.message
    again = _run_until_done(tree, block)
    assert all(s.is_completed() for s in again)
    assert tree.flags() == []
    audit_server(alyx_server, tree).assert_exact()


def test_a_session_creation_that_times_out_is_not_posted_twice(
    prefect_api, alyx_server, tree_factory, audit_server
):
    """The server creates the session after the client gave up waiting; the retry must find it
    rather than post a second record."""
    tree = tree_factory(2, 3)
    block = _block(alyx_server)
    alyx_server.faults.add(
        method="POST", path="/sessions", kind="delay", seconds=2 * READ_TIMEOUT, times=2
    )
    summary = register_new_sessions(tree.root, alyx=block, quiet_seconds=0, options=OPTIONS)
    assert [s.status for s in summary.sessions] == ["registered"] * 2
    assert alyx_server.request_count("POST", "/sessions") == 2
    audit_server(alyx_server, tree).assert_exact()


def test_registration_waits_for_a_timed_out_creation(alyx_server, tree_factory, tmp_path):
    tree = tree_factory(1, 2)
    alyx_server.faults.add(method="POST", path="/sessions", kind="delay", seconds=1.0, times=1)
    alyx = AlyxClient(
        alyx_server.url,
        username=alyx_server.username,
        password=alyx_server.password,
        timeout=READ_TIMEOUT,
    )
    with alyx:
        report = RegistrationClient(alyx, digest_cache=False).register_session(tree.sessions[0])
    created = sorted(f.rel_path for f in report.by_status(Outcome.CREATED))
    assert report.created and created == sorted(tree.files(tree.sessions[0]))
    records = alyx_server.store.all("SELECT id FROM sessions WHERE subject = 'algernon'")
    assert [r["id"] for r in records] == [report.eid]
