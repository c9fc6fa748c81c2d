"""The one way every walker lists a folder (`one_flows.walk`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from one_flows.walk import (
    BROKEN_LINK,
    LINK_LEAVES_SESSION,
    LINK_LOOP,
    find_named,
    link_problem,
    list_folder,
    walk,
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder with one entry of every kind."""
    root = tmp_path / "session"
    (root / "alf").mkdir(parents=True)
    (root / "alf" / "x.y.npy").write_bytes(b"x")
    (root / "file.txt").write_bytes(b"f")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "x.y.npy").write_bytes(b"h")
    (root / ".partial.npy").write_bytes(b"p")
    (root / "to_file").symlink_to("file.txt")
    (root / "broken").symlink_to("nowhere")
    (root / "loop").symlink_to("loop")
    (root / "to_folder").symlink_to("alf", target_is_directory=True)
    (root / "out").symlink_to(tmp_path, target_is_directory=True)
    os.mkfifo(root / "fifo")
    return root


def _names(entries: list[os.DirEntry[str]]) -> list[str]:
    return sorted(e.name for e in entries)


def test_a_folder_is_listed_by_the_policy(folder: Path) -> None:
    listing = list_folder(str(folder))
    assert _names(listing.folders) == ["alf"]
    assert _names(listing.files) == ["file.txt"]
    assert _names(listing.links) == ["broken", "loop", "to_file"]
    assert _names(listing.others) == ["fifo", "out", "to_folder"]
    assert listing.rel == "" and listing.mtime_ns is None
    with_hidden = list_folder(str(folder), hidden=True, mtime=True)
    assert _names(with_hidden.folders) == [".hidden", "alf"]
    assert ".partial.npy" in _names(with_hidden.files)
    assert with_hidden.mtime_ns == folder.stat().st_mtime_ns


def test_a_walk_enters_folders_only(folder: Path) -> None:
    walked = {listing.rel: _names(listing.files + listing.links) for listing in walk(folder)}
    assert walked == {"": ["broken", "file.txt", "loop", "to_file"], "alf": ["x.y.npy"]}
    pruned = []
    for listing in walk(folder, hidden=True):
        pruned.append(listing.rel)
        listing.folders[:] = [f for f in listing.folders if f.name != "alf"]
    assert pruned == ["", ".hidden"]


def test_a_folder_that_cannot_be_listed_goes_to_the_handler(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(FileNotFoundError):
        list(walk(missing))
    told = []
    assert list(walk(missing, on_unreadable=lambda path, error: told.append((path, error)))) == []
    assert [(path, type(error)) for path, error in told] == [(str(missing), FileNotFoundError)]


def test_find_named_finds_entries_of_any_kind_by_the_policy(folder: Path) -> None:
    (folder / "alf" / "filex").mkdir()
    found = sorted(
        (Path(where).relative_to(folder).as_posix(), entry.name)
        for where, entry in find_named(folder, ("f", "to_"))
    )
    assert found == [
        (".", "fifo"),
        (".", "file.txt"),
        (".", "to_file"),
        (".", "to_folder"),
        ("alf", "filex"),
    ]


def test_which_links_are_read(folder: Path, tmp_path: Path) -> None:
    (tmp_path / "secret.npy").write_bytes(b"s")
    (folder / "alf" / "leaves.npy").symlink_to(tmp_path / "secret.npy")
    (folder / "alf" / "through.npy").symlink_to("../out/secret.npy")
    problems = {
        name: link_problem(folder / name, folder)
        for name in ("to_file", "broken", "loop", "alf/leaves.npy", "alf/through.npy")
    }
    assert problems == {
        "to_file": None,
        "broken": BROKEN_LINK,
        "loop": LINK_LOOP,
        "alf/leaves.npy": LINK_LEAVES_SESSION,
        "alf/through.npy": LINK_LEAVES_SESSION,
    }
