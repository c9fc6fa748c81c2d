"""No leftovers (issue #13.4): the embedded Prefect API of ``one-flows register`` dies with it.

The API runs in a child process (~220 MB). When the command is SIGKILLed alone (not its process
group: a supervisor or the OOM killer ends one process), the API must not run on for good.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from one_flows.testing.server import AlyxTestServer

from .conftest import make_tree

REPO = Path(__file__).resolve().parents[2]
API_APP = "prefect.server.api.server:create_app"


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode() for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie, dead but not yet reaped, is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.2)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_embedded_api_dies_with_a_register_command_killed_alone(tmp_path):
    tree = make_tree(tmp_path / "data", n_sessions=2, n_files=2)
    with AlyxTestServer() as alyx:
        # The command stays busy in its first requests to Alyx until it is killed.
        alyx.faults.add(kind="delay", seconds=300)
        env = {
            **os.environ,
            "HOME": str(tmp_path / "home"),
            "PREFECT_HOME": str(tmp_path / "home" / ".prefect"),
            "ALYX_LOGIN": alyx.username,
            "ALYX_PASSWORD": alyx.password,
            "PYTHONPATH": str(REPO),
        }
        env.pop("PREFECT_API_URL", None)
        command = [
            str(Path(sys.executable).with_name("one-flows")),
            "register",
            str(tree.root),
            "--alyx",
            alyx.url,
        ]
        register = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        api: list[int] = []
        try:

            def api_is_up() -> bool:
                assert register.poll() is None, "the command ended before it was killed"
                api[:] = [p for p in _children(register.pid) if API_APP in _cmdline(p)]
                if not api:
                    return False
                arguments = _cmdline(api[0])
                port = arguments[arguments.index("--port") + 1]
                try:
                    return httpx.get(f"http://127.0.0.1:{port}/api/health").status_code == 200
                except httpx.HTTPError:
                    return False

            _wait_for(api_is_up, 180, "the embedded API to answer")
            _wait_for(lambda: alyx.request_count() > 0, 120, "a request from the command")
            assert register.poll() is None

            register.send_signal(signal.SIGKILL)  # the command alone, not its process group
            register.wait()

            _wait_for(lambda: not _running(api[0]), 30, "the embedded API to end with the command")
        finally:
            if register.poll() is None:
                register.kill()
                register.wait()
            for pid in api:
                if _running(pid):
                    os.kill(pid, signal.SIGKILL)
