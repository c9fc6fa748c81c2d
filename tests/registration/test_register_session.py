"""register_session and friends over HTTP: create or update, request counts, crash safety."""

from __future__ import annotations

import hashlib

import pytest

from one_flows.alyx import AlyxClient, AlyxTransientError
from one_flows.registration import (
    MemberNotFound,
    Outcome,
    RegistrationClient,
    SubjectNotFound,
)
from one_flows.targets import alyx as alyx_target
from one_flows.testing.server import AlyxTestServer

from .conftest import BAD_FILES, GOOD_FILES, SESSION, one_api_registration

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _sessions(alyx: AlyxClient, date: str = "2026-01-03") -> list[dict]:
    return alyx.list_all("/sessions", {"subject": "algernon", "date_range": f"{date},{date}"})


def _datasets(alyx: AlyxClient, eid: str) -> dict[str, dict]:
    held = alyx.list_all("/datasets", {"session": eid})
    rel = {
        "/".join(
            filter(None, [d["collection"], d["revision"] and f"#{d['revision']}#", d["name"]])
        ): d
        for d in held
    }
    assert len(rel) == len(held), "one dataset per file"
    return rel


def _assert_registered_once(alyx: AlyxClient, files: dict[str, bytes]) -> None:
    (session,) = _sessions(alyx)
    held = _datasets(alyx, session["id"])
    assert {rel: (d["hash"], d["file_size"]) for rel, d in held.items()} == {
        rel: (hashlib.md5(data).hexdigest(), len(data)) for rel, data in files.items()
    }


def test_new_session_is_created_with_its_files(client, alyx_client, make_session):
    path = make_session()

    report = client.register_session(path, n_trials=10, task_protocol="choiceWorld")

    assert report.created and report.ok
    assert report.counts == {
        Outcome.CREATED: len(GOOD_FILES),
        Outcome.UNCHANGED: 0,
        Outcome.SKIPPED: len(BAD_FILES),
        Outcome.FAILED: 0,
    }
    session = alyx_client.get(f"/sessions/{report.eid}")
    assert (session["lab"], session["number"], session["n_trials"]) == ("cortexlab", 1, 10)
    assert session["start_time"] == "2026-01-03T00:00:00"
    assert session["users"] == ["test_user"] and session["type"] == "Experiment"
    _assert_registered_once(alyx_client, GOOD_FILES)


def test_session_record_matches_one_apis(client, alyx_client, make_session, server, tmp_path):
    """ONE-api registers the same folder on a second server: the records agree."""
    path = make_session({})
    options = {
        "n_trials": 7,
        "projects": "ibl_neuropixel_brainwide_01",
        "end_time": "2026-01-03T11:00:00",
    }
    ours = client.register_session(path, **options).session
    with AlyxTestServer() as other:
        oracle = one_api_registration(other, tmp_path / "one")
        theirs, _ = oracle.register_session(path, **options)
        theirs = oracle.one.alyx.rest("sessions", "read", id=theirs["id"])
    ignore = {"id", "url", "auto_datetime"}
    ours = alyx_client.get(f"/sessions/{ours['id']}")
    assert {k: v for k, v in ours.items() if k not in ignore} == {
        k: v for k, v in theirs.items() if k not in ignore
    }


def test_existing_session_is_updated_with_only_the_given_fields(client, alyx_client, make_session):
    path = make_session({})
    first = client.register_session(path, start_time="2026-01-03T10:30:00", task_protocol="a")

    second = client.register_session(path, n_trials=5)

    assert not second.created and second.eid == first.eid
    session = alyx_client.get(f"/sessions/{first.eid}")
    # Only n_trials changes; ONE-api would also reset the start time to midnight.
    assert (session["start_time"], session["task_protocol"], session["n_trials"]) == (
        "2026-01-03T10:30:00",
        "a",
        5,
    )
    assert len(_sessions(alyx_client)) == 1


def test_rerun_sends_only_changed_files(client, alyx_client, make_session, server):
    path = make_session(GOOD_FILES)
    client.register_session(path)
    changed = path / "alf/_ibl_trials.table.pqt"
    changed.write_bytes(b"new content")
    before = server.request_count("POST", "/register-file")

    report = client.register_session(path)

    assert report.counts[Outcome.CREATED] == 1 and report.counts[Outcome.UNCHANGED] == 4
    assert [f.path for f in report.by_status(Outcome.CREATED)] == [changed]
    assert server.request_count("POST", "/register-file") - before == 1
    _assert_registered_once(alyx_client, GOOD_FILES | {"alf/_ibl_trials.table.pqt": b"new content"})


def _count_new_sessions(register, server, paths) -> int:
    before = server.request_count()
    for path in paths:
        register(path)
    return server.request_count() - before


def test_requests_per_session_are_no_more_than_one_apis(client, make_session, tmp_path, server):
    files = {"alf/_ibl_trials.table.pqt": b"t", "alf/spikes.times.npy": b"s"}
    paths = [make_session(files, session=f"{SESSION[:-3]}{n:03d}") for n in (1, 2, 3)]
    ours = _count_new_sessions(client.register_session, server, paths)
    ours_again = _count_new_sessions(client.register_session, server, paths)
    with AlyxTestServer() as other:
        oracle = one_api_registration(other, tmp_path / "one")
        theirs = _count_new_sessions(oracle.register_session, other, paths)
        theirs_again = _count_new_sessions(oracle.register_session, other, paths)
    # ONE-api: subject, session search, user, create/update, register-file; its client also
    # read the dataset types and data formats (as ours does, lazily, within the count).
    assert theirs == theirs_again == 15
    # Ours: login, dataset types, data formats, subject once (ONE-api's client made its own
    # before the count began); then per session a search, a create, a search again (for a
    # record another machine created meanwhile) and a register-file. Again: a search, the
    # session's full record (which ONE-api's update answers) and a datasets read per session.
    assert (ours, ours_again) == (4 + 3 * 4, 3 * 3)
    assert ours - 4 < theirs


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"lab": "hoferlab"}, "does not match the lab"),
        ({"start_time": "2026-01-04T10:00:00"}, "not on the session's date"),
        ({"end_time": "2026-01-02T10:00:00"}, "before the session starts"),
        ({"start_time": "3rd of January"}, "not an ISO 8601"),
        ({"n_trials": 3, "n_correct_trials": 4}, "cannot exceed"),
        ({"n_trials": -1}, "non-negative integer"),
        ({"users": ""}, "users must be"),
        ({"json": "{not json"}, "does not parse"),
        ({"projects": [1]}, "projects must be"),
    ],
)
def test_bad_arguments_are_refused_before_sending(client, make_session, server, kwargs, error):
    path = make_session({})
    before = server.request_count()

    with pytest.raises(ValueError, match=error):
        client.register_session(path, **kwargs)

    assert server.request_count() == before


def test_reserved_and_bad_paths_are_refused(client, make_session, tmp_path):
    path = make_session({})
    with pytest.raises(TypeError, match="subject"):
        client.register_session(path, subject="other")
    with pytest.raises(ValueError, match="not a session folder"):
        client.register_session(path / "alf")
    with pytest.raises(ValueError, match="outside the session"):
        client.register_session(path, file_list=[tmp_path / "x.y.npy"])


def test_unknown_subject_and_user_stop_the_session(client, make_session, server):
    with pytest.raises(SubjectNotFound, match="nobody"):
        client.register_session(make_session({}, session="nobody/2026-01-03/001"))
    with pytest.raises(MemberNotFound, match="ghost"):
        client.register_session(make_session({}), users=["test_user", "ghost"])
    assert server.request_count("POST", "/sessions") == 0


def test_unknown_lab_is_the_servers_field_error(client, make_session, server):
    from one_flows.alyx import AlyxRequestError

    with pytest.raises(AlyxRequestError) as caught:
        client.register_session(make_session({}, session="nolab/Subjects/algernon/2026-01-03/001"))
    assert "lab" in caught.value.errors


def _drop_answer_once(server, monkeypatch, method: str, path: str) -> None:
    """The server does the work of the next matching request, then drops the connection."""
    original = server.handle
    armed = [True]

    def handle(m, target, headers, body):
        response = original(m, target, headers, body)
        if armed[0] and m == method and target.startswith(path):
            armed[0] = False
            return None
        return response

    monkeypatch.setattr(server, "handle", handle)


def test_crash_after_session_post_then_rerun_makes_one_session(
    client, alyx_client, make_session, server, monkeypatch
):
    path = make_session(GOOD_FILES)
    _drop_answer_once(server, monkeypatch, "POST", "/sessions")
    # The session is not looked for after the drop: the process crashed.
    monkeypatch.setattr(alyx_target, "CREATE_SETTLE_WAITS", ())

    with pytest.raises(AlyxTransientError):
        client.register_session(path)
    assert len(_sessions(alyx_client)) == 1  # the server did create it

    report = client.register_session(path)

    assert not report.created and report.counts[Outcome.CREATED] == len(GOOD_FILES)
    _assert_registered_once(alyx_client, GOOD_FILES)


def test_a_dropped_answer_to_the_session_post_finds_the_session_made(
    client, alyx_client, make_session, server, monkeypatch
):
    path = make_session(GOOD_FILES)
    _drop_answer_once(server, monkeypatch, "POST", "/sessions")
    monkeypatch.setattr(alyx_target, "CREATE_SETTLE_WAITS", (0.1,))

    report = client.register_session(path)

    assert report.created and report.counts[Outcome.CREATED] == len(GOOD_FILES)
    assert [s["id"] for s in _sessions(alyx_client)] == [report.eid]


def test_crash_after_register_file_then_rerun_registers_each_file_once(
    client, alyx_client, make_session, server, monkeypatch
):
    path = make_session(GOOD_FILES)
    _drop_answer_once(server, monkeypatch, "POST", "/register-file")

    with pytest.raises(AlyxTransientError):
        client.register_session(path)

    report = client.register_session(path)

    assert report.counts[Outcome.UNCHANGED] == len(GOOD_FILES)
    _assert_registered_once(alyx_client, GOOD_FILES)


def test_crash_between_batches_then_rerun_registers_each_file_once(
    alyx_client, make_session, tmp_path, monkeypatch
):
    client = RegistrationClient(alyx_client, digest_cache=tmp_path / "d.sqlite", batch_size=2)
    path = make_session(GOOD_FILES)
    original = client.target.register_files
    calls = []

    def dies_on_second_batch(batch):
        calls.append(batch)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return original(batch)

    monkeypatch.setattr(client.target, "register_files", dies_on_second_batch)
    with pytest.raises(KeyboardInterrupt):
        client.register_session(path)
    monkeypatch.setattr(client.target, "register_files", original)

    report = client.register_session(path)

    assert report.counts[Outcome.UNCHANGED] == 2
    assert report.counts[Outcome.CREATED] == len(GOOD_FILES) - 2
    _assert_registered_once(alyx_client, GOOD_FILES)


def test_failed_create_leaves_the_folder_and_rerun_registers_it(
    client, alyx_client, tmp_path, server
):
    server.faults.add(method="POST", path="/sessions", kind="status", status=503, times=1)
    with pytest.raises(AlyxTransientError):
        client.create_new_session("algernon", tmp_path, date="2026-01-03")
    path = tmp_path / "algernon/2026-01-03/001"
    assert path.is_dir() and _sessions(alyx_client) == []

    report = client.register_session(path)

    assert report.created and len(_sessions(alyx_client)) == 1


def test_register_sessions_reports_each_session(client, alyx_client, make_session):
    paths = [make_session(GOOD_FILES, session=f"algernon/2026-01-0{d}/001") for d in (3, 4, 5)]
    paths.append(make_session({}, session="nobody/2026-01-03/001"))

    reports = client.register_sessions(paths, n_trials=3)

    assert [r.session_path for r in reports] == paths
    assert [r.ok for r in reports] == [True, True, True, False]
    assert isinstance(reports[-1].error, SubjectNotFound)
    assert all(r.counts[Outcome.CREATED] == len(GOOD_FILES) for r in reports[:3])
    for day in ("2026-01-03", "2026-01-04", "2026-01-05"):
        (session,) = _sessions(alyx_client, day)
        assert len(_datasets(alyx_client, session["id"])) == len(GOOD_FILES)
