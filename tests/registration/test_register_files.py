"""register_files: ONE-api's request bodies, per-file outcomes, partial failures, protection."""

from __future__ import annotations

import datetime
import shutil
from pathlib import Path

import pytest

from one_flows.alyx import AlyxServerError
from one_flows.errors import is_outage
from one_flows.registration import (
    NO_DATASET_TYPE,
    NOT_ALF,
    NOT_IN_SESSION,
    PROTECTED,
    UNKNOWN_EXTENSION,
    Outcome,
    RegistrationClient,
)
from one_flows.targets import DatasetType

from .conftest import BAD_FILES, GOOD_FILES

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _files(session: Path, rels) -> list[Path]:
    return [session / rel for rel in rels]


def _register_session_record(client: RegistrationClient, session: Path) -> str:
    return client.register_session(session, file_list=False).eid


@pytest.mark.parametrize(
    ("session", "options"),
    [
        ("cortexlab/Subjects/algernon/2026-01-03/001", {}),
        ("algernon/2026-01-03/1", {"versions": ["1.0", None], "default": False}),
        (
            "cortexlab/Subjects/algernon/2026-01-03/001",
            {"max_md5_size": 300, "repository": "flatiron_cortexlab", "server_only": True},
        ),
        ("cortexlab/Subjects/algernon/2026-01-03/002", {"exists": False, "created_by": "x"}),
    ],
)
def test_dry_payload_is_one_apis(client, one_registration, make_session, session, options):
    path = make_session(GOOD_FILES, session=session)
    files = sorted(_files(path, GOOD_FILES))

    ours = client.register_files(files, dry=True, **options)
    theirs = one_registration.register_files(files, dry=True, **options)

    assert ours == [p for p in theirs if p is not None]


def test_dry_payload_groups_files_by_session_as_one_api(client, one_registration, make_session):
    first = make_session(GOOD_FILES)
    second = make_session(GOOD_FILES, session="algernon/2026-01-04/001")
    files = [*_files(first, GOOD_FILES), *_files(second, GOOD_FILES)]

    ours = client.register_files(files, dry=True)

    assert len(ours) == 2
    assert ours == one_registration.register_files(files, dry=True)


def test_dry_sends_nothing(client, server, make_session):
    path = make_session()
    client.register_files(_files(path, GOOD_FILES), dry=True)
    assert server.request_count("POST", "/register-file") == 0


def test_batches_are_cut_at_batch_size(alyx_client, tmp_path, make_session, server):
    path = make_session(GOOD_FILES)
    client = RegistrationClient(alyx_client, digest_cache=False, batch_size=2)
    _register_session_record(client, path)
    before = server.request_count("POST", "/register-file")

    outcomes = client.register_files(_files(path, GOOD_FILES)).outcomes

    assert server.request_count("POST", "/register-file") - before == 3
    assert [o.status for o in outcomes] == [Outcome.CREATED] * len(GOOD_FILES)


def test_every_input_gets_an_outcome_in_input_order(client, make_session, tmp_path):
    path = make_session()
    _register_session_record(client, path)
    stray = tmp_path / "elsewhere" / "licks.times.npy"
    stray.parent.mkdir()
    stray.write_bytes(b"x")
    missing = path / "alf" / "_ibl_trials.intervals.npy"
    inputs = [*_files(path, BAD_FILES), stray, missing, *_files(path, GOOD_FILES)]

    outcomes = client.register_files(inputs).outcomes

    assert [o.path for o in outcomes] == inputs
    reasons = {o.path.name: (o.status, o.reason) for o in outcomes}
    assert reasons["foo.bar.npy"] == (Outcome.SKIPPED, NO_DATASET_TYPE)
    assert reasons["notes.txt"] == (Outcome.SKIPPED, NOT_ALF)
    assert reasons["spikes.times.xyz"] == (Outcome.SKIPPED, UNKNOWN_EXTENSION)
    assert reasons["licks.times.npy"] == (Outcome.SKIPPED, NOT_IN_SESSION)
    assert reasons["_ibl_trials.intervals.npy"] == (Outcome.SKIPPED, "missing")
    created = outcomes[-len(GOOD_FILES) :]
    assert all(o.status is Outcome.CREATED for o in created)
    assert [o.rel_path for o in created] == list(GOOD_FILES)
    assert [o.dataset["name"] for o in created] == [Path(r).name for r in GOOD_FILES]


def test_registered_hashes_and_sizes_are_the_files(client, alyx_client, make_session):
    import hashlib

    path = make_session(GOOD_FILES)
    eid = _register_session_record(client, path)
    client.register_files(_files(path, GOOD_FILES))

    held = {d["name"]: d for d in alyx_client.list_all("/datasets", {"session": eid})}
    for rel, data in GOOD_FILES.items():
        assert held[Path(rel).name]["hash"] == hashlib.md5(data).hexdigest()
        assert held[Path(rel).name]["file_size"] == len(data)


def test_files_at_or_above_max_md5_size_are_registered_without_hash(
    client, alyx_client, make_session
):
    path = make_session({"alf/_ibl_trials.table.pqt": b"a" * 10, "alf/spikes.times.npy": b"b" * 9})
    eid = _register_session_record(client, path)

    outcomes = client.register_files(
        _files(path, ["alf/_ibl_trials.table.pqt"]), max_md5_size=10
    ).outcomes
    outcomes += client.register_files(
        _files(path, ["alf/spikes.times.npy"]), max_md5_size=10
    ).outcomes

    assert [o.md5 is None for o in outcomes] == [True, False]
    assert all(o.status is Outcome.CREATED for o in outcomes)
    held = {d["name"]: d["hash"] for d in alyx_client.list_all("/datasets", {"session": eid})}
    assert held == {"_ibl_trials.table.pqt": "", "spikes.times.npy": outcomes[1].md5}


def test_server_refusing_one_file_fails_only_that_file(
    client, alyx_client, make_session, monkeypatch
):
    """A type the client knows but the server does not: Alyx answers 500 for the whole batch,
    naming the file; the other files are registered and the named one reported failed."""
    files = {
        "alf/_ibl_trials.table.pqt": b"a",
        "alf/foo.bar.npy": b"b",
        "alf/spikes.times.npy": b"c",
    }
    path = make_session(files)
    eid = _register_session_record(client, path)
    known = client.target.dataset_types()
    monkeypatch.setattr(
        client.target, "dataset_types", lambda: [*known, DatasetType("foo.bar", "foo.bar.*")]
    )
    client._matcher = None

    outcomes = client.register_files(_files(path, files)).outcomes

    status = {o.path.name: o.status for o in outcomes}
    assert status == {
        "_ibl_trials.table.pqt": Outcome.CREATED,
        "foo.bar.npy": Outcome.FAILED,
        "spikes.times.npy": Outcome.CREATED,
    }
    assert 'No dataset type found for filename "foo.bar.npy"' in outcomes[1].reason
    names = sorted(d["name"] for d in alyx_client.list_all("/datasets", {"session": eid}))
    assert names == ["_ibl_trials.table.pqt", "spikes.times.npy"]


def test_request_level_refusal_fails_every_file(client, make_session, server):
    path = make_session(GOOD_FILES)
    _register_session_record(client, path)
    before = server.request_count("POST", "/register-file")

    outcomes = client.register_files(_files(path, GOOD_FILES), repository="nowhere").outcomes

    assert {o.status for o in outcomes} == {Outcome.FAILED}
    assert all("nowhere" in o.reason or "repository" in o.reason.lower() for o in outcomes)
    assert server.request_count("POST", "/register-file") - before == 1


def test_a_500_naming_no_file_is_the_servers_failure_raised_without_retrying(
    client, make_session, server
):
    """Not the files' fault (an outage): raised for the caller to retry later, not reported as
    failed files."""
    path = make_session(GOOD_FILES)
    _register_session_record(client, path)
    server.faults.add(method="POST", path="/register-file", kind="status", status=500, times=1)

    with pytest.raises(AlyxServerError, match="500") as raised:
        client.register_files(_files(path, GOOD_FILES))

    assert is_outage(raised.value)
    assert server.request_count("POST", "/register-file") == 1


def test_transient_fault_propagates(client, make_session, server):
    from one_flows.alyx import AlyxTransientError

    path = make_session(GOOD_FILES)
    _register_session_record(client, path)
    server.faults.add(method="POST", path="/register-file", kind="status", status=503)

    with pytest.raises(AlyxTransientError):
        client.register_files(_files(path, GOOD_FILES))


def _protect(alyx, eid: str, name: str) -> None:
    if not alyx.list_all("/tags"):
        alyx.post("/tags", {"name": "locked", "protected": True, "public": False})
    for dataset in alyx.list_all("/datasets", {"session": eid}):
        if dataset["name"] == name:
            alyx.patch(f"/datasets/{dataset['url'][-36:]}", {"tags": ["locked"]})


PROTECTION_FILES = {"alf/_ibl_trials.table.pqt": b"v1", "alf/licks.times.npy": b"licks"}


def _protected_session(client, alyx, make_session, root: Path) -> Path:
    path = make_session({"alf/_ibl_trials.table.pqt": b"v1"}, root=root)
    eid = _register_session_record(client, path)
    client.register_files(_files(path, ["alf/_ibl_trials.table.pqt"]))
    _protect(alyx, eid, "_ibl_trials.table.pqt")
    make_session({"alf/_ibl_trials.table.pqt": b"v2", "alf/licks.times.npy": b"l"}, root=root)
    return path


def test_protected_dataset_moves_to_a_new_revision_like_one_api(
    client, alyx_client, make_session, one_registration, tmp_path
):
    ours = _protected_session(client, alyx_client, make_session, tmp_path / "ours")
    theirs = tmp_path / "theirs" / ours.relative_to(tmp_path / "ours")
    shutil.copytree(ours, theirs)
    today = datetime.date.today().isoformat()

    outcomes = client.register_files(_files(ours, PROTECTION_FILES)).outcomes

    assert [o.status for o in outcomes] == [Outcome.CREATED, Outcome.CREATED]
    moved = outcomes[0]
    assert moved.rel_path == f"alf/#{today}#/_ibl_trials.table.pqt"
    assert moved.moved_from == ours / "alf/_ibl_trials.table.pqt"
    assert moved.path.read_bytes() == b"v2" and not moved.moved_from.exists()
    assert moved.dataset["revision"] == today
    # ONE-api, on an identical tree, moves the file to the same place.
    records = one_registration.register_files(_files(theirs, PROTECTION_FILES))
    assert (theirs / moved.rel_path).exists()
    assert [r["revision"] for r in records] == [today, ""]


def test_protected_dataset_reported_when_asked_not_to_move(
    client, alyx_client, make_session, tmp_path
):
    path = _protected_session(client, alyx_client, make_session, tmp_path / "data")

    outcomes = client.register_files(_files(path, PROTECTION_FILES), protected="fail").outcomes

    assert [(o.status, o.reason) for o in outcomes] == [
        (Outcome.FAILED, PROTECTED),
        (Outcome.CREATED, None),
    ]
    assert (path / "alf/_ibl_trials.table.pqt").read_bytes() == b"v2"


def test_protected_revision_folder_taken_is_failed_not_overwritten(
    client, alyx_client, make_session, tmp_path
):
    path = _protected_session(client, alyx_client, make_session, tmp_path / "data")
    today = datetime.date.today().isoformat()
    squatter = path / "alf" / f"#{today}#" / "_ibl_trials.table.pqt"
    squatter.parent.mkdir()
    squatter.write_bytes(b"someone else's")

    outcomes = client.register_files(_files(path, PROTECTION_FILES)).outcomes

    assert outcomes[0].status is Outcome.FAILED
    assert outcomes[0].reason.startswith(PROTECTED)
    assert squatter.read_bytes() == b"someone else's"
    assert outcomes[1].status is Outcome.CREATED
