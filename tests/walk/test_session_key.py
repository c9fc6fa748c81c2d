"""One SessionKey: the folders that name one session are one key, whoever reads them."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from one_flows.cache import dataset_id, session_id
from one_flows.registration.client import SessionKey as RegistrationSessionKey
from one_flows.walk import SessionKey, is_session_folder, session_folders

ALIASES = ("S/2026-01-05/001", "S/2026-01-05/01", "S/2026-01-05/1", "lab/Subjects/S/2026-01-05/001")


def test_the_folders_of_one_session_are_one_key(tmp_path):
    keys = [SessionKey.from_path(tmp_path / alias) for alias in ALIASES]
    assert len(set(keys)) == 1
    assert all(key == keys[0] and hash(key) == hash(keys[0]) for key in keys)
    assert keys[0] == SessionKey.of("S", datetime.date(2026, 1, 5), 1)
    assert keys[0] != SessionKey.from_path(tmp_path / "S/2026-01-05/002")
    assert keys[0] != SessionKey.from_path(tmp_path / "S/2026-01-06/001")
    assert keys[0] != SessionKey.from_path(tmp_path / "T/2026-01-05/001")
    # Each keeps its folder's spelling, for the paths Alyx records
    assert [k.relative for k in keys] == [
        "S/2026-01-05/001",
        "S/2026-01-05/01",
        "S/2026-01-05/1",
        "S/2026-01-05/001",
    ]
    assert [k.lab for k in keys] == [None, None, None, "lab"]
    assert [k.path for k in keys] == [tmp_path / alias for alias in ALIASES]


def test_registration_and_the_cache_use_the_one_key(tmp_path):
    assert RegistrationSessionKey is SessionKey
    numbered = [SessionKey.from_path(tmp_path / alias) for alias in ALIASES[:3]]
    # The cache's ids are made from the canonical name: the same for every spelling of the
    # number, and the lab's sessions apart from those of no lab
    assert {k.canonical for k in numbered} == {"S/2026-01-05/001"}
    assert len({session_id(k) for k in numbered}) == 1
    assert session_id(numbered[0]) == session_id("S/2026-01-05/001")
    assert dataset_id(numbered[2], "alf/x.y.npy") == dataset_id("S/2026-01-05/001", "alf/x.y.npy")
    in_lab = SessionKey.from_path(tmp_path / ALIASES[3])
    assert in_lab.canonical == "lab/S/2026-01-05/001"
    assert SessionKey.of("S", "2026-01-05", "1", lab="lab").canonical == in_lab.canonical


@pytest.mark.parametrize(
    "folder",
    [
        "S/2026-01-05",
        "S/2026-01-05/001/alf",
        "S/2026-02-30/001",  # no such day
        "S/2026-01-05/0001",  # ALF numbers have three digits at most
        "S/26-01-05/001",
        "S/2026-01-05/001/T/2026-01-06/001",  # inside a session folder
        "lab/Subjects/S/2026-01-05/x",
    ],
)
def test_what_is_not_a_session_folder(tmp_path, folder):
    assert not is_session_folder(tmp_path / folder)
    with pytest.raises(ValueError, match="not a session folder"):
        SessionKey.from_path(tmp_path / folder)


def test_a_walk_of_a_root_finds_session_folders_and_does_not_enter_them(tmp_path):
    for folder in (*ALIASES, "S/2026-01-05/001/alf/T/2026-01-06/001", "notes/S/2026-02-30/001"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    found = dict(session_folders(tmp_path))
    assert sorted(Path(f).relative_to(tmp_path).as_posix() for f in found) == sorted(ALIASES)
    assert len(set(found.values())) == 1
    assert found[str(tmp_path / ALIASES[3])].lab == "lab"
