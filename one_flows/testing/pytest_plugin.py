"""Pytest plugin: the ``alyx_server`` fixture, a started, seeded, in-memory `AlyxTestServer`."""

from collections.abc import Iterator

import pytest

from .server import AlyxTestServer


@pytest.fixture
def alyx_server(request: pytest.FixtureRequest) -> Iterator[AlyxTestServer]:
    """A started Alyx test server with the seeded starting state; closed after the test.

    It answers at once unless given a latency model (a `LatencyModel` or a preset's name) by
    indirect parametrisation: ``@pytest.mark.parametrize("alyx_server", ["alyx-3.6"],
    indirect=True)``.
    """
    server = AlyxTestServer(latency=getattr(request, "param", None)).start()
    try:
        yield server
    finally:
        server.close()
