"""Fixtures of the Prefect-layer tests; the Prefect API fixtures are in tests/conftest.py."""

import pytest


@pytest.fixture
def alyx(alyx_server, monkeypatch: pytest.MonkeyPatch):
    """The Alyx test server, knowing the sample tree's subjects, its login in the environment."""
    for subject in ("KS022", "KS023"):
        alyx_server.add_subject(subject, lab="cortexlab")
    alyx_server.add_subject("SWC_043", lab="hoferlab")
    monkeypatch.setenv("ALYX_LOGIN", alyx_server.username)
    monkeypatch.setenv("ALYX_PASSWORD", alyx_server.password)
    return alyx_server
