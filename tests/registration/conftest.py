"""Fixtures for the registration tests: a seeded Alyx test server, clients of it, session trees."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from one_flows.alyx import AlyxClient
from one_flows.registration import RegistrationClient
from one_flows.testing.server import AlyxTestServer

SESSION = "cortexlab/Subjects/algernon/2026-01-03/001"

# Registrable under the seeded dataset types, plus files that are not, each for its own reason.
GOOD_FILES = {
    "alf/_ibl_trials.table.pqt": b"trials" * 100,
    "alf/probe00/spikes.times.npy": b"times" * 300,
    "alf/probe00/#2026-02-01#/spikes.clusters.npy": b"clusters" * 50,
    "raw_behavior_data/_iblrig_taskData.raw.jsonable": b"{}\n" * 20,
    "alf/probe00/waveforms.templates.npy": b"w" * 64,
}
BAD_FILES = {
    "alf/foo.bar.npy": b"no dataset type",
    "notes.txt": b"not ALF",
    "alf/spikes.times.xyz": b"no data format",
}


@pytest.fixture
def server() -> Iterator[AlyxTestServer]:
    """A started, seeded Alyx test server."""
    srv = AlyxTestServer().start()
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def alyx_client(server: AlyxTestServer) -> Iterator[AlyxClient]:
    """An AlyxClient logged in to the test server as the seeded user."""
    with AlyxClient(server.url, username=server.username, password=server.password) as client:
        yield client


@pytest.fixture
def client(alyx_client: AlyxClient, tmp_path: Path) -> Iterator[RegistrationClient]:
    """A RegistrationClient of the test server, its digest cache under tmp_path."""
    rc = RegistrationClient(alyx_client, digest_cache=tmp_path / "digests.sqlite")
    try:
        yield rc
    finally:
        rc.close()


@pytest.fixture
def make_session(tmp_path: Path) -> Callable[..., Path]:
    """Return ``make(files={rel path: bytes}, session=SESSION, root=tmp_path/data)``: a tree."""

    def make(
        files: dict[str, bytes] | None = None, session: str = SESSION, root: Path | None = None
    ) -> Path:
        path = (root or tmp_path / "data") / session
        path.mkdir(parents=True, exist_ok=True)
        for rel, data in (GOOD_FILES | BAD_FILES if files is None else files).items():
            (path / rel).parent.mkdir(parents=True, exist_ok=True)
            (path / rel).write_bytes(data)
        return path

    return make


def assert_known_part(record: dict, full: dict) -> None:
    """``record``, that of a file not sent again, holds what is known of its dataset without
    asking: the keys below, valued as in ``full``, the target's record of the dataset."""
    assert set(record) == {"id", "name", "collection", "revision", "dataset_type", "file_size"}
    assert record == {key: full[key] for key in record}


def one_api_registration(server: AlyxTestServer, cache_dir: Path):
    """ONE-api's RegistrationClient, the oracle, connected to ``server``."""
    from one.api import ONE
    from one.registration import RegistrationClient as OneRegistrationClient

    one = ONE(
        base_url=server.url,
        username=server.username,
        password=server.password,
        silent=True,
        cache_dir=cache_dir,
        cache_rest=None,
    )
    return OneRegistrationClient(one)


@pytest.fixture
def one_registration(server: AlyxTestServer, tmp_path: Path):
    """ONE-api's RegistrationClient, the oracle, connected to the same test server."""
    return one_api_registration(server, tmp_path / "one_cache")
