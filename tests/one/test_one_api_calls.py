"""The query API as ONE users call it: ONE-api's constructor keywords, a folder without tables,
namespaced dataset types, the older tutorial's loads on a session with two probes, and users,
which the cache tables do not hold."""

import warnings

import numpy as np
import one.api
import pytest

from one_flows.alf import ALFError
from one_flows.cache import make_parquet_db
from one_flows.one import ONE, NoCacheTables, NotInSource, One, SessionDataInfo

from .conftest import N_SPIKES, ZM


@pytest.fixture(scope="module")
def root(tmp_path_factory, tree_builder):
    folder = tree_builder(tmp_path_factory.mktemp("calls"))
    make_parquet_db(folder)
    return folder


@pytest.fixture(scope="module")
def local(root):
    return One(cache_dir=root, mode="local")


def test_one_apis_constructor_keywords(root, tmp_path, tree_builder):
    assert ONE(cache_dir=root, mode="local").search() == One(root).search()
    positional = One(root, "local", False)
    assert (positional.mode, positional.wildcards) == ("local", False)
    assert positional.search(subject="ZM_10.5") == []  # a plain substring without wildcards
    assert One(root).search(subject="ZM_10.5") == positional.search(subject="ZM_1085")
    # The tables in a folder of their own (tables_dir), the files in cache_dir.
    data = tree_builder(tmp_path / "data")
    make_parquet_db(data)
    tables = tmp_path / "tables"
    tables.mkdir()
    for name in ("sessions.pqt", "datasets.pqt"):
        (data / name).rename(tables / name)
    ours = One(cache_dir=data, mode="local", tables_dir=tables)
    theirs = one.api.One(cache_dir=data, mode="local", tables_dir=tables)
    eid = ours.to_eid(ZM)
    assert ours.search() == [str(e) for e in theirs.search()]
    np.testing.assert_array_equal(
        ours.load_dataset(eid, "_ibl_wheel.position.npy"),
        theirs.load_dataset(eid, "_ibl_wheel.position.npy"),
    )


def test_tables_dir_with_an_alyx_is_refused(alyx_server, tmp_path):
    with pytest.raises(ValueError, match="tables_dir is for local mode only"):
        One(
            base_url=alyx_server.url,
            username=alyx_server.username,
            password=alyx_server.password,
            cache_dir=tmp_path,
            tables_dir=tmp_path / "tables",
        )


@pytest.mark.parametrize("where", ["missing", "empty"])
def test_a_folder_without_tables_is_refused(tmp_path, where):
    folder = tmp_path / "data"
    if where == "empty":
        folder.mkdir()
    with pytest.raises(NoCacheTables, match=f"in {folder}: build them with `one-flows cache"):
        One(folder)
    with pytest.raises(ALFError):
        One(cache_dir=folder, mode="local")
    # ONE-api only warns, then answers every query empty.
    with pytest.warns(UserWarning, match="No cache tables"):
        assert one.api.One(cache_dir=folder, mode="local").search() == []


def test_namespaced_types_are_listed_as_alyx_names_them(local):
    types = local.list(ZM)
    assert {"_spikeglx_sync.times", "_iblrig_taskSettings.raw"} <= set(types)
    assert {"trials.intervals", "wheel.position", "spikes.times"} <= set(types)
    assert "sync.times" not in types and "_ibl_trials.intervals" not in types
    assert set(types) <= set(local.list(None, "dataset-types"))
    assert set(local.list(ZM, details=True)["dataset_type"]) == set(types)


@pytest.mark.parametrize(
    ("asked", "expected"),
    [
        ("_spikeglx_sync.times", np.arange(4.0)),
        ("sync.times", np.arange(4.0)),
        ("trials.intervals", np.c_[np.arange(7), np.arange(7) + 1]),
        ("_ibl_trials.intervals", np.c_[np.arange(7), np.arange(7) + 1]),
        ("_iblrig_taskSettings.raw", {"PYBPOD_PROTOCOL": "x"}),
        ("taskSettings.raw", {"PYBPOD_PROTOCOL": "x"}),
    ],
)
def test_namespaced_types_are_found_with_and_without_the_namespace(local, asked, expected):
    eid = local.to_eid(ZM)
    (data,) = local.load(eid, dataset_types=[asked])
    if isinstance(expected, np.ndarray):
        np.testing.assert_array_equal(data, expected)
    else:
        assert data == expected
    assert local.search(dataset_types=asked) == [eid]
    assert local.search(dataset_types=[asked, "spikes.times"]) == [eid]


def test_another_namespace_is_another_type(local):
    eid = local.to_eid(ZM)
    assert local.load(eid, dataset_types=["_ibl_sync.times"]) == [[]]
    assert local.search(dataset_types="_iblrig_sync.times") == []


def test_older_load_gives_every_match_of_a_type_and_empty_lists_for_none(local):
    eid = local.to_eid(ZM)
    times, missing, position = local.load(
        eid, dataset_types=["spikes.times", "nothing.there", "wheel.position"]
    )
    # alf/probe00 (its default revision, #2024-01-01#) and alf/probe00/pykilosort
    assert isinstance(times, list) and len(times) == 2
    np.testing.assert_array_equal(times[0], np.arange(N_SPIKES) / 20)
    np.testing.assert_array_equal(times[1], np.arange(N_SPIKES) / 30)
    assert missing == []
    np.testing.assert_array_equal(position, np.linspace(0, 1, 5))
    (one_probe,) = local.load(eid, dataset_types="spikes.times", collection="alf/probe00")
    np.testing.assert_array_equal(one_probe, np.arange(N_SPIKES) / 20)
    (before,) = local.load(eid, "spikes.times", collection="alf/probe00", revision="2023-12-31")
    np.testing.assert_array_equal(before, np.arange(N_SPIKES) / 10)


def test_older_load_of_a_whole_session_with_two_probes(local):
    eid = local.to_eid(ZM)
    loaded = dict(zip(local.list(eid), local.load(eid), strict=True))
    depths = loaded["clusters.depths"]
    assert [len(d) for d in depths] == [3, 2]  # alf/probe00, alf/probe01
    np.testing.assert_array_equal(loaded["_spikeglx_sync.times"], np.arange(4.0))
    info = local.load(eid, ["clusters.depths", "nothing.there"], dclass_output=True)
    assert isinstance(info, SessionDataInfo) and info.dataset_type == [
        "clusters.depths",
        "nothing.there",
    ]
    assert [p.parent.name for p in info.local_path[0]] == ["probe00", "probe01"]
    assert len(info.dataset_id[0]) == 2 and info.url[0] == [None, None]
    assert info.dataset_id[1] == info.local_path[1] == info.data[1] == []
    paths = local.load(eid, ["clusters.depths"], download_only=True)[0]
    assert paths == info.local_path[0]


def test_users_are_refused_by_tables_that_hold_none(local):
    with pytest.raises(NotInSource, match="hold no users"):
        local.search(users="test_user")
    with pytest.raises(NotInSource, match="hold no users"):
        local.list(None, "users")
    with pytest.raises(ALFError):
        local.search(subject="ZM", users=["test_user"])
    # ONE-api's local mode has no such search term at all.
    with warnings.catch_warnings(), pytest.raises(ValueError):
        warnings.simplefilter("ignore")
        one.api.One(cache_dir=local.cache_dir, mode="local").search(users="test_user")


def test_on_an_alyx_types_are_found_by_both_spellings_and_users_answered(alyx_server, tmp_path):
    """From an Alyx, type names are the database's; both spellings search and load, and users
    are the database's."""
    from one_flows.alyx import AlyxClient
    from one_flows.registration import RegistrationClient

    session = "cortexlab/Subjects/algernon/2026-07-04/001"
    files = {
        "raw_ephys_data/_spikeglx_sync.times.probe00.npy": np.arange(4.0),
        "raw_ephys_data/_spikeglx_sync.times.probe01.npy": np.arange(5.0),
        "alf/probe00/spikes.times.npy": np.arange(N_SPIKES) / 10,
    }
    data = tmp_path / "lab"
    for rel, array in files.items():
        (data / session / rel).parent.mkdir(parents=True, exist_ok=True)
        np.save(data / session / rel, array)
    alyx_server.set_data_url(
        "flatiron_cortexlab", alyx_server.serve_files(data) + "cortexlab/Subjects/"
    )
    with AlyxClient(
        alyx_server.url, username=alyx_server.username, password=alyx_server.password
    ) as alyx:
        client = RegistrationClient(alyx, digest_cache=False, ledger=False)
        eid = client.register_session(data / session, repository="flatiron_cortexlab").eid
    remote = One(
        base_url=alyx_server.url,
        username=alyx_server.username,
        password=alyx_server.password,
        cache_dir=tmp_path / "cache",
    )

    assert "_spikeglx_sync.times" in remote.list(eid)
    for asked in ("_spikeglx_sync.times", "sync.times"):
        assert remote.search(dataset_types=asked) == [eid]
        (sync,) = remote.load(eid, dataset_types=[asked])
        assert [len(s) for s in sync] == [4, 5]
    assert remote.search(dataset_types=["sync.times", "spikes.times"]) == [eid]
    assert remote.search(users="test_user") == [eid]
    assert remote.list(None, "users") == ["test_user"]
