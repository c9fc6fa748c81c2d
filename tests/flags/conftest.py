"""Fixtures for the flag tests: a data root and a way to make session folders in it."""

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An empty data root."""
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


@pytest.fixture
def make_session(root: Path) -> Callable[..., Path]:
    """Make a session folder under ``root`` (with a few data files) and return its path."""

    def make(relative: str = "lab/Subjects/sub/2020-01-01/001", files: int = 2) -> Path:
        session = root / relative
        (session / "alf").mkdir(parents=True, exist_ok=True)
        for i in range(files):
            (session / "alf" / f"obj{i}.attr.npy").write_bytes(b"x" * (i + 1))
        return session

    return make
