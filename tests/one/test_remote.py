"""Our One on an Alyx (the test server, over real HTTP): search, list, load with downloads from
the repository's data server, resumed transfers, checked files, basic auth, and the modes."""

from __future__ import annotations

import datetime
import logging
import uuid
from pathlib import Path

import numpy as np
import pytest
from one.api import One as OneApiOne

from one_flows.alyx import AlyxClient
from one_flows.one import (
    ALFObjectNotFound,
    DownloadAuthError,
    DownloadMismatch,
    DownloadProgress,
    One,
    SessionDataInfo,
)

FIRST = "cortexlab/Subjects/algernon/2026-07-04/001"
SPIKES = 11  # spikes per probe in the remote sessions
SECOND = "cortexlab/Subjects/algernon/2026-07-05/001"


def connect(server, cache: Path, **kwargs) -> One:
    return One(
        base_url=server.url,
        username=server.username,
        password=server.password,
        cache_dir=cache,
        **kwargs,
    )


def files_under(folder: Path) -> list[str]:
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def test_search_sends_alyx_filters_and_never_lists_every_session(remote_lab, tmp_path):
    server, _, eids = remote_lab
    one = connect(server, tmp_path / "cache")
    both = [eids[SECOND], eids[FIRST]]  # newest first
    before = server.request_count("GET", "/sessions")
    assert one.search(subject="algernon") == both
    assert one.search(subject="Algernon") == both  # case aside...
    assert one.search(subject="alger") == []  # ...whole names, as Alyx matches them
    assert one.search(users="test_user", lab="cortexlab") == both
    assert one.search(date_range="2026-07-04") == [eids[FIRST]]
    assert one.search(date=["2026-07-05", None], subj="algernon") == [eids[SECOND]]
    assert one.search(projects="brainwide") == [eids[FIRST]]
    assert one.search(task_protocol="training") == [eids[SECOND]]
    assert one.search(dataset_types=["spikes.amps", "trials.probabilityLeft"]) == [eids[FIRST]]
    assert one.search(datasets=["spikes.times.npy", "_ibl_trials.probabilityLeft.npy"]) == both
    assert one.search(datasets="spikes.amps.npy", number=1) == [eids[FIRST]]
    assert one.search(location="cortexlab_rig1") == []
    assert server.request_count("GET", "/sessions") - before == 12  # one request per search
    eids_found, records = one.search(subject="algernon", details=True)
    assert eids_found == both
    assert records[1]["date"] == datetime.date(2026, 7, 4)
    assert records[1]["projects"] == ["ibl_neuropixel_brainwide_01"]
    assert {"id", "subject", "start_time", "number", "lab", "url", "task_protocol"} <= set(
        records[0]
    )
    with pytest.raises(ValueError, match="Invalid search term"):
        one.search(colour="red")
    assert server.request_count("GET", "/sessions") - before == 13


def test_listings_share_one_session_read(remote_lab, remote_sessions, tmp_path):
    server, _, eids = remote_lab
    one = connect(server, tmp_path / "cache")
    eid = eids[FIRST]
    assert one.list_datasets(eid) == sorted(
        [*remote_sessions[FIRST]["files"], *remote_sessions[FIRST]["revised"]]
    )
    assert one.list_datasets(eid, collection="alf/probe01") == [
        "alf/probe01/spikes.clusters.npy",
        "alf/probe01/spikes.depths.npy",
        "alf/probe01/spikes.times.npy",
    ]
    assert one.list_datasets(eid, "spikes.times*", revision="2026-07-05") == [
        "alf/probe00/#2026-07-05#/spikes.times.npy"
    ]
    defaults = one.list_datasets(eid, collection="alf/probe00", default_revisions_only=True)
    assert "alf/probe00/spikes.times.npy" not in defaults
    assert "alf/probe00/#2026-07-05#/spikes.times.npy" in defaults
    frame = one.list_datasets(eid, details=True)
    assert list(frame.columns) == [
        "rel_path",
        "file_size",
        "hash",
        "exists",
        "qc",
        "default_revision",
    ]
    assert frame.index.name == "id" and frame["exists"].all()
    assert one.list_collections(eid) == ["alf", "alf/probe00", "alf/probe01"]
    assert one.list_revisions(eid) == ["", "2026-07-05"]
    assert server.request_count("GET", f"/sessions/{eid}") == 1
    assert one.list_datasets(str(uuid.uuid4()).replace("4", "4")) == []


def test_details_and_paths(remote_lab, tmp_path):
    server, _, eids = remote_lab
    one = connect(server, tmp_path / "cache")
    eid = eids[FIRST]
    summary = one.get_details(eid)
    assert summary["subject"] == "algernon" and summary["number"] == 1
    assert summary["date"] == datetime.date(2026, 7, 4)
    assert summary["projects"] == "ibl_neuropixel_brainwide_01"
    assert summary["local_path"] == tmp_path / "cache" / FIRST
    full = one.get_details(eid, full=True)
    assert full["id"] == eid and len(full["data_dataset_session_related"]) == 9
    assert one.eid2path(eid) == tmp_path / "cache" / FIRST
    assert one.path2eid(tmp_path / "elsewhere" / FIRST / "alf") == eid
    assert one.to_eid("algernon/2026-07-05/001") == eids[SECOND]
    assert one.to_eid({"subject": "algernon", "date": "2026-07-05", "number": 1}) == eids[SECOND]
    assert one.path2eid("algernon/2026-07-06/001") is None
    assert one.eid2path(str(uuid.uuid4())) is None


def test_older_tutorial_calls(remote_lab, remote_sessions, tmp_path):
    server, _, eids = remote_lab
    one = connect(server, tmp_path / "cache")
    eid = eids[FIRST]
    types = one.list(eid)
    assert types == sorted(
        {"trials.probabilityLeft", "trials.intervals", "spikes.times", "spikes.clusters"}
        | {"spikes.amps", "spikes.depths"}
    )
    details = one.list(eid, details=True)
    assert set(details["dataset_type"]) == set(types)
    assert all(url.startswith(server.url + "/data/cortexlab/Subjects/") for url in details.data_url)
    assert "spikes.times" in one.list(None, "dataset-types") and len(one.list()) == 121
    assert one.list(None, "users") == ["test_user"]
    assert one.list(None, "subjects") == ["algernon"]
    assert one.list(None, "labs") == ["cortexlab", "hoferlab"]
    info = one.load(
        eid, dataset_types=["trials.probabilityLeft", "nothing.there"], dclass_output=True
    )
    assert isinstance(info, SessionDataInfo)
    np.testing.assert_allclose(
        info.data[0],
        remote_sessions[FIRST]["files"][
            info.local_path[0].relative_to(tmp_path / "cache" / FIRST).as_posix()
        ],
    )
    assert info.eid == [eid, eid] and info.dataset_type[1] == "nothing.there"
    assert info.url[0].endswith(f"_ibl_trials.probabilityLeft.{info.dataset_id[0]}.npy")
    assert info.url[1] == info.local_path[1] == info.dataset_id[1] == info.data[1] == []


def test_loads_download_once_into_ones_layout(remote_lab, remote_sessions, tmp_path):
    server, _, eids = remote_lab
    cache = tmp_path / "cache"
    seen: list[DownloadProgress] = []
    one = connect(server, cache, progress=seen.append)
    eid = eids[FIRST]
    spikes = one.load_object(eid, "spikes", collection="alf/probe00")
    np.testing.assert_array_equal(spikes.times, np.arange(SPIKES) / 20)  # the default revision
    assert sorted(spikes) == ["amps", "clusters", "times"]
    assert files_under(cache) == sorted(
        [
            f"{FIRST}/alf/probe00/#2026-07-05#/spikes.times.npy",
            f"{FIRST}/alf/probe00/spikes.amps.npy",
            f"{FIRST}/alf/probe00/spikes.clusters.npy",
            "datasets.pqt",
            "sessions.pqt",
        ]
    )
    assert seen[-1].files_done == seen[-1].files_total == 3 and seen[-1].fraction == 1.0
    older = one.load_dataset(eid, "spikes.times", collection="alf/probe00", revision="2026-07-04")
    np.testing.assert_array_equal(older, np.arange(SPIKES) / 10)
    data, records = one.load_datasets(
        eid, ["_ibl_trials.probabilityLeft.npy", "nothing.npy"], assert_present=False
    )
    assert data[1] is records[1] is None and records[0]["rel_path"].endswith("probabilityLeft.npy")
    requests_before = server.request_count()
    again = one.load_object(eid, "spikes", collection="alf/probe00")  # warm: no request at all
    assert server.request_count() == requests_before
    np.testing.assert_array_equal(again.amps, spikes.amps)
    with pytest.raises(ALFObjectNotFound, match="wheel"):
        one.load_object(eid, "wheel")

    # Both local modes, ours and ONE-api's, read the same folder without a network.
    server.stop()
    ours = One(cache)
    assert ours.list_datasets(eid, collection="alf/probe00") == one.list_datasets(
        eid, collection="alf/probe00"
    )
    np.testing.assert_array_equal(
        ours.load_object(eid, "spikes", collection="alf/probe00").amps, spikes.amps
    )
    theirs = OneApiOne(cache_dir=cache, mode="local")
    their_spikes = theirs.load_object(eid, "spikes", collection="alf/probe00")
    np.testing.assert_array_equal(their_spikes["times"], spikes.times)
    assert [str(e) for e in theirs.search(subject="algernon")] == [eid]


def test_a_dropped_transfer_is_resumed_by_range(remote_lab, remote_sessions, tmp_path):
    server, _, eids = remote_lab
    server.faults.add(path="/data/", kind="truncate", times=1)
    one = connect(server, tmp_path / "cache")
    depths = one.load_dataset(eids[FIRST], "spikes.depths.npy")
    np.testing.assert_array_equal(
        depths, remote_sessions[FIRST]["files"]["alf/probe01/spikes.depths.npy"]
    )
    asked = [(path, ranged) for path, ranged, _ in server.files.requests]
    assert len(asked) == 2 and asked[0][1] is None
    assert asked[1][0] == asked[0][0] and asked[1][1].startswith("bytes=")
    assert int(asked[1][1][len("bytes=") : -1]) > 0  # from where the first transfer stopped
    assert not list((tmp_path / "cache").rglob(".*.part"))


def test_a_part_left_by_an_interrupted_process_is_resumed(remote_lab, tmp_path):
    server, root, eids = remote_lab
    one = connect(server, tmp_path / "cache")
    rel = "alf/probe00/spikes.clusters.npy"
    content = (root / FIRST / rel).read_bytes()
    target = tmp_path / "cache" / FIRST / rel
    target.parent.mkdir(parents=True)
    (target.parent / f".{target.name}.part").write_bytes(content[:50])
    one.load_dataset(eids[FIRST], rel)
    assert target.read_bytes() == content
    assert server.files.requests[-1][1:] == ("bytes=50-", 206)


def test_a_corrupt_download_is_an_error_naming_the_file_and_is_deleted(remote_lab, tmp_path):
    server, _, eids = remote_lab
    server.faults.add(path="/data/", kind="corrupt", times=1)
    one = connect(server, tmp_path / "cache")
    with pytest.raises(DownloadMismatch, match=r"spikes\.amps\.npy .* md5 .*deleted") as caught:
        one.load_dataset(eids[FIRST], "spikes.amps.npy")
    assert caught.value.path.name == "spikes.amps.npy"
    assert files_under(tmp_path / "cache") == [] and not list((tmp_path / "cache").rglob("*.part"))
    one.load_dataset(eids[FIRST], "spikes.amps.npy")  # the next try gets a good copy
    assert files_under(tmp_path / "cache")[0].endswith("spikes.amps.npy")


def test_data_server_basic_auth_and_no_secret_in_logs(
    remote_lab, remote_sessions, tmp_path, caplog, monkeypatch
):
    server, root, eids = remote_lab
    server.serve_files(root, username="reader", password="Dat4-Secret")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(DownloadAuthError, match="401") as refused:
        connect(server, tmp_path / "a").load_dataset(eids[FIRST], "spikes.amps.npy")
    assert refused.value.status == 401
    wrong = connect(server, tmp_path / "b", data_login="reader", data_password="nope")
    with pytest.raises(DownloadAuthError):
        wrong.load_dataset(eids[FIRST], "spikes.amps.npy")
    monkeypatch.setenv("HTTP_DATA_SERVER_LOGIN", "reader")
    monkeypatch.setenv("HTTP_DATA_SERVER_PWD", "Dat4-Secret")
    good = connect(server, tmp_path / "c")
    assert good.load_dataset(eids[FIRST], "spikes.amps.npy").shape == (SPIKES,)
    assert "Dat4-Secret" not in caplog.text + repr(good) + repr(good._remote.downloader)
    assert "Dat4-Secret" not in str(refused.value)


def test_modes_local_remote_and_auto(remote_lab, tmp_path):
    server, _, eids = remote_lab
    cache = tmp_path / "cache"
    connect(server, cache).load_object(eids[FIRST], "trials")
    before = server.request_count()
    auto = connect(server, cache, mode="auto")
    trials = auto.load_object(eids[FIRST], "trials")  # in the cache: no request
    assert sorted(trials) == ["intervals", "probabilityLeft"]
    assert server.request_count() == before
    auto.load_object(eids[FIRST], "spikes", collection="alf/probe01")  # cache lacks the files
    assert server.request_count("GET", "/data/") > 0
    assert auto.list_datasets(eids[SECOND])  # a session the cache lacks: Alyx answers
    local = connect(server, cache, mode="local")
    assert local.list_datasets(eids[SECOND]) == []
    with pytest.raises(ALFObjectNotFound, match="cache tables"):
        local.load_object(eids[SECOND], "spikes")
    assert local.search(subject="algernon") == [eids[FIRST]]
    remote = connect(server, cache)
    assert remote.list_datasets(eids[SECOND], query_type="local") == []
    assert remote.list_datasets(eids[SECOND], query_type="remote")
    with pytest.raises(ValueError, match=r"cache tables .* hold no users"):
        local.search(users="test_user")
    assert auto.search(subject="algernon") == [eids[SECOND], eids[FIRST]]
    server.stop()  # Alyx unreachable: auto searches what the cache holds
    assert auto.search(subject="algernon") == [eids[FIRST]]


def test_one_takes_a_client_a_block_or_the_environment(remote_lab, tmp_path, monkeypatch):
    server, _, eids = remote_lab
    client = AlyxClient(server.url, username=server.username, password=server.password)
    assert One(alyx=client, cache_dir=tmp_path).search(subject="algernon")

    class Block:  # the interface of one_flows.blocks.AlyxCredentials
        def get_client(self) -> AlyxClient:
            return client

    assert One(alyx=Block(), cache_dir=tmp_path).alyx is client
    monkeypatch.setenv("ALYX_URL", server.url)
    monkeypatch.setenv("ALYX_LOGIN", server.username)
    monkeypatch.setenv("ALYX_PASSWORD", server.password)
    monkeypatch.setenv("HOME", str(tmp_path))
    from_env = One(mode="remote")
    assert from_env.cache_dir == tmp_path / "Downloads" / "ONE" / server.url.split("//")[1].replace(
        ":", "_"
    )
    assert from_env.to_eid(FIRST) == eids[FIRST]
    with pytest.raises(ValueError, match="mode"):
        One(tmp_path, mode="offline")


def test_cli_download_shows_progress_and_fetches(remote_lab, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from one_flows.cli import app

    server, _, eids = remote_lab
    monkeypatch.setenv("ALYX_LOGIN", server.username)
    monkeypatch.setenv("ALYX_PASSWORD", server.password)
    cache = tmp_path / "cache"
    options = ["--alyx", server.url, "--cache-dir", str(cache)]
    result = CliRunner().invoke(app, ["download", eids[FIRST], "--object", "trials", *options])
    assert result.exit_code == 0, result.output
    assert "downloading" in result.output and "424/424 bytes" in result.output
    assert f"2 files in {cache / FIRST}" in result.output.replace("\n", "")
    assert files_under(cache / FIRST) == [
        "alf/_ibl_trials.intervals.npy",
        "alf/_ibl_trials.probabilityLeft.npy",
    ]
    server.faults.add(path="/data/", kind="corrupt")
    result = CliRunner().invoke(app, ["download", eids[SECOND], *options])
    assert result.exit_code == 1 and "the copy was deleted" in result.output
