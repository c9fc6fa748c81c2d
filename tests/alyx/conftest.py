"""Fixtures shared by the Alyx client tests."""

import pytest


class FakeClock:
    """A monotonic clock that moves only when something sleeps on it; it records the sleeps."""

    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_clock():
    return FakeClock()
