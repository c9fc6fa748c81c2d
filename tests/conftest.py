"""Suite-wide isolation, and the Prefect APIs that the tests share.

The suite never reads or writes the home folder of the machine it runs on: ONE-api (the test
oracle) and Prefect both keep settings under it, so HOME points at a fresh temporary folder before
either is imported.

The ephemeral Prefect API (`prefect_test_harness`) boots in about ten seconds, so every test that
runs flows shares one, with flow-run heartbeats and API logging off. Tests that need Prefect's
background services (the scheduler, event triggers) share one `prefect server start` subprocess.
"""

import asyncio
import os
import tempfile
from collections.abc import Iterator

import pytest

_HOME = tempfile.mkdtemp(prefix="one-flows-home-")
os.environ["HOME"] = _HOME
os.environ["PREFECT_HOME"] = os.path.join(_HOME, ".prefect")
for _var in ("ALYX_URL", "ALYX_LOGIN", "ALYX_PASSWORD", "ALYX_TOKEN", "PREFECT_API_URL"):
    os.environ.pop(_var, None)


@pytest.fixture(autouse=True)
def _own_digest_cache_and_ledger(tmp_path_factory, monkeypatch) -> None:
    """Each test gets its own digest cache and registration ledger (``ONE_FLOWS_CACHE_DIR``).

    The ledger trusts what it recorded for an Alyx URL; test servers come and go on loopback
    ports that a later test may get again, with another database behind them.
    """
    monkeypatch.setenv("ONE_FLOWS_CACHE_DIR", str(tmp_path_factory.mktemp("one-flows-cache")))


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """The URL of an ephemeral Prefect API (a local HTTP server subprocesses can use too)."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        PREFECT_LOGGING_TO_API_ENABLED,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    quiet = {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None, PREFECT_LOGGING_TO_API_ENABLED: False}
    with temporary_settings(quiet), prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory):
    """A started `prefect server start` with its services, its own home and database."""
    from one_flows.testing.prefect_server import PrefectServer

    with PrefectServer(tmp_path_factory.mktemp("prefect-server")) as server:
        yield server


async def _runs_for_sessions(deployment_ids: list, sessions: list[str]) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    only = DeploymentFilter(id=DeploymentFilterId(any_=list(deployment_ids)))
    async with get_client() as client:
        for _ in range(240):
            runs = await client.read_flow_runs(deployment_filter=only)
            if set(sessions) <= {r.parameters.get("session_path") for r in runs}:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(3)
        return await client.read_flow_runs(deployment_filter=only)


@pytest.fixture
def runs_for_sessions():
    """``await runs_for_sessions(deployment_ids, sessions)``: the flow runs of those deployments,
    once some run has each of ``sessions`` as its ``session_path`` parameter (waiting up to two
    minutes) and three seconds more, for a run that should not have started to show up. Uses the
    Prefect API of the current settings."""
    return _runs_for_sessions
