"""`one-flows register` with nothing to register answers at once: it says so, ends with 0, and
neither imports Prefect nor starts or asks a Prefect API."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from one_flows import flags
from one_flows.cli import _nothing_ready
from one_flows.sample import make_sample_tree

ONE_FLOWS = Path(sys.executable).with_name("one-flows")

# Runs the command in this interpreter and reports which Prefect modules it imported.
_PROBE = """
import json, sys
from one_flows.cli import app
code = None
try:
    app(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
prefect = sorted(m for m in sys.modules if m.split(".")[0] == "prefect")
print(json.dumps({"code": code, "prefect": prefect}))
"""


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "HOME": str(tmp_path / "home"), "COLUMNS": "300", **extra}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    if "PREFECT_API_URL" not in extra:
        env.pop("PREFECT_API_URL", None)
    return env


def _register(tmp_path: Path, root: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ONE_FLOWS), "register", str(root), *args],
        env=_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _no_embedded_api(tmp_path: Path) -> None:
    home = tmp_path / "prefect-home"
    assert not (home / "embedded-api.log").exists()
    assert not (home / "prefect.db").exists()


def test_no_flag_at_all_is_said_and_starts_no_api(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    done = _register(tmp_path, root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Nothing to register under {root}: no session is flagged (create_me.flag)" in (
        done.stdout
    )
    assert "Prefect" not in done.stdout
    _no_embedded_api(tmp_path)


def test_flags_not_yet_quiet_are_said_and_left_waiting(tmp_path: Path) -> None:
    root = tmp_path / "data"
    tree = make_sample_tree(root, sessions_per_subject=1)
    done = _register(tmp_path, root, "--quiet-seconds", "3600")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(tree.sessions)} flagged session(s) changed within the last 3600 s" in (
        done.stdout
    )
    assert len(list(flags.find_flags(root))) == len(tree.sessions)  # still pending, unclaimed
    _no_embedded_api(tmp_path)


def test_a_configured_prefect_server_is_not_contacted(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        done = _register(tmp_path, root, PREFECT_API_URL=f"http://127.0.0.1:{port}/api")
        server.setblocking(False)
        with pytest.raises(BlockingIOError):
            server.accept()  # nobody connected
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Nothing to register" in done.stdout


def test_prefect_is_not_imported(tmp_path: Path) -> None:
    root = tmp_path / "data"
    make_sample_tree(root, sessions_per_subject=1)
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE, "register", str(root), "--quiet-seconds", "3600"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(probe.stdout.splitlines()[-1])
    assert report == {"code": 0, "prefect": []}, probe.stderr


def test_quarantined_and_done_flags_are_nothing_to_do(tmp_path: Path) -> None:
    root = tmp_path / "data"
    tree = make_sample_tree(root, sessions_per_subject=1)
    first, second, *rest = (root / s for s in tree.sessions)
    (first / "create_me.flag").rename(first / "create_me.flag.quarantined")
    (second / "create_me.flag").rename(second / "create_me.flag.done")
    for session in rest:
        (session / "create_me.flag").unlink()
    assert _nothing_ready(root, "create_me.flag", 0.0)


def test_a_ready_flag_a_failed_flag_or_a_claim_is_work(tmp_path: Path) -> None:
    """Ready and failed flags are claimable; a claim may be a dead run's, which the flow takes
    back: each sends the command on to the flow."""
    root = tmp_path / "data"
    make_sample_tree(root, sessions_per_subject=1)
    assert not _nothing_ready(root, "create_me.flag", 0.0)
    pending = list(flags.find_flags(root))
    claim = flags.claim(pending[0], "run-1")
    assert claim is not None
    for other in pending[1:]:
        other.path.unlink()
    assert not _nothing_ready(root, "create_me.flag", 3600.0)
    flags.fail(claim, "a reason")
    assert [f.state for f in flags.find_flags(root)] == [flags.FlagState.FAILED]
    assert not _nothing_ready(root, "create_me.flag", 0.0)
