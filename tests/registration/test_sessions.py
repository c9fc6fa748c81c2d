"""Session folders and records: ISO dates, atomic numbering, create_new_session, create_sessions."""

from __future__ import annotations

import datetime
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest

from one_flows import flags
from one_flows.flags import read_flag
from one_flows.registration import Outcome, RegistrationClient, SubjectNotFound
from one_flows.registration.sessions import ensure_ISO8601, make_session_folder
from one_flows.walk import SessionKey

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.mark.parametrize(
    "date",
    [
        "2026-01-03",
        "2026-01-03T10:11:12",
        "2026-01-03 10:11:12.5",
        datetime.date(2026, 1, 3),
        datetime.datetime(2026, 1, 3, 10, 11, 12, 345),
    ],
)
def test_ensure_iso8601_agrees_with_one_api(date):
    from one.registration import RegistrationClient as OneRegistrationClient

    assert ensure_ISO8601(date) == OneRegistrationClient.ensure_ISO8601(date)


def test_ensure_iso8601_defaults_to_now_and_refuses_garbage():
    before = datetime.datetime.now()
    assert before <= datetime.datetime.fromisoformat(ensure_ISO8601(None))
    with pytest.raises(ValueError, match="not an ISO 8601"):
        ensure_ISO8601("03/01/2026")
    with pytest.raises(TypeError):
        ensure_ISO8601(20260103)


def test_session_key(tmp_path):
    key = SessionKey.from_path(tmp_path / "lab/Subjects/sub/2026-01-03/002")
    assert (key.lab, key.subject, key.date, key.number) == ("lab", "sub", "2026-01-03", "002")
    assert key.relative == "sub/2026-01-03/002"
    for bad in ("sub/2026-01-03", "sub/2026-01-03/001/alf", "sub/2026-02-30/001"):
        with pytest.raises(ValueError, match="not a session folder"):
            SessionKey.from_path(tmp_path / bad)


def test_folders_are_numbered_after_the_highest(tmp_path):
    for existing in ("001", "004", ".7", "notes"):
        (tmp_path / "sub/2026-01-03" / existing).mkdir(parents=True)
    assert make_session_folder(tmp_path, "sub", "2026-01-03") == tmp_path / "sub/2026-01-03/005"
    assert make_session_folder(tmp_path, "sub", "2026-01-04") == tmp_path / "sub/2026-01-04/001"


def test_threads_creating_folders_at_once_get_distinct_numbers(tmp_path):
    with ThreadPoolExecutor(8) as pool:
        folders = list(
            pool.map(lambda _: make_session_folder(tmp_path, "sub", "2026-01-03"), range(40))
        )
    assert sorted(f.name for f in folders) == [f"{n:03d}" for n in range(1, 41)]


def test_processes_creating_sessions_at_once_get_distinct_numbers(server, tmp_path, alyx_client):
    script = textwrap.dedent(
        f"""
        from one_flows.alyx import AlyxClient
        from one_flows.registration import RegistrationClient
        alyx = AlyxClient({server.url!r}, username={server.username!r},
                          password={server.password!r})
        client = RegistrationClient(alyx, digest_cache=False)
        for _ in range(3):
            path, eid = client.create_new_session("algernon", {str(tmp_path)!r},
                                                  date="2026-01-03")
            print(path.name, eid, flush=True)
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    lines = [line for p in procs for line in p.communicate(timeout=120)[0].split("\n") if line]
    assert all(p.returncode == 0 for p in procs)

    numbers = sorted(line.split()[0] for line in lines)
    assert numbers == [f"{n:03d}" for n in range(1, 13)]
    records = alyx_client.list_all(
        "/sessions", {"subject": "algernon", "date_range": "2026-01-03,2026-01-03"}
    )
    assert sorted(r["number"] for r in records) == list(range(1, 13))
    assert {r["id"] for r in records} == {line.split()[1] for line in lines}


def test_create_new_session_registers_with_the_date_as_start(client, alyx_client, tmp_path):
    path, eid = client.create_new_session("algernon", tmp_path, date="2026-01-03T09:15:00")

    assert path == tmp_path / "algernon/2026-01-03/001" and path.is_dir()
    session = alyx_client.get(f"/sessions/{eid}")
    assert (session["number"], session["start_time"]) == (1, "2026-01-03T09:15:00")


def test_create_new_session_without_record(client, server, tmp_path):
    client = RegistrationClient(client.target, session_root=tmp_path, digest_cache=False)
    path, eid = client.create_new_session("algernon", register=False)
    assert eid is None and path.parent.name == datetime.date.today().isoformat()
    assert server.request_count("POST", "/sessions") == 0


def test_create_new_session_checks_its_input_first(client, tmp_path):
    with pytest.raises(ValueError, match="session_root"):
        client.create_new_session("algernon")
    with pytest.raises(SubjectNotFound):
        client.create_new_session("nobody", tmp_path)
    assert not (tmp_path / "nobody").exists()


def test_create_sessions_from_flags(client, alyx_client, make_session, tmp_path):
    root = tmp_path / "data"
    good = [
        make_session({"create_me.flag": b"", "alf/spikes.times.npy": b"s"}, session=s)
        for s in ("algernon/2026-01-03/001", "cortexlab/Subjects/algernon/2026-01-04/001")
    ]
    bad = make_session({"create_me.flag": b""}, session="nobody/2026-01-03/001")

    dry_paths, dry_reports = client.create_sessions(root, dry=True)
    assert (sorted(dry_paths), dry_reports) == (sorted([*good, bad]), [])
    assert alyx_client.list_all("/sessions") == []

    paths, reports = client.create_sessions(root, register_files=True)

    outcome = {p: r for p, r in zip(paths, reports, strict=True)}
    assert [outcome[p].ok for p in good] == [True, True]
    assert [outcome[p].counts[Outcome.CREATED] for p in good] == [1, 1]
    assert isinstance(outcome[bad].error, SubjectNotFound)
    assert [(p / "create_me.flag").exists() for p in [*good, bad]] == [False, False, True]
    assert len(alyx_client.list_all("/sessions")) == 2


def test_create_sessions_lives_the_flag_life(client, alyx_client, make_session, tmp_path, caplog):
    root = tmp_path / "data"
    bad = make_session({"create_me.flag": b""}, session="nobody/2026-01-03/001")
    held = make_session({"create_me.flag.run-1.claimed": b""}, session="algernon/2026-01-04/001")
    loose = root / "algernon" / "notes"
    loose.mkdir(parents=True)
    (loose / "create_me.flag").write_bytes(b"")
    elsewhere = make_session({"create_me.flag": b""}, session="algernon/2026-01-05/001")

    paths, reports = client.create_sessions(root, glob_pattern="nobody/**/create_me.flag")

    # Only pending flags in session folders that the whole pattern matches are taken.
    assert paths == [bad]
    assert "not in a session folder" in caplog.text
    assert isinstance(reports[0].error, SubjectNotFound)
    # The failed session's flag is given back, with the reason in its history.
    history = read_flag(bad / "create_me.flag").records
    assert [r["event"] for r in history] == ["released"]
    assert "nobody" in history[0]["reason"]
    assert (held / "create_me.flag.run-1.claimed").exists()
    assert (elsewhere / "create_me.flag").exists() and alyx_client.list_all("/sessions") == []


def test_create_sessions_reports_a_flag_fault_and_goes_on(
    client, alyx_client, make_session, tmp_path, monkeypatch
):
    root = tmp_path / "data"
    stuck, good, gone = (
        make_session({"create_me.flag": b""}, session=f"algernon/2026-01-0{day}/001")
        for day in (3, 4, 5)
    )
    claim, complete = flags.claim, flags.complete

    def claim_or_fail(flag, run_id):
        if flag.session_path == stuck:
            raise flags.FlagError(flag.path, "cannot claim: Permission denied")
        return claim(flag, run_id)

    def lose_then_complete(held):
        if held.source.session_path == gone:
            held.flag.path.unlink()  # reaped by another run meanwhile
        return complete(held)

    monkeypatch.setattr(flags, "claim", claim_or_fail)
    monkeypatch.setattr(flags, "complete", lose_then_complete)

    paths, reports = client.create_sessions(root)

    outcome = dict(zip(paths, reports, strict=True))
    assert sorted(outcome) == [stuck, good, gone]
    assert isinstance(outcome[stuck].error, flags.FlagError) and outcome[stuck].session is None
    assert outcome[good].ok and not (good / "create_me.flag").exists()
    # Registered, but its flag's fate is unknown: the report says both.
    assert isinstance(outcome[gone].error, flags.ClaimLost) and outcome[gone].created
    assert (stuck / "create_me.flag").exists()
    assert len(alyx_client.list_all("/sessions")) == 2


def test_create_sessions_gives_the_claim_back_when_interrupted(
    client, alyx_client, make_session, tmp_path, monkeypatch
):
    root = tmp_path / "data"
    path = make_session({"create_me.flag": b""}, session="algernon/2026-01-03/001")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(client, "register_session", interrupted)
    with pytest.raises(KeyboardInterrupt):
        client.create_sessions(root)

    assert [p.name for p in path.iterdir()] == ["create_me.flag"]
    assert [r["event"] for r in read_flag(path / "create_me.flag").records] == ["released"]
