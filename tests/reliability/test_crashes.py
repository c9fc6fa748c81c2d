"""`one-flows register` killed with SIGKILL at random points, then run again until done.

The Alyx server runs in this process on a file database; each registration runs in a child
process against the shared Prefect API. After the kills, plain runs finish the work: every
session registered, one session record per session and one dataset per file on the server, and
no flag left claimed by a dead run.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from one_flows.flags import FlagState, claim, find_flags, reap_stale_claims
from one_flows.testing.server import AlyxTestServer

MAX_CLEAN_RUNS = 3


def _command(root: Path, server: AlyxTestServer) -> list[str]:
    one_flows = Path(sys.executable).with_name("one-flows")
    return [str(one_flows), "register", str(root), "--alyx", server.url, "--quiet-seconds", "0"]


def _environment(prefect_api: str, server: AlyxTestServer, home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PREFECT_API_URL": prefect_api,
        "PREFECT_LOGGING_TO_API_ENABLED": "false",
        "ALYX_LOGIN": server.username,
        "ALYX_PASSWORD": server.password,
        "ONE_FLOWS_CACHE_DIR": str(home / "digests"),
        "COLUMNS": "200",
    }


def _kill_at_request(child: subprocess.Popen, server: AlyxTestServer, nth: int) -> bool:
    """SIGKILL ``child`` as soon as the server has received ``nth`` more requests; returns
    whether it was killed (False: it finished first)."""
    start = server.request_count()
    deadline = time.monotonic() + 120
    while child.poll() is None and time.monotonic() < deadline:
        if server.request_count() - start >= nth:
            child.send_signal(signal.SIGKILL)
            child.wait()
            return True
        time.sleep(0.002)
    child.wait()
    return False


def _crash_and_recover(prefect_api, tree, audit, tmp_path: Path, kills: int, seed: int) -> int:
    """Kill ``kills`` runs at random points, then run until done; returns the runs killed."""
    rng = random.Random(seed)
    with AlyxTestServer(tmp_path / "alyx.sqlite") as server:
        command = _command(tree.root, server)
        env = _environment(prefect_api, server, tmp_path)
        killed = stranded = 0
        for _ in range(kills):
            child = subprocess.Popen(
                command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            # A registration sends ~6 requests per session: kill within the first few sessions.
            killed += _kill_at_request(child, server, rng.randint(1, 15))
            stranded += len(tree.flags(FlagState.CLAIMED))
        # The kills did leave claims of dead runs behind, which Prefect still thinks running.
        assert stranded > 0
        for _ in range(MAX_CLEAN_RUNS):
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            if not tree.flags():
                break
        assert done.returncode == 0, done.stdout + done.stderr
        assert tree.flags() == [], "flags left: " + ", ".join(str(f.path) for f in tree.flags())
        audit(server, tree).assert_exact()
        return killed


@pytest.mark.parametrize(
    ("kills", "size"),
    [
        pytest.param(5, (6, 10), id="5-kills"),
        pytest.param(20, (20, 30), id="20-kills", marks=pytest.mark.slow),
    ],
)
def test_killed_runs_lose_nothing(prefect_api, tree_factory, audit_server, tmp_path, kills, size):
    tree = tree_factory(*size)
    killed = _crash_and_recover(prefect_api, tree, audit_server, tmp_path, kills, seed=kills)
    assert killed == kills


_HOLD = """
import sys, time
from one_flows.flags import claim, find_flags
[flag] = find_flags(sys.argv[1])
assert claim(flag, "holder") is not None
print("claimed", flush=True)
time.sleep(60)
"""


def _holder(session: Path) -> subprocess.Popen:
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(session)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline().strip() == "claimed"
    return child


def test_a_claim_of_a_killed_process_is_reaped_though_its_run_seems_running(tmp_path):
    session = tmp_path / "subject" / "2026-03-01" / "001"
    session.mkdir(parents=True)
    (session / "create_me.flag").touch()
    child = _holder(session)
    try:
        # Alive and its run running: its claim stays.
        assert reap_stale_claims(tmp_path, lambda run: True) == []
        assert [f.state for f in find_flags(tmp_path, states={FlagState.CLAIMED})] == [
            FlagState.CLAIMED
        ]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    [reaped] = reap_stale_claims(tmp_path, lambda run: True)
    assert reaped.state is FlagState.PENDING
    assert [f.state for f in find_flags(tmp_path)] == [FlagState.PENDING]
    assert [p.name for p in session.iterdir()] == ["create_me.flag"]


def test_claims_of_this_process_end_without_leaving_lock_files(tmp_path):
    session = tmp_path / "subject" / "2026-03-01" / "001"
    session.mkdir(parents=True)
    (session / "create_me.flag").touch()
    [flag] = find_flags(tmp_path)
    held = claim(flag, "run-1")
    # Its own live claim is not taken for a dead one's.
    assert reap_stale_claims(tmp_path, lambda run: True) == []
    assert reap_stale_claims(tmp_path, lambda run: False)[0].state is FlagState.PENDING
    assert held is not None and [p.name for p in session.iterdir()] == ["create_me.flag"]
