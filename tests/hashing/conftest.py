"""Fixtures for the hashing tests: files with known content whose mtime is old enough to cache."""

import os
from collections.abc import Callable
from pathlib import Path

import pytest

HOUR_NS = 3600 * 10**9


def _age(path: Path, by_ns: int = HOUR_NS) -> None:
    then = os.stat(path).st_mtime_ns - by_ns
    os.utime(path, ns=(then, then))


@pytest.fixture
def age() -> Callable[..., None]:
    """Return ``age(path, by_ns=1 h)``: move the mtime back, out of the cache's racy window."""
    return _age


@pytest.fixture
def make_file(tmp_path: Path) -> Callable[..., Path]:
    """Return a factory writing ``data`` (or ``size`` random bytes) to a file under tmp_path."""
    counter = iter(range(10**9))

    def make(data: bytes | None = None, *, size: int = 0, name: str | None = None) -> Path:
        path = tmp_path / (name or f"file{next(counter)}.bin")
        path.write_bytes(os.urandom(size) if data is None else data)
        _age(path)
        return path

    return make
