"""The two registration targets behind one interface: AlyxTarget and LocalTarget."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import socket

import pytest
import requests

from one_flows.alyx import AlyxClient, AlyxTransientError
from one_flows.cache import tables as cache_tables
from one_flows.errors import is_outage
from one_flows.registration import NO_DATASET_TYPE, Outcome, RegistrationClient
from one_flows.targets import (
    AlyxTarget,
    DatasetType,
    FileBatch,
    LocalTarget,
    RegistrationTarget,
    TargetUnavailable,
)
from one_flows.targets import alyx as alyx_target

from .conftest import GOOD_FILES

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_both_targets_implement_the_interface(alyx_client, tmp_path):
    assert isinstance(AlyxTarget(alyx_client), RegistrationTarget)
    assert isinstance(LocalTarget(tmp_path), RegistrationTarget)


def test_file_batch_checks_parallel_lists():
    with pytest.raises(ValueError, match="one hash, size and version per file"):
        FileBatch("s/2026-01-01/001", ["a.b.npy", "c.d.npy"], [None], [1, 2], [None, None])


def test_alyx_session_datasets_carry_session_relative_paths(client, make_session):
    path = make_session(GOOD_FILES)
    report = client.register_session(path)

    held = client.target.session_datasets(report.eid)

    assert {d.rel_path: (d.hash, d.file_size) for d in held} == {
        rel: (hashlib.md5(data).hexdigest(), len(data)) for rel, data in GOOD_FILES.items()
    }
    assert {d.id for d in held} == {f.dataset["id"] for f in report.files if f.dataset}
    # Registered into no repository: Alyx has file records, none of which exists.
    assert all(d.repositories == frozenset() for d in held)
    client.register_session(path, repository="flatiron_cortexlab", recheck=True)
    held = client.target.session_datasets(report.eid)
    assert all(d.repositories == {"flatiron_cortexlab"} for d in held)


def test_alyx_reference_lists_are_read_once(client, server):
    for _ in range(3):
        client.target.dataset_types()
        client.target.file_extensions()
    assert server.request_count("GET", "/dataset-types") == 1
    assert server.request_count("GET", "/data-formats") == 1


def test_local_registration_is_read_by_one_api(make_session, tmp_path):
    from one.api import One

    cache = tmp_path / "cache"
    client = RegistrationClient(LocalTarget(cache), digest_cache=False)
    path = make_session(GOOD_FILES)

    first = client.register_session(path, task_protocol="choiceWorld")
    again = client.register_session(path)

    assert first.counts[Outcome.CREATED] == len(GOOD_FILES)
    assert again.counts[Outcome.UNCHANGED] == len(GOOD_FILES) and again.eid == first.eid
    one = One(cache_dir=cache, mode="local")
    (eid,) = one.search(subject="algernon", date="2026-01-03", number=1)
    assert str(eid) == first.eid
    datasets = one.list_datasets(eid, details=True)
    assert {row.rel_path: (row.hash, row.file_size) for row in datasets.itertuples()} == {
        rel: (hashlib.md5(data).hexdigest(), len(data)) for rel, data in GOOD_FILES.items()
    }
    assert one.get_details(eid)["lab"] == "cortexlab"


def test_local_dataset_types_restrict_what_is_registered(make_session, tmp_path):
    target = LocalTarget(tmp_path / "cache", dataset_types=[DatasetType("spikes.times", "")])
    client = RegistrationClient(target, digest_cache=False)
    path = make_session({"alf/spikes.times.npy": b"t", "alf/spikes.amps.npy": b"a"})

    report = client.register_session(path)

    assert {f.rel_path: (f.status, f.reason) for f in report.files} == {
        "alf/spikes.times.npy": (Outcome.CREATED, None),
        "alf/spikes.amps.npy": (Outcome.SKIPPED, NO_DATASET_TYPE),
    }


def test_local_files_of_an_unregistered_session_fail(make_session, tmp_path):
    client = RegistrationClient(LocalTarget(tmp_path / "cache"), digest_cache=False)
    path = make_session({"alf/spikes.times.npy": b"t"})

    (outcome,) = client.register_files([path / "alf/spikes.times.npy"]).outcomes

    assert outcome.status is Outcome.FAILED and "no session" in outcome.reason


def test_local_animal_care_is_appended(tmp_path):
    client = RegistrationClient(LocalTarget(tmp_path, user="me"), digest_cache=False)
    client.register_weight("algernon", 20.5, "2026-01-03T09:00:00")
    client.register_water_administration("algernon", 1.25, date_time="2026-01-03T10:00:00")

    weighing = json.loads((tmp_path / "weighings.jsonl").read_text())
    water = json.loads((tmp_path / "water_administrations.jsonl").read_text())
    assert weighing == {
        "subject": "algernon",
        "date_time": "2026-01-03T09:00:00",
        "weight": 20.5,
        "user": "me",
    }
    assert (water["water_administered"], water["water_type"], water["user"]) == (
        1.25,
        "Water",
        "me",
    )


def _timing_out_target(server, monkeypatch, delay: float) -> AlyxTarget:
    monkeypatch.setattr(alyx_target, "CREATE_SETTLE_WAITS", (0.2, 0.4, 0.8, 1.6))
    server.faults.add(method="POST", path="/sessions", kind="delay", seconds=delay, times=1)
    client = AlyxClient(server.url, username=server.username, password=server.password, timeout=0.3)
    return AlyxTarget(client)


def test_alyx_target_finds_the_session_a_timed_out_creation_made(server, monkeypatch):
    target = _timing_out_target(server, monkeypatch, delay=0.8)
    record = {"subject": "algernon", "number": 1, "start_time": "2026-01-03T00:00:00"}
    with target.client:
        created = target.create_session(record)
    held = server.store.all("SELECT id FROM sessions WHERE subject = 'algernon'")
    assert [r["id"] for r in held] == [created["id"]]
    assert created["number"] == 1 and created["start_time"].startswith("2026-01-03")


def test_alyx_target_raises_the_timeout_when_no_session_shows(server, monkeypatch):
    target = _timing_out_target(server, monkeypatch, delay=0.8)
    monkeypatch.setattr(alyx_target, "CREATE_SETTLE_WAITS", ())
    record = {"subject": "algernon", "number": 1, "start_time": "2026-01-03T00:00:00"}
    with target.client, pytest.raises(AlyxTransientError) as raised:
        target.create_session(record)
    assert isinstance(raised.value.__cause__, requests.Timeout)


def test_alyx_target_raises_a_connect_timeout_at_once(monkeypatch):
    # A listener whose accept queue is full drops new connections: they time out connecting.
    with socket.socket() as listener, socket.socket() as queued:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        queued.connect(listener.getsockname())
        url = "http://{}:{}".format(*listener.getsockname())
        client = AlyxClient(url, token="t", timeout=(0.2, 5))
        target = AlyxTarget(client)
        looked_for = []
        monkeypatch.setattr(target, "find_sessions", lambda *args: looked_for.append(args) or [])
        record = {"subject": "algernon", "number": 1, "start_time": "2026-01-03T00:00:00"}
        with client, pytest.raises(AlyxTransientError) as raised:
            target.create_session(record)

    # The request never reached a server: no session can have been made, none is looked for.
    assert isinstance(raised.value.__cause__, requests.ConnectTimeout)
    assert looked_for == []


def test_local_tables_on_a_full_disk_are_an_outage(make_session, tmp_path, monkeypatch):
    client = RegistrationClient(LocalTarget(tmp_path / "cache"), digest_cache=False)
    path = make_session({"alf/spikes.times.npy": b"t"})

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(cache_tables, "write_parquet_atomic", full_disk)
    with pytest.raises(TargetUnavailable) as raised:
        client.register_session(path)

    # The file system's fault, not the session's: it spends none of the session's attempts.
    assert is_outage(raised.value) and raised.value.cause == "tables not written"
    assert raised.value.__cause__.errno == errno.ENOSPC
