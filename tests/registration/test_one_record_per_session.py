"""One session, one record, whatever its folder is called (issue #13.2).

Folders ``S/D/001``, ``S/D/01``, ``S/D/1`` and ``lab/Subjects/S/D/001`` name one session in Alyx
(subject, date, number). Registered at once by the threads or processes of one machine they make
one record: creation holds a lock per session key. Two machines are not held back (Alyx has no
unique constraint): the records they make are reported as duplicates. New session folders are
numbered past the sessions the target already holds for the subject and day.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from contextlib import closing
from pathlib import Path

import pytest

from one_flows.registration import RegistrationClient
from one_flows.registration.client import SessionKey, default_lock_folder
from one_flows.registration.sessions import session_lock
from one_flows.targets import LocalTarget

DAY = "2026-01-03"
FILES = {"alf/spikes.times.npy": b"times", "alf/_ibl_trials.table.pqt": b"trials"}
SLOW_CREATE = 1.0
"""Seconds each ``POST /sessions`` waits before the server creates the record: the window in
which, without the lock, another registration of the session finds nothing and posts too."""


def _aliases(make_session, tmp_path: Path) -> list[Path]:
    """Four folders of one session: three spellings of its number and one under a lab folder,
    in another data root."""
    folders = [make_session(FILES, session=f"algernon/{DAY}/{n}") for n in ("001", "01", "1")]
    lab_root = tmp_path / "other-root"
    folders.append(
        make_session(FILES, session=f"cortexlab/Subjects/algernon/{DAY}/001", root=lab_root)
    )
    return folders


def _records(alyx) -> list[dict]:
    return alyx.list_all("/sessions", {"subject": "algernon", "date_range": f"{DAY},{DAY}"})


def test_threads_registering_aliases_of_a_session_make_one_record(
    alyx_client, server, make_session, tmp_path
):
    folders = _aliases(make_session, tmp_path)
    server.faults.add(method="POST", path="/sessions", kind="delay", seconds=SLOW_CREATE, times=4)
    with closing(
        RegistrationClient(alyx_client, max_workers=len(folders), digest_cache=False)
    ) as client:
        reports = client.register_sessions(folders)

    assert [r.error for r in reports] == [None] * len(folders)
    (record,) = _records(alyx_client)
    assert {r.eid for r in reports} == {record["id"]}
    assert sum(r.created for r in reports) == 1
    assert server.request_count("POST", "/sessions") == 1
    assert [r.duplicates for r in reports] == [[]] * len(folders)


_REGISTER = """
import json, sys
from contextlib import closing
from one_flows.alyx import AlyxClient
from one_flows.registration import RegistrationClient
alyx = AlyxClient({url!r}, username={username!r}, password={password!r})
with closing(RegistrationClient(alyx, digest_cache=False)) as client:
    report = client.register_session(sys.argv[1], file_list=False)
print(json.dumps({{"eid": report.eid, "created": report.created,
                  "duplicates": report.duplicates}}))
"""


def _register_in_processes(server, folders: list[Path], cache_dirs: list[Path]) -> list[dict]:
    """Register each folder in its own process, all at once; each process keeps its locks
    beside its own digest cache folder (one per machine)."""
    script = _REGISTER.format(url=server.url, username=server.username, password=server.password)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(folder)],
            env={**os.environ, "ONE_FLOWS_CACHE_DIR": str(cache_dir)},
            stdout=subprocess.PIPE,
            text=True,
        )
        for folder, cache_dir in zip(folders, cache_dirs, strict=True)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), outputs
    return [json.loads(out) for out in outputs]


def test_processes_of_one_machine_registering_aliases_make_one_record(
    alyx_client, server, make_session, tmp_path
):
    folders = _aliases(make_session, tmp_path)
    # Slow enough that every process has started and looked before the first record exists.
    server.faults.add(method="POST", path="/sessions", kind="delay", seconds=3.0, times=4)

    results = _register_in_processes(server, folders, [tmp_path / "machine"] * len(folders))

    (record,) = _records(alyx_client)
    assert {r["eid"] for r in results} == {record["id"]}
    assert sum(r["created"] for r in results) == 1
    assert server.request_count("POST", "/sessions") == 1


def test_two_machines_racing_are_reported_and_agree_on_one_record(
    alyx_client, server, make_session, tmp_path
):
    """No lock reaches another machine, so both create a record (the limit the README states);
    the later creator sees both, reports the other, and both register to the same one."""
    folder = make_session(FILES, session=f"algernon/{DAY}/001")
    server.faults.add(method="POST", path="/sessions", kind="delay", seconds=3.0, times=2)

    results = _register_in_processes(
        server, [folder, folder], [tmp_path / "machine-a", tmp_path / "machine-b"]
    )

    records = _records(alyx_client)
    assert len(records) == 2
    ids = sorted(r["id"] for r in records)
    reporting = [r for r in results if r["duplicates"]]
    assert reporting, "the later of two racing creators must see the other's record"
    used = {r["eid"] for r in reporting}
    assert len(used) == 1
    assert [sorted([*r["duplicates"], r["eid"]]) for r in reporting] == [ids] * len(reporting)

    # Any later registration that asks the server reports them too, and uses the same record.
    with closing(RegistrationClient(alyx_client, digest_cache=False)) as client:
        report = client.register_session(folder, recheck=True)
    assert report.eid in used
    assert sorted([*report.duplicates, report.eid]) == ids
    assert "duplicate session records" in report.summary()


def test_create_new_session_numbers_past_the_sessions_of_other_machines(
    client, alyx_client, tmp_path
):
    others = [
        alyx_client.post(
            "/sessions", {"subject": "algernon", "number": n, "start_time": f"{DAY}T08:00:0{n}"}
        )
        for n in (1, 2)
    ]

    path, eid = client.create_new_session("algernon", tmp_path, date=f"{DAY}T10:00:00")

    assert path == tmp_path / f"algernon/{DAY}/003"
    assert alyx_client.get(f"/sessions/{eid}")["number"] == 3
    for other in others:  # not taken over: start times as the other machine set them
        assert alyx_client.get(f"/sessions/{other['id']}")["start_time"] == other["start_time"]


def test_create_new_session_numbers_past_the_sessions_of_local_tables(tmp_path):
    target = LocalTarget(tmp_path / "tables")
    elsewhere = tmp_path / "elsewhere" / f"algernon/{DAY}/001"
    elsewhere.mkdir(parents=True)
    with closing(RegistrationClient(target, digest_cache=False)) as client:
        client.register_session(elsewhere)
        path, _ = client.create_new_session("algernon", tmp_path / "here", date=DAY)

    assert path.name == "002"
    assert [s["number"] for s in target.find_sessions("algernon", DAY)] == [1, 2]


def test_a_session_lock_is_released_when_its_holder_dies(tmp_path):
    key = SessionKey.from_path(tmp_path / f"algernon/{DAY}/001")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from one_flows.walk import SessionKey
                from one_flows.registration.sessions import session_lock
                key = SessionKey.from_path({str(key.path)!r})
                with session_lock({str(tmp_path / "locks")!r}, "alyx:x", key):
                    print("held", flush=True)
                    time.sleep(600)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline() == "held\n"
    taken = threading.Event()

    def take() -> None:
        with session_lock(
            tmp_path / "locks", "alyx:x", SessionKey.from_path(tmp_path / f"algernon/{DAY}/1")
        ):
            taken.set()

    waiter = threading.Thread(target=take, daemon=True)
    waiter.start()
    waiter.join(0.5)
    assert not taken.is_set()  # the number spelled 1 is the same session: it waits
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    waiter.join(60)
    assert taken.is_set()
    assert list((tmp_path / "locks").iterdir()) == []  # the last holder removed its file
    with session_lock(tmp_path / "locks", "alyx:x", key):  # and it can be taken again
        pass


def test_session_locks_are_kept_beside_the_digest_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("ONE_FLOWS_CACHE_DIR", str(tmp_path))
    assert default_lock_folder() == tmp_path / "session-locks"


@pytest.mark.parametrize("number", ["001", "01", "1"])
def test_other_sessions_are_not_held_by_a_lock(tmp_path, number):
    key = SessionKey.from_path(tmp_path / f"algernon/{DAY}/{number}")
    other = SessionKey.from_path(tmp_path / f"algernon/{DAY}/002")
    with session_lock(tmp_path, "alyx:x", key):
        with session_lock(tmp_path, "alyx:x", other):
            pass
        with session_lock(tmp_path, "alyx:y", key):  # another target
            pass


def test_local_tables_take_a_session_under_a_lab_folder_as_the_same_session(make_session, tmp_path):
    target = LocalTarget(tmp_path / "tables")
    plain = make_session(FILES, session=f"algernon/{DAY}/001")
    under_lab = make_session(
        {"alf/spikes.times.npy": b"times, longer now"},
        session=f"cortexlab/Subjects/algernon/{DAY}/001",
        root=tmp_path / "other-root",
    )
    with closing(RegistrationClient(target, digest_cache=False)) as client:
        first = client.register_session(plain)
        second = client.register_session(under_lab)

    assert second.eid == first.eid
    assert [o.status.value for o in second.files] == ["created"]
    (session,) = target.find_sessions("algernon", DAY, 1)
    held = {d.rel_path: d.file_size for d in target.session_datasets(session["id"])}
    assert held == {"alf/spikes.times.npy": 17, "alf/_ibl_trials.table.pqt": 6}
