"""Measure what limits one Prefect server and one Alyx here: the numbers of docs/scaling.md.

    .venv/bin/python tests/scale/measure.py {sqlite,postgresql,alyx} [--tasks N] [--flows N]

One backend a process: Prefect's client keeps one events connection a process, to the first
server it met. For a Prefect server on SQLite or on PostgreSQL (started for it): task runs a
second (one flow run mapping no-op tasks, and until the server has recorded them all), flow runs
a second (small flow runs one after the other, as a worker's runs reach the API), flow runs
created a second (``run_deployment(timeout=0)``), and database bytes per task and flow run. For
Alyx: requests a second one `AlyxClient` reaches on the test server from 8 threads, without its
client-side rate limit. Prints rows of a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings

from one_flows.alyx import AlyxClient
from one_flows.testing import AlyxTestServer
from one_flows.testing.postgres import PostgresServer
from one_flows.testing.prefect_server import PrefectServer


@task
def noop(i: int) -> int:
    return i


@flow
def many_tasks(n: int) -> int:
    return len(noop.map(range(n)).result())


@flow
def tiny() -> None:
    return None


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _task_runs_recorded(flow_run_id: str) -> int:
    only = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    with get_client(sync_client=True) as client:
        body = {"flow_runs": only.model_dump(mode="json")}
        return int(client.request("POST", "/task_runs/count", json=body).json())


def _wait_recorded(flow_run_id: str, n: int, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while _task_runs_recorded(flow_run_id) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the server recorded fewer than {n} task runs in {timeout} s")
        time.sleep(0.2)


def measure_prefect(server: PrefectServer, size: Callable[[], int], n_tasks: int, n_flows: int):
    """Rates of one Prefect server, and its database growth per run."""
    with temporary_settings({PREFECT_API_URL: server.api_url}):
        tiny()  # the first run registers the flow; not timed
        before = size()
        start = time.perf_counter()
        state = many_tasks(n_tasks, return_state=True)
        ran = time.perf_counter() - start
        _wait_recorded(str(state.state_details.flow_run_id), n_tasks)
        recorded = time.perf_counter() - start
        flows = _timed(lambda: [tiny() for _ in range(n_flows)])
        deployment = tiny.to_deployment("measure")
        deployment.apply()
        created = _timed(
            lambda: [run_deployment("tiny/measure", timeout=0) for _ in range(n_flows)]
        )
        time.sleep(5)  # let the server write what it buffers before the size is read
        grown = size() - before
    return {
        "task runs/s (client)": n_tasks / ran,
        "task runs/s (recorded)": n_tasks / recorded,
        "flow runs/s (sequential)": n_flows / flows,
        "flow runs created/s": n_flows / created,
        "kB per run (task or flow)": grown / (n_tasks + 2 * n_flows + 1) / 1024,
    }


def _sqlite_size(path: Path) -> Callable[[], int]:
    def size() -> int:
        with sqlite3.connect(path) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return path.stat().st_size

    return size


def _postgres_size(postgres: PostgresServer) -> Callable[[], int]:
    import asyncpg

    async def query() -> int:
        connection = await asyncpg.connect(postgres.url.replace("+asyncpg", ""))
        try:
            return await connection.fetchval("SELECT pg_database_size(current_database())")
        finally:
            await connection.close()

    return lambda: asyncio.run(query())


def measure_alyx(n_requests: int, threads: int = 8) -> dict[str, float]:
    """Requests a second one client reaches on the Alyx test server."""
    with AlyxTestServer() as server:
        server.add_subject("KS022")
        with AlyxClient(
            server.url,
            username=server.username,
            password=server.password,
            max_requests_per_minute=None,
        ) as alyx:
            alyx.get("/subjects/KS022")  # log in; not timed
            with ThreadPoolExecutor(threads) as pool:
                seconds = _timed(
                    lambda: list(pool.map(lambda _: alyx.get("/subjects/KS022"), range(n_requests)))
                )
    return {f"Alyx test server, GET requests/s ({threads} threads)": n_requests / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backend", choices=["sqlite", "postgresql", "alyx"])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--flows", type=int, default=40)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    if args.backend == "alyx":
        results = measure_alyx(args.requests)
    elif args.backend == "sqlite":
        with PrefectServer() as server:
            size = _sqlite_size(server.home / "prefect.db")
            results = measure_prefect(server, size, args.tasks, args.flows)
    else:
        with PostgresServer() as postgres, PrefectServer(database_url=postgres.url) as server:
            results = measure_prefect(server, _postgres_size(postgres), args.tasks, args.flows)
    for name, value in results.items():
        print(f"| {name} | {args.backend} | {value:.1f} |")


if __name__ == "__main__":
    main()
