"""Fixtures of the scale-out tests: PostgreSQL, a Prefect server on it, and process workers.

PostgreSQL and the Prefect server are shared by the whole test session; workers are started by
each test (`start_worker`), as separate processes that reach the server and the Alyx test server
over loopback only, as workers on other machines would.
"""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.settings import PREFECT_API_URL, temporary_settings

from one_flows.testing import AlyxTestServer
from one_flows.testing.postgres import PostgresNotInstalled, PostgresServer
from one_flows.testing.prefect_server import PrefectServer


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server with an empty ``prefect`` database."""
    try:
        server = PostgresServer()
    except PostgresNotInstalled as exc:
        pytest.skip(f"needs PostgreSQL for Prefect's production backend: {exc}")
    with server:
        yield server


@pytest.fixture(scope="session")
def prefect_on_postgres(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrefectServer]:
    """`prefect server start` with its services, on the PostgreSQL database."""
    home = tmp_path_factory.mktemp("prefect-on-postgres")
    with PrefectServer(home, database_url=postgres.url) as server:
        yield server


@pytest.fixture
def alyx_service() -> Iterator[AlyxTestServer]:
    """An Alyx test server that knows the sample tree's subjects."""
    with AlyxTestServer() as server:
        for subject in ("KS022", "KS023"):
            server.add_subject(subject, lab="cortexlab")
        server.add_subject("SWC_043", lab="hoferlab")
        yield server


@pytest.fixture
def shared_limit(prefect_on_postgres: PrefectServer):
    """Create a global concurrency limit: ``shared_limit(name, limit, decay, active=True)``;
    returns a function that reads it back."""

    def create(name: str, limit: int, decay: float, active: bool = True):
        with get_client(sync_client=True) as client:
            client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(
                    name=name, limit=limit, slot_decay_per_second=decay, active=active
                )
            )

        def read():
            with get_client(sync_client=True) as client:
                return client.read_global_concurrency_limit_by_name(name)

        return read

    with temporary_settings({PREFECT_API_URL: prefect_on_postgres.api_url}):
        yield create


class Worker:
    """A ``prefect worker start`` process of a process work pool."""

    def __init__(self, process: subprocess.Popen[bytes], name: str, log: Path) -> None:
        self.process = process
        self.name = name
        self.log = log

    def stop(self) -> None:
        """Stop the worker; its flow runs have finished by then (tests wait for them)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def start_worker(
    prefect_on_postgres: PrefectServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator:
    """Start a process worker: ``start_worker(name, pool, queues, limit)``; all stop after
    the module.

    Each worker has its own digest cache, as on its own machine, and logs in to any Alyx test
    server as its test user through the environment its flow runs inherit.
    """
    folder = tmp_path_factory.mktemp("workers")
    workers: list[Worker] = []

    def start(name: str, pool: str, queues: list[str], limit: int = 2) -> Worker:
        env = {
            **os.environ,
            **prefect_on_postgres.environment,
            "ALYX_LOGIN": AlyxTestServer.USERNAME,
            "ALYX_PASSWORD": AlyxTestServer.PASSWORD,
            "ONE_FLOWS_CACHE_DIR": str(folder / f"cache-{name}"),
            # Poll often, so short test runs do not wait out the default 10 s between polls.
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_PREFETCH_SECONDS": "1",
        }
        command = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool]
        command += ["--type", "process", "--name", name, "--limit", str(limit)]
        for queue in queues:
            command += ["--work-queue", queue]
        log = folder / f"{name}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        worker = Worker(process, name, log)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
