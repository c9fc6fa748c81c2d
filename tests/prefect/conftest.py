"""Shared Prefect fixtures: one ephemeral API and one full Prefect server for the whole session.

The ephemeral API (`prefect_test_harness`) boots in about ten seconds, so every test of the Prefect
layer shares one, with flow-run heartbeats and API logging off. Tests that need Prefect's
background services (the scheduler, event triggers) share one `prefect server start` subprocess.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    PREFECT_LOGGING_TO_API_ENABLED,
    temporary_settings,
)
from prefect.testing.utilities import prefect_test_harness

from one_flows.testing.prefect_server import PrefectServer


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """The URL of an ephemeral Prefect API that flows of this test session run against."""
    quiet = {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None, PREFECT_LOGGING_TO_API_ENABLED: False}
    with temporary_settings(quiet), prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """A started `prefect server start` with its services, its own home and database."""
    with PrefectServer(tmp_path_factory.mktemp("prefect-server")) as server:
        yield server


@pytest.fixture
def alyx(alyx_server, monkeypatch: pytest.MonkeyPatch):
    """The Alyx test server, knowing the sample tree's subjects, its login in the environment."""
    for subject in ("KS022", "KS023"):
        alyx_server.add_subject(subject, lab="cortexlab")
    alyx_server.add_subject("SWC_043", lab="hoferlab")
    monkeypatch.setenv("ALYX_LOGIN", alyx_server.username)
    monkeypatch.setenv("ALYX_PASSWORD", alyx_server.password)
    return alyx_server


@pytest.fixture
def sample_root(tmp_path: Path) -> Path:
    """A data folder of six flagged sample sessions of three subjects."""
    from one_flows.sample import make_sample_tree

    root = tmp_path / "data"
    make_sample_tree(root, sessions_per_subject=1)
    return root
