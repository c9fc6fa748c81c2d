"""ONE-api's own remote ONE, pointed at the test server, answers the tutorial's calls as against a
real Alyx (search, list, load with a download from the test data server), and our One on the
same server gives the same answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from one.api import ONE

from one_flows.alyx.settings import one_params_key
from one_flows.one import One

FIRST = "cortexlab/Subjects/algernon/2026-07-04/001"
LOGIN, PASSWORD = "reader", "Dat4-Secret"

SEARCHES = [
    {"subject": "algernon"},
    {"subject": "Algernon"},
    {"subject": "alger"},
    {"users": ["test_user"]},
    {"date_range": ["2026-07-04", "2026-07-04"]},
    {"date_range": "2026-07-05", "subject": "algernon"},
    {"dataset_types": "spikes.amps"},
    {"dataset_types": ["spikes.times", "trials.probabilityLeft"]},
    {"datasets": "spikes.amps.npy"},
    {"datasets": ["spikes.times.npy", "_ibl_trials.probabilityLeft.npy"]},
    {"lab": "cortexlab"},
    {"projects": "brainwide"},
    {"task_protocol": "ephys"},
    {"number": 1},
    {},
]


@pytest.fixture
def both(remote_lab, tmp_path, monkeypatch):
    """(ONE-api's remote ONE, our One) on the same server, each with its own cache folder.

    ONE-api's settings file points its ``HTTP_DATA_SERVER`` at the test server's file service,
    which asks for basic auth, as a lab's data server may.
    """
    server, root, eids = remote_lab
    files_url = server.serve_files(root, username=LOGIN, password=PASSWORD)
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    settings = {
        "ALYX_URL": server.url,
        "ALYX_LOGIN": server.username,
        "HTTP_DATA_SERVER": files_url.rstrip("/"),
        "HTTP_DATA_SERVER_LOGIN": LOGIN,
        "HTTP_DATA_SERVER_PWD": PASSWORD,
        "CACHE_DIR": str(tmp_path / "theirs"),
    }
    (home / ".one").mkdir(parents=True)
    (home / ".one" / f".{one_params_key(server.url)}").write_text(json.dumps(settings))
    ONE.cache_clear()
    theirs = ONE(
        base_url=server.url,
        username=server.username,
        password=server.password,
        mode="remote",
        silent=True,
        cache_dir=tmp_path / "theirs",
    )
    # Our One reads the data server login from the same ONE-api settings file.
    ours = One(
        base_url=server.url,
        username=server.username,
        password=server.password,
        cache_dir=tmp_path / "ours",
    )
    yield theirs, ours, eids[FIRST], server
    ONE.cache_clear()


def _files(folder: Path) -> list[str]:
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*.npy")
        if not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


@pytest.mark.parametrize("query", SEARCHES, ids=str)
def test_search_agrees(both, query):
    theirs, ours, _, _ = both
    assert ours.search(**query) == [str(e) for e in theirs.search(**query)]


def test_search_details_agree(both):
    theirs, ours, _, _ = both
    _, their_records = theirs.search(subject="algernon", details=True)
    _, our_records = ours.search(subject="algernon", details=True)
    assert our_records == [dict(r) for r in their_records]


def test_listings_and_details_agree(both):
    theirs, ours, eid, _ = both
    assert ours.list_datasets(eid) == theirs.list_datasets(eid)
    for query in ({"collection": "alf/probe00"}, {"filename": "spikes.*", "revision": ""}):
        assert ours.list_datasets(eid, **query) == theirs.list_datasets(eid, **query)
    mine = ours.list_datasets(eid, details=True).sort_values("rel_path")
    their_frame = theirs.list_datasets(eid, details=True).sort_values("rel_path")
    assert mine.index.tolist() == [str(i) for i in their_frame.index]
    for column in ("rel_path", "file_size", "hash", "exists", "default_revision"):
        assert mine[column].tolist() == their_frame[column].tolist(), column
    assert mine["qc"].astype(str).tolist() == their_frame["qc"].astype(str).tolist()
    assert ours.list_collections(eid) == sorted(theirs.list_collections(eid))
    assert ours.list_revisions(eid) == sorted(theirs.list_revisions(eid))
    assert ours.get_details(eid, full=True) == theirs.get_details(eid, full=True)
    mine, their_summary = ours.get_details(eid), theirs.get_details(eid)
    assert mine.keys() == their_summary.keys()
    assert {k: v for k, v in mine.items() if k != "local_path"} == {
        k: v for k, v in their_summary.items() if k != "local_path"
    }
    assert mine["local_path"].relative_to(ours.cache_dir) == Path(
        their_summary["local_path"]
    ).relative_to(theirs.cache_dir)
    assert ours.eid2path(eid).relative_to(ours.cache_dir) == theirs.eid2path(eid).relative_to(
        theirs.cache_dir
    )
    assert ours.path2eid(FIRST) == str(theirs.path2eid(FIRST))


def test_loads_with_a_download_agree(both):
    theirs, ours, eid, server = both
    their_spikes = theirs.load_object(eid, "spikes", collection="alf/probe00")
    our_spikes = ours.load_object(eid, "spikes", collection="alf/probe00")
    assert sorted(our_spikes) == sorted(their_spikes)
    for attribute in our_spikes:
        np.testing.assert_array_equal(our_spikes[attribute], their_spikes[attribute])
    # ONE-api fetched from its HTTP_DATA_SERVER and we from the records' data_url: same server,
    # same files, laid out the same way in each cache.
    assert (
        _files(ours.cache_dir)
        == _files(theirs.cache_dir)
        == [
            f"{FIRST}/alf/probe00/#2026-07-05#/spikes.times.npy",
            f"{FIRST}/alf/probe00/spikes.amps.npy",
            f"{FIRST}/alf/probe00/spikes.clusters.npy",
        ]
    )
    ours_again = ours.load_dataset(eid, "_ibl_trials.probabilityLeft.npy")
    np.testing.assert_array_equal(
        ours_again, theirs.load_dataset(eid, "_ibl_trials.probabilityLeft.npy")
    )
    served = {path for path, _, status in server.files.requests if status == 200}
    assert len(served) == 4  # each file fetched once per client, both from the same URLs


def test_one_api_local_mode_reads_what_we_downloaded(both, tmp_path):
    """Our downloads and cache tables serve ONE-api's local mode, offline."""
    _, ours, eid, server = both
    spikes = ours.load_object(eid, "spikes", collection="alf/probe01")
    server.stop()
    ONE.cache_clear()
    offline = ONE(cache_dir=ours.cache_dir, mode="local")
    datasets = offline.list_datasets(eid, collection="alf/probe01")
    assert datasets == ours.list_datasets(eid, collection="alf/probe01", query_type="local")
    loaded = offline.load_object(eid, "spikes", collection="alf/probe01")
    np.testing.assert_array_equal(loaded["depths"], spikes.depths)
    assert isinstance(offline.get_details(eid), pd.Series)
