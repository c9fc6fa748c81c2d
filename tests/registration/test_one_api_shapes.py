"""What the RegistrationClient returns, in ONE-api's shapes, with our outcomes kept beside them;
and ONE-api's ``OneAlyx`` accepted in place of a target."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from one_flows.registration import (
    NOT_ALF,
    Outcome,
    RegisteredFiles,
    RegistrationClient,
    SessionReport,
)
from one_flows.targets import LocalTarget

from .conftest import GOOD_FILES, SESSION, assert_known_part, one_api_registration

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

FULL_RECORD_KEYS = {"users", "location", "n_trials", "procedures", "data_dataset_session_related"}


def test_report_unpacks_into_the_session_record_and_dataset_records(
    client, alyx_client, make_session
):
    path = make_session()

    report = client.register_session(path, n_trials=5)
    session, records = report

    assert isinstance(report, SessionReport) and report.created
    assert report[0] == session and report[1] == records == report.records
    assert [r["name"] for r in records] == [
        f.dataset["name"] for f in report.files if f.status is Outcome.CREATED
    ]
    assert len(records) == len(GOOD_FILES)
    assert session["data_dataset_session_related"] == records
    assert {k: v for k, v in session.items() if k != "data_dataset_session_related"} == {
        k: v
        for k, v in alyx_client.get(f"/sessions/{report.eid}").items()
        if k not in ("data_dataset_session_related", "auto_datetime")
    } | {"auto_datetime": session["auto_datetime"]}


def test_existing_session_gives_its_full_record(client, alyx_client, make_session):
    path = make_session({})
    client.register_session(path, n_trials=5, location="cortexlab_rig1")

    session, records = client.register_session(path, file_list=False)

    assert records is None
    assert set(session) >= FULL_RECORD_KEYS
    assert (session["n_trials"], session["location"], session["users"]) == (
        5,
        "cortexlab_rig1",
        ["test_user"],
    )


def test_existing_session_of_a_local_target_gives_its_record(tmp_path, make_session):
    client = RegistrationClient(LocalTarget(tmp_path / "cache"), digest_cache=False)
    path = make_session({"alf/spikes.times.npy": b"t"})
    first, _ = client.register_session(path, task_protocol="choiceWorld")

    again, records = client.register_session(path)

    assert again == {**first, "data_dataset_session_related": records}
    assert [r["name"] for r in records] == ["spikes.times.npy"]


def test_register_files_gives_one_apis_records_and_our_outcomes(client, make_session):
    path = make_session()
    client.register_session(path, file_list=False)
    files = [path / "alf/_ibl_trials.table.pqt", path / "notes.txt", path / "alf/spikes.times.npy"]

    records = client.register_files(files)

    assert isinstance(records, RegisteredFiles) and isinstance(records, list)
    assert [r and r["name"] for r in records] == ["_ibl_trials.table.pqt", None, None]
    assert [(o.status, o.reason) for o in records.outcomes][:2] == [
        (Outcome.CREATED, None),
        (Outcome.SKIPPED, NOT_ALF),
    ]
    assert records.outcomes[2].status is Outcome.SKIPPED  # not on disk
    assert records.counts[Outcome.SKIPPED] == 2
    one = client.register_files(path / "alf/probe00/spikes.times.npy")
    assert isinstance(one, dict) and one["collection"] == "alf/probe00"
    assert client.register_files(str(path / "notes.txt")) is None
    body = client.register_files(path / "alf/probe00/spikes.times.npy", dry=True)
    assert body["filenames"] == ["alf/probe00/spikes.times.npy"]


@pytest.mark.parametrize("recheck", [False, True], ids=["from the ledger", "from the target"])
def test_unchanged_files_have_records_too(client, make_session, recheck):
    """Files not sent again get a record of what is known of them: keys of Alyx's records."""
    path = make_session(GOOD_FILES)
    _, first = client.register_session(path)

    report = client.register_session(path, recheck=recheck)

    assert report.counts[Outcome.UNCHANGED] == len(GOOD_FILES) == len(report.records)
    created = {r["id"]: r for r in first}
    for record in report.records:
        assert_known_part(record, created[record["id"]])


def test_create_new_session_returns_one_apis_types(client, tmp_path, one_registration):
    path, eid = client.create_new_session("algernon", tmp_path / "ours", date="2026-01-03")
    their_path, their_eid = one_registration.create_new_session(
        "algernon", tmp_path / "theirs", date="2026-01-04"
    )

    assert isinstance(eid, uuid.UUID) and type(eid) is type(their_eid)
    assert isinstance(path, Path) and isinstance(their_path, Path)
    assert path == tmp_path / "ours/algernon/2026-01-03/001"


def test_one_apis_one_is_accepted_with_its_login(server, tmp_path, make_session):
    """``RegistrationClient(one)`` with ONE-api's OneAlyx: its URL and its user's token are
    used (no new login), and its cache folder is the default session root, as in ONE-api."""
    one = one_api_registration(server, tmp_path / "one_cache").one
    logins = server.request_count("POST", "/auth-token")

    client = RegistrationClient(one, digest_cache=False)
    session, records = client.register_session(make_session(GOOD_FILES))
    path, eid = client.create_new_session("algernon", date="2026-01-05")

    assert client.one is one
    assert session["users"] == [one.alyx.user] and len(records) == len(GOOD_FILES)
    assert path == tmp_path / "one_cache/algernon/2026-01-05/001"
    assert one.alyx.rest("sessions", "read", id=str(eid))["number"] == 1
    assert server.request_count("POST", "/auth-token") == logins


def test_our_one_is_accepted(server, make_session):
    from one_flows.one import One

    one = One(base_url=server.url, username=server.username, password=server.password)
    client = RegistrationClient(one, digest_cache=False)

    session, _ = client.register_session(make_session({}, session=SESSION))

    assert client.target.client is one.alyx and session["subject"] == "algernon"


@pytest.mark.parametrize("given", [object(), "https://alyx.example.org"])
def test_anything_else_is_refused_saying_what_to_pass(given, tmp_path):
    with pytest.raises(TypeError, match="ONE instance connected to an Alyx, an AlyxClient"):
        RegistrationClient(given)


def test_an_offline_one_is_refused(tmp_path):
    import one.api

    offline = one.api.One(cache_dir=tmp_path, mode="local")
    with pytest.raises(TypeError, match="not One"):
        RegistrationClient(offline)
