"""The examples of ONE-api's tutorials that make sense locally, run against our One.

Sources (ONE-api documentation, https://int-brain-lab.github.io/ONE/):
"ONE quick start" and "Searching with ONE" (notebooks/one_search), "Listing with ONE"
(notebooks/one_list/one_list.html), "Loading with ONE" (notebooks/one_load/one_load.html), and
the older ONE tutorial calls ``one.list`` / ``one.load(..., dataset_types=...)``. Session names
are those of our fixture tree instead of the IBL public database's.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from one_flows.cache import make_parquet_db
from one_flows.one import ALFMultipleCollectionsFound, One, SessionDataInfo


@pytest.fixture(scope="module")
def one(tmp_path_factory, tree_builder):
    root = tree_builder(tmp_path_factory.mktemp("tutorial"))
    make_parquet_db(root)
    return One(cache_dir=root)


EID = "ZM_1085/2019-02-12/001"  # tutorials use 'subject/date/number' eids


def test_quick_start_search_terms_and_search(one):
    """ONE quick start: ``one.search_terms()`` then ``one.search(...)`` by subject and date."""
    assert {"subject", "date_range", "datasets", "laboratory"} <= set(one.search_terms())
    eids = one.search(date_range=["2019-02-01"], datasets="_ibl_wheel.position.npy")
    expected = ["KS005/2019-04-01/001", "ZM_1085/2019-02-13/002", EID]  # newest first
    assert eids == [one.to_eid(path) for path in expected]


def test_searching_by_subject_date_and_details(one):
    """Searching with ONE: ``one.search(subject=...)``, ``date=`` and ``details=True``."""
    eids = one.search(subject="ZM_1085")
    assert len(eids) == 3
    eids, details = one.search(subject="ZM_1085", date="2019-02-13", details=True)
    assert [d["number"] for d in details] == [2, 1]  # newest (highest number) first
    assert all(str(d["date"]) == "2019-02-13" for d in details)


def test_searching_with_abbreviated_terms_and_lists(one):
    """Searching with ONE: search terms may be abbreviated, and lists mean 'any of'."""
    assert one.search(subj="ZM_1085", num=1) == one.search(subject="ZM_1085", number=1)
    both = one.search(subject=["KS005", "CSHL049"])
    assert {one.get_details(e)["subject"] for e in both} == {"KS005", "CSHL049"}


def test_searching_exact_subject_with_regex(one):
    """Searching with ONE: ``one.search(subject='^FD_04$')`` for an exact (regex) match."""
    assert len(one.search(subject="^ZM_108")) == 4
    assert len(one.search(subject="^ZM_1085$")) == 3


def test_listing_all_and_session_datasets(one):
    """Listing with ONE: ``one.list_datasets()`` then ``one.list_datasets(eid)``."""
    everything = one.list_datasets()
    mine = one.list_datasets(EID)
    assert set(mine) < set(everything)
    assert "alf/_ibl_wheel.position.npy" in mine


def test_listing_with_filters(one):
    """Listing with ONE: filter by collection, filename wildcard and ALF parts."""
    probe = one.list_datasets(EID, collection="alf/probe01")
    assert probe == ["alf/probe01/clusters.channels.npy", "alf/probe01/clusters.depths.npy"]
    assert one.list_datasets(EID, "*wheel*") == [
        "alf/_ibl_wheel.position.npy",
        "alf/_ibl_wheel.timestamps.npy",
    ]
    trials = one.list_datasets(EID, {"object": "trials", "attribute": "intervals"})
    assert trials == ["alf/_ibl_trials.intervals.npy", "alf/_ibl_trials.intervals_bpod.npy"]
    assert one.list_datasets(EID, collection="*probe*", filename="spikes.times*") == [
        "alf/probe00/#2024-01-01#/spikes.times.npy",
        "alf/probe00/pykilosort/spikes.times.npy",
        "alf/probe00/spikes.times.npy",
    ]


def test_listing_details_collections_revisions_subjects(one):
    """Listing with ONE: ``details=True``, ``list_collections``, ``list_revisions``,
    ``list_subjects``."""
    frame = one.list_datasets(EID, details=True)
    assert isinstance(frame, pd.DataFrame) and frame.index.name == "id"
    assert {"rel_path", "file_size", "hash", "exists", "qc"} <= set(frame.columns)
    assert one.list_collections(EID) == [
        "alf",
        "alf/probe00",
        "alf/probe00/pykilosort",
        "alf/probe01",
        "raw_behavior_data",
        "raw_ephys_data",
    ]
    assert one.list_collections(EID, collection="*probe*") == [
        "alf/probe00",
        "alf/probe00/pykilosort",
        "alf/probe01",
    ]
    assert one.list_revisions(EID) == ["", "2024-01-01"]
    assert one.list_revisions(EID, filename="spikes*", collection="alf/probe00") == [
        "",
        "2024-01-01",
    ]
    assert one.list_subjects() == ["CSHL049", "KS005", "KS006", "ZM_1085", "ZM_1086"]


def test_loading_an_object(one):
    """Loading with ONE: ``trials = one.load_object(eid, 'trials')``, dot and dict syntax,
    ``check_dimensions`` and conversion to a DataFrame."""
    trials = one.load_object(EID, "trials")
    assert set(trials) == {"intervals", "choice", "rewardVolume", "intervals_bpod", "stimOn_times"}
    np.testing.assert_array_equal(trials.rewardVolume[:5], trials["rewardVolume"][:5])
    assert trials.check_dimensions == 0
    frame = trials.to_df()
    assert len(frame) == len(trials.choice) and "intervals_0" in frame.columns


def test_loading_some_attributes(one):
    """Loading with ONE: ``attribute=[...]`` also returns attributes with a timescale."""
    trials = one.load_object(EID, "trials", attribute=["intervals", "rewardVolume"])
    assert set(trials) == {"intervals", "rewardVolume", "intervals_bpod"}


def test_loading_an_object_in_a_collection(one):
    """Loading with ONE: an object in several collections needs ``collection=``;
    ``download_only=True`` returns the paths."""
    with pytest.raises(ALFMultipleCollectionsFound, match=r"alf/probe00.*alf/probe01"):
        one.load_object(EID, "clusters")
    clusters = one.load_object(EID, "clusters", collection="alf/probe01")
    np.testing.assert_array_equal(clusters.depths, [5.0, 15.0])
    files = one.load_object(EID, "clusters", collection="alf/probe01", download_only=True)
    assert sorted(Path(f).name for f in files) == ["clusters.channels.npy", "clusters.depths.npy"]


def test_loading_datasets(one):
    """Loading with ONE: ``load_dataset`` by name, in a collection, and ``load_datasets``."""
    reward = one.load_dataset(EID, "_ibl_trials.rewardVolume.npy")
    np.testing.assert_array_equal(reward, np.full(7, 1.5))
    depths = one.load_dataset(EID, "clusters.depths.npy", collection="alf/probe01")
    np.testing.assert_array_equal(depths, [5.0, 15.0])
    data, info = one.load_datasets(
        EID,
        datasets=["_ibl_trials.rewardVolume.npy", "clusters.depths.npy"],
        collections=["alf", "alf/probe00"],
    )
    np.testing.assert_array_equal(data[1], [10.0, 20.0, 30.0])
    assert [i["rel_path"] for i in info] == [
        "alf/_ibl_trials.rewardVolume.npy",
        "alf/probe00/clusters.depths.npy",
    ]


def test_loading_revisions_and_relative_paths(one):
    """Loading with ONE: ``revision=`` loads the last revision on or before a date, and the
    relative paths from ``list_datasets`` load exact files."""
    latest = one.load_dataset(EID, "spikes.times.npy", collection="alf/probe00")
    np.testing.assert_array_equal(latest, np.arange(11) / 20)  # the revised file is the default
    older = one.load_dataset(EID, "spikes.times.npy", collection="alf/probe00", revision="2023")
    np.testing.assert_array_equal(older, np.arange(11) / 10)
    rel_paths = one.list_datasets(EID, collection="alf/probe00")
    data, _ = one.load_datasets(EID, rel_paths)
    assert len(data) == len(rel_paths) == 4


def test_older_list_and_load_calls(one):
    """Older ONE tutorial: ``one.list(eid)``, ``one.list(None, 'dataset-types')`` and
    ``one.load(eid, dataset_types=[...])``, which keeps order with an empty list for a missing
    type, and ``dclass_output=True``."""
    types = one.list(EID)
    assert "wheel.position" in types and "trials.intervals" in types
    assert set(types) < set(one.list(None, "dataset-types"))
    assert one.list(None, "labs") == ["churchlandlab", "mainenlab"]
    assert one.list(None, "subjects") == one.list_subjects()
    details = one.list(EID, details=True)
    assert set(details["dataset_type"]) == set(types)
    position, missing, choice = one.load(
        EID, dataset_types=["wheel.position", "nothing.there", "trials.choice"]
    )
    np.testing.assert_array_equal(position, np.linspace(0, 1, 5))
    assert missing == [] and len(choice) == 7
    info = one.load(EID, dataset_types=["wheel.position", "nothing.there"], dclass_output=True)
    assert isinstance(info, SessionDataInfo) and len(info) == 2
    assert info.local_path[0].name == "_ibl_wheel.position.npy"
    assert info.dataset_id[1] == info.data[1] == []
    assert info.eid == [one.to_eid(EID)] * 2
