"""Hashing on a Dask cluster through prefect-dask: the same flow gives the same registrations.

The register-new-sessions flow runs twice on identical trees, into two Alyx test servers: once
with its default thread pool and once with a ``DaskTaskRunner`` on a two-process
``LocalCluster``. Each run is a process of its own (tests/scale/dask_run.py) against the Prefect
server on PostgreSQL.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from one_flows.alyx import AlyxClient
from one_flows.sample import make_sample_tree
from one_flows.testing import AlyxTestServer

SCRIPT = Path(__file__).with_name("dask_run.py")


def _alyx() -> AlyxTestServer:
    server = AlyxTestServer().start()
    for subject in ("KS022", "KS023"):
        server.add_subject(subject, lab="cortexlab")
    server.add_subject("SWC_043", lab="hoferlab")
    return server


def _start(runner: str, root: Path, alyx: AlyxTestServer, prefect_env: dict, tmp: Path):
    """Run dask_run.py with its own digest cache, so neither run finds the other's digests."""
    env = {
        **os.environ,
        **prefect_env,
        "ALYX_LOGIN": alyx.username,
        "ALYX_PASSWORD": alyx.password,
        "ONE_FLOWS_CACHE_DIR": str(tmp / f"cache-{runner}"),
    }
    command = [sys.executable, str(SCRIPT), str(root), alyx.url, runner]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=240)
    assert process.returncode == 0, err.decode(errors="replace")[-3000:]
    return json.loads(out.decode().strip().splitlines()[-1])


def _relative(summary: dict, root: Path) -> list[dict]:
    sessions = [
        {**s, "session_path": Path(s["session_path"]).relative_to(root).as_posix(), "eid": None}
        for s in summary["sessions"]
    ]
    return sorted(sessions, key=lambda s: s["session_path"])


def _datasets(server: AlyxTestServer) -> list[tuple]:
    with AlyxClient(server.url, username=server.username, password=server.password) as alyx:
        sessions = alyx.list_all("/sessions")
        numbers = {s["id"]: (s["subject"], s["start_time"][:10], s["number"]) for s in sessions}
        return sorted(
            (
                numbers[d["session"].rstrip("/").rsplit("/", 1)[-1]],
                d["collection"],
                d["revision"],
                d["name"],
                d["hash"],
                d["file_size"],
            )
            for d in alyx.list_all("/datasets")
        )


def test_hashing_on_a_dask_cluster_registers_what_threads_register(prefect_on_postgres, tmp_path):
    roots = {runner: tmp_path / runner for runner in ("threads", "dask")}
    for root in roots.values():
        make_sample_tree(root, sessions_per_subject=1, seed=7)
    servers = {runner: _alyx() for runner in roots}
    try:
        started = {
            runner: _start(runner, root, servers[runner], prefect_on_postgres.environment, tmp_path)
            for runner, root in roots.items()
        }
        results = {runner: _finish(process) for runner, process in started.items()}
        datasets = {runner: _datasets(server) for runner, server in servers.items()}
    finally:
        for server in servers.values():
            server.close()

    on_dask = results["dask"]
    assert {t["worker"] for t in on_dask["tasks"] if t["key"].startswith("hash_file_batch")} == set(
        on_dask["workers"]
    )
    threads = _relative(results["threads"]["summary"], roots["threads"])
    assert _relative(on_dask["summary"], roots["dask"]) == threads
    assert {s["status"] for s in threads} == {"registered"}
    assert datasets["dask"] == datasets["threads"]
    assert all(d[4] for d in datasets["threads"])  # every file registered with its md5
