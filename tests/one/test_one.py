"""Behaviour of our One beyond ONE-api's: id forms, errors, hash checks, pluggable tables."""

import uuid

import numpy as np
import pytest

import one_flows.one.tables as table_source
from one_flows.cache import CacheTables, load_tables, make_parquet_db, save_tables
from one_flows.one import (
    ALFMultipleCollectionsFound,
    ALFMultipleObjectsFound,
    ALFObjectNotFound,
    DatasetHashMismatch,
    One,
)


@pytest.fixture
def built(alf_tree):
    make_parquet_db(alf_tree, hash_files=True)
    return alf_tree


def test_sessions_accepted_in_every_form(built, sessions):
    one = One(built)
    eid = one.to_eid(sessions["ZM"])
    assert eid is not None
    forms = [
        uuid.UUID(eid),
        eid,
        built / sessions["ZM"],
        str(built / sessions["ZM"] / "alf" / "_ibl_wheel.position.npy"),
        "ZM_1085/2019-02-12/001",
        "mainenlab/Subjects/ZM_1085/2019-02-12/001",
        f"https://alyx.example.org/sessions/{eid}",
        {"lab": "mainenlab", "subject": "ZM_1085", "date": "2019-02-12", "number": 1},
    ]
    assert {one.to_eid(f) for f in forms} == {eid}
    assert one.eid2path(eid) == built / sessions["ZM"]
    assert one.path2eid(built / sessions["ZM"] / "alf") == eid
    assert one.to_eid("ZM_1085/2019-02-12/009") is None
    assert one.to_eid(uuid.uuid4()) is None
    with pytest.raises(ValueError, match="Cannot read a session"):
        one.to_eid("not a session")
    with pytest.raises(ALFObjectNotFound, match="not in the cache tables"):
        one.load_object("ZM_1085/2019-02-12/009", "trials")
    assert one.list_datasets("ZM_1085/2019-02-12/009") == []


def test_same_session_path_in_two_labs_is_ambiguous(tmp_path):
    for lab in ("laba", "labb"):
        path = tmp_path / lab / "Subjects/SW1/2020-01-01/001/alf/spikes.times.npy"
        path.parent.mkdir(parents=True)
        np.save(path, np.arange(3))
    make_parquet_db(tmp_path)
    one = One(tmp_path)
    with pytest.raises(ALFMultipleObjectsFound, match="several labs"):
        one.to_eid("SW1/2020-01-01/001")
    assert one.to_eid("laba/Subjects/SW1/2020-01-01/001") != one.to_eid(
        "labb/Subjects/SW1/2020-01-01/001"
    )


def test_hashes_checked_only_when_asked(built, sessions, monkeypatch):
    one = One(built)
    path = built / sessions["KS"] / "alf/_ibl_wheel.position.npy"
    data = np.load(path)
    np.save(path, data + 1)  # same size, different content
    monkeypatch.setattr(table_source, "md5", pytest.fail)  # loading must not hash
    loaded = one.load_dataset(sessions["KS"], "_ibl_wheel.position.npy")
    np.testing.assert_array_equal(loaded, data + 1)
    monkeypatch.undo()
    with pytest.raises(DatasetHashMismatch, match=r"_ibl_wheel\.position\.npy"):
        one.load_dataset(sessions["KS"], "_ibl_wheel.position.npy", check_hash=True)
    with pytest.raises(DatasetHashMismatch):
        one.load_object(sessions["KS"], "wheel", check_hash=True)


def test_size_mismatch_warns_and_missing_file_raises(built, sessions):
    one = One(built)
    path = built / sessions["KS"] / "alf/_ibl_wheel.position.npy"
    np.save(path, np.arange(100.0))
    with pytest.warns(UserWarning, match="the table says"):
        one.load_dataset(sessions["KS"], "_ibl_wheel.position.npy")
    path.unlink()
    with pytest.raises(ALFObjectNotFound, match="not on disk"):
        one.load_dataset(sessions["KS"], "_ibl_wheel.position.npy")
    data, records = one.load_datasets(
        sessions["KS"], ["_ibl_wheel.position.npy", "_ibl_trials.choice.npy"], assert_present=False
    )
    assert data[0] is None and records[0]["rel_path"] == "alf/_ibl_wheel.position.npy"
    with pytest.raises(ALFObjectNotFound, match="Not on disk"):
        one.load_datasets(sessions["KS"], ["_ibl_wheel.position.npy"])


def test_errors_name_the_candidates(built, sessions):
    one = One(built)
    with pytest.raises(ALFMultipleCollectionsFound, match=r"'alf/probe00', 'alf/probe00/pyk"):
        one.load_dataset(sessions["ZM"], "spikes.times.npy")
    with pytest.raises(ALFMultipleObjectsFound, match="several datasets"):
        one.load_dataset(sessions["ZM"], "_ibl_trials.intervals*", collection="alf")
    with pytest.raises(ALFMultipleObjectsFound, match=r"\['trials', 'wheel'\]"):
        one.load_object(sessions["ZM"], "[tw]*", collection="alf")
    with pytest.raises(ALFObjectNotFound, match=r"nothing\.here"):
        one.load_datasets(sessions["ZM"], ["nothing.here.npy"])
    with pytest.raises(ValueError, match="Invalid search term"):
        one.search(colour="red")
    with pytest.raises(ValueError, match="Ambiguous search term"):
        one.search(dat="x")
    with pytest.raises(ValueError, match="local queries"):
        one.list_datasets(query_type="remote")
    with pytest.raises(ValueError, match="must be None"):
        one.load_dataset(sessions["ZM"], "alf/_ibl_wheel.position.npy", collection="alf")
    with pytest.raises(ValueError, match="Unknown ALF parts"):
        one.list_datasets(sessions["ZM"], {"colour": "red"})
    with pytest.raises(ValueError, match="2 entries for 1 datasets"):
        one.load_datasets(sessions["ZM"], ["a.b"], collections=["alf", "alf"])


def test_default_revision_column_is_honoured(built, sessions):
    tables = load_tables(built)
    rel = tables.datasets["rel_path"]
    # Declare the unrevised spikes.times the default instead of the 2024 revision
    tables.datasets["default_revision"] = ~rel.str.contains("#2024-01-01#")
    one = One(built, tables=tables)
    data = one.load_dataset(sessions["ZM"], "spikes.times.npy", collection="alf/probe00")
    np.testing.assert_array_equal(data, np.arange(11) / 10)
    listed = one.list_datasets(
        sessions["ZM"], default_revisions_only=True, collection="alf/probe00"
    )
    assert "alf/probe00/#2024-01-01#/spikes.times.npy" not in listed
    assert "default_revision" in one.list_datasets(sessions["ZM"], details=True).columns


def test_tables_can_come_from_another_source(built, sessions):
    tables = load_tables(built)
    ks = tables.sessions[tables.sessions["subject"] == "KS005"]
    subset = CacheTables(ks, tables.datasets[tables.datasets.index.isin(ks.index, level="eid")])
    one = One(built, tables=subset)
    assert one.list_subjects() == ["KS005"]
    assert len(one.search()) == 2
    np.testing.assert_array_equal(
        one.load_dataset(sessions["KS"], "_ibl_trials.choice.npy"), [3, 3, -3]
    )


def test_one_is_a_pure_reader(built, sessions):
    before = {p.name: p.read_bytes() for p in built.glob("*.pqt")}
    one = One(built)
    (built / sessions["KS"] / "alf/_ibl_wheel.timestamps.npy").unlink()
    with pytest.raises(ALFObjectNotFound, match="not on disk"):
        one.load_object(sessions["KS"], "wheel", attribute="timestamps")
    assert {p.name: p.read_bytes() for p in built.glob("*.pqt")} == before


def test_search_by_dataset_type_and_qc(built, sessions):
    one = One(built)
    with_both = one.search(dataset_types=["wheel.position", "trials.choice"])
    assert with_both == [one.to_eid(sessions["KS"]), one.to_eid(sessions["ZM"])]
    tables = load_tables(built)
    tables.datasets["qc"] = "FAIL"
    tables.datasets.loc[tables.datasets["rel_path"].str.contains("wheel"), "qc"] = "PASS"
    save_tables(tables, built)
    one = One(built)
    passing = one.search(dataset_qc_lte="PASS")
    assert set(passing) == {
        one.to_eid(sessions["KS"]),
        one.to_eid(sessions["ZM"]),
        one.to_eid("ZM_1085/2019-02-13/002"),
    }
