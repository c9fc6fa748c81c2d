"""Bad input gets a clear error naming the session and the file, and harms nothing else."""

from __future__ import annotations

import errno
from pathlib import Path

import pandas as pd
import pytest

import one_flows.cache as cache
import one_flows.hashing as hashing
from one_flows.alf import ALFError
from one_flows.alyx import AlyxClient, AlyxRequestError
from one_flows.flags import FlagContentError, FlagError, FlagUnreadable, find_flags, read_flag
from one_flows.registration import (
    AMBIGUOUS_TYPE,
    NO_DATASET_TYPE,
    NOT_ALF,
    MemberNotFound,
    Outcome,
    RegistrationClient,
    SubjectNotFound,
)

GOOD = ("alf/spikes.times.npy", "alf/spikes.amps.npy")


def _session(root: Path, subject: str = "algernon", files=GOOD) -> Path:
    session = root / "cortexlab" / "Subjects" / subject / "2026-03-01" / "001"
    for rel in files:
        (session / rel).parent.mkdir(parents=True, exist_ok=True)
        (session / rel).write_bytes(rel.encode())
    return session


@pytest.fixture
def client(alyx_server):
    alyx = AlyxClient(alyx_server.url, username=alyx_server.username, password=alyx_server.password)
    with alyx:
        yield RegistrationClient(alyx, digest_cache=False)


def _outcomes(report) -> dict[str, tuple[Outcome, str | None]]:
    return {f.rel_path: (f.status, f.reason) for f in report.files}


def test_files_that_cannot_be_registered_are_skipped_with_the_reason(client, alyx_server, tmp_path):
    alyx_server.add_dataset_type("twice.a", filename_pattern="*.both.*")
    alyx_server.add_dataset_type("twice.b", filename_pattern="twice.*")
    bad = ("alf/notes.txt", "alf/nothing.known.npy", "alf/twice.both.npy")
    session = _session(tmp_path, files=GOOD + bad)
    report = client.register_session(session)
    outcomes = _outcomes(report)
    assert outcomes["alf/notes.txt"] == (Outcome.SKIPPED, NOT_ALF)
    assert outcomes["alf/nothing.known.npy"] == (Outcome.SKIPPED, NO_DATASET_TYPE)
    assert outcomes["alf/twice.both.npy"] == (Outcome.SKIPPED, AMBIGUOUS_TYPE)
    assert {outcomes[g][0] for g in GOOD} == {Outcome.CREATED}
    assert all(f.path.is_relative_to(session) for f in report.files)


def test_invalid_session_folders_are_refused_naming_them(client, tmp_path):
    for bad in ("algernon/2026-3-1/001", "algernon/2026-03-01/one", "just/a/folder/x"):
        folder = tmp_path / bad
        folder.mkdir(parents=True)
        with pytest.raises((ALFError, ValueError), match=r"algernon|folder"):
            client.register_session(folder)


@pytest.mark.parametrize(
    ("fields", "error", "named"),
    [
        ({"users": ["nobody"]}, MemberNotFound, "nobody"),
        ({"lab": "nolab"}, ValueError, "nolab"),
        ({"projects": ["noproject"]}, AlyxRequestError, "noproject"),
        ({"procedures": ["noprocedure"]}, AlyxRequestError, "noprocedure"),
        ({"start_time": "2026-03-02T10:00:00"}, ValueError, "2026-03-02"),
    ],
)
def test_unknown_members_and_bad_fields_are_refused_naming_them(
    client, alyx_server, tmp_path, fields, error, named
):
    session = _session(tmp_path)
    with pytest.raises(error, match=named):
        client.register_session(session, **fields)
    assert alyx_server.request_count("POST", "/register-file") == 0


def test_an_unknown_subject_is_refused_naming_it(client, alyx_server, tmp_path):
    with pytest.raises(SubjectNotFound, match="nobody_mouse"):
        client.register_session(_session(tmp_path, subject="nobody_mouse"))
    assert alyx_server.request_count("POST", "/sessions") == 0


def test_unreadable_and_growing_files_are_skipped_and_the_rest_registered(
    client, tmp_path, monkeypatch
):
    session = _session(
        tmp_path, files=(*GOOD, "alf/spikes.clusters.npy", "alf/clusters.depths.npy")
    )
    unreadable = session / "alf" / "spikes.clusters.npy"
    growing = session / "alf" / "clusters.depths.npy"
    real_open, real_digest = open, hashing._digest_stream

    def deny(file, *args, **kwargs):
        if Path(file) == unreadable:
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    def grow_while_reading(stream, *args, **kwargs):
        result = real_digest(stream, *args, **kwargs)
        if stream.name == str(growing):
            with real_open(growing, "ab") as more:
                more.write(b"still copying")
        return result

    monkeypatch.setattr("builtins.open", deny)
    monkeypatch.setattr(hashing, "_digest_stream", grow_while_reading)
    outcomes = _outcomes(client.register_session(session))
    assert outcomes["alf/spikes.clusters.npy"][0] is Outcome.SKIPPED
    assert "ermission" in outcomes["alf/spikes.clusters.npy"][1]
    assert outcomes["alf/clusters.depths.npy"] == (Outcome.SKIPPED, hashing.CHANGED)
    assert {outcomes[g][0] for g in GOOD} == {Outcome.CREATED}


def test_a_broken_symlink_listed_is_skipped(client, tmp_path):
    session = _session(tmp_path)
    broken = session / "alf" / "spikes.clusters.npy"
    broken.symlink_to(tmp_path / "gone.npy")
    [outcome] = client.register_session(session, file_list=[broken]).files
    assert outcome.status is Outcome.SKIPPED and "broken" in outcome.reason


@pytest.mark.parametrize(
    ("text", "error", "said"),
    [
        ("alf/../../../etc/passwd\n", FlagContentError, "'..'"),
        ("/etc/passwd\n", FlagContentError, "absolute"),
        ("C:\\data\\x.npy\n", FlagContentError, "absolute"),
        (b"\xff\xfe\x00bad", FlagUnreadable, "UTF-8"),
    ],
)
def test_bad_flags_are_refused_naming_the_flag_and_line(tmp_path, text, error, said):
    session = _session(tmp_path)
    flag = session / "create_me.flag"
    flag.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(error) as refused:
        read_flag(flag)
    assert str(flag) in str(refused.value) and said in str(refused.value)


def test_an_empty_flag_means_every_file(tmp_path):
    session = _session(tmp_path)
    (session / "create_me.flag").touch()
    assert read_flag(session / "create_me.flag").files is None


def test_a_flag_whose_session_folder_is_gone_is_reported(tmp_path):
    session = _session(tmp_path)
    (session / "create_me.flag").touch()
    [flag] = find_flags(tmp_path)
    for path in sorted(session.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    session.rmdir()
    with pytest.raises(FlagError, match=str(session)):
        read_flag(flag)


def test_a_full_disk_while_writing_cache_tables_leaves_the_old_tables(tmp_path, monkeypatch):
    frame = pd.DataFrame({"id": ["a"], "x": [1]}).set_index("id")
    path = cache.files.write_parquet_atomic(frame, tmp_path / "sessions.pqt", {"v": 1})
    before = path.read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache.files.pq, "write_table", full)
    bigger = pd.DataFrame({"id": ["a", "b"], "x": [1, 2]}).set_index("id")
    with pytest.raises(OSError, match="No space left"):
        cache.files.write_parquet_atomic(bigger, path, {"v": 2})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["sessions.pqt"]
    assert pd.read_parquet(path).equals(frame)
