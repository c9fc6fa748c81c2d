"""Pytest plugin: the ``alyx_server`` fixture, a started, seeded, in-memory `AlyxTestServer`."""

from collections.abc import Iterator

import pytest

from .server import AlyxTestServer


@pytest.fixture
def alyx_server() -> Iterator[AlyxTestServer]:
    """A started Alyx test server with the seeded starting state; closed after the test."""
    server = AlyxTestServer().start()
    try:
        yield server
    finally:
        server.close()
