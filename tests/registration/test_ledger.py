"""The registration ledger, over real HTTP: an unchanged tree is re-registered without a request,
and any local change, or ``recheck=True``, sends exactly the sessions concerned to the server."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from one_flows.alyx import AlyxClient
from one_flows.registration import Outcome, RegistrationClient, RegistrationLedger
from one_flows.registration.client import default_ledger_path
from one_flows.registration.ledger import LedgerFile, LedgerSession
from one_flows.testing.server import AlyxTestServer

from .conftest import GOOD_FILES

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SESSIONS = [f"cortexlab/Subjects/algernon/2026-01-0{day}/001" for day in (3, 4, 5)]
HOUR_AGO_NS = time.time_ns() - 3600 * 10**9


def _age(root: Path, mtime_ns: int = HOUR_AGO_NS) -> None:
    """Date every file under ``root`` back, as files written long before registration are."""
    for folder, _, names in os.walk(root):
        for name in names:
            os.utime(Path(folder) / name, ns=(mtime_ns, mtime_ns))


@pytest.fixture
def tree(make_session, tmp_path: Path) -> list[Path]:
    """Three sessions of GOOD_FILES and BAD_FILES, written an hour ago."""
    paths = [make_session(session=s) for s in SESSIONS]
    _age(tmp_path / "data")
    return paths


@pytest.fixture
def fresh(server: AlyxTestServer, tmp_path: Path):
    """``fresh(**options)``: a RegistrationClient of a new AlyxClient (not logged in yet),
    sharing the digest cache and the ledger under tmp_path; all are closed after the test."""
    opened: list[tuple[AlyxClient, RegistrationClient]] = []

    def make(**options) -> RegistrationClient:
        alyx = AlyxClient(server.url, username=server.username, password=server.password)
        options.setdefault("digest_cache", tmp_path / "digests.sqlite")
        client = RegistrationClient(alyx, **options)
        opened.append((alyx, client))
        return client

    yield make
    for alyx, client in opened:
        client.close()
        alyx.close()


def _summary(reports) -> list[list[tuple]]:
    """What the reports say of each file, dataset ids included."""
    return [
        [
            (f.path, f.status, f.reason, f.rel_path, f.dataset_type, f.md5, f.size, f.dataset)
            for f in r.files
        ]
        for r in reports
    ]


def _created_ids(report) -> dict[str, str]:
    return {f.rel_path: f.dataset["id"] for f in report.by_status(Outcome.CREATED)}


def test_rerun_of_an_unchanged_tree_makes_no_request(server, fresh, tree, tmp_path):
    first = fresh().register_sessions(tree)
    assert all(r.ok and r.created for r in first)
    assert (tmp_path / "registrations.sqlite").is_file(), "the ledger sits beside the digests"

    before = server.request_count()
    again = fresh().register_sessions(tree)

    assert server.request_count() == before, "not even a login"
    assert [r.eid for r in again] == [r.eid for r in first]
    assert [r.created for r in again] == [False] * len(tree)
    for report, original in zip(again, first, strict=True):
        assert report.counts[Outcome.UNCHANGED] == len(GOOD_FILES)
        assert report.by_status(Outcome.SKIPPED) == original.by_status(Outcome.SKIPPED) != []
        assert {f.rel_path: f.dataset["id"] for f in report.by_status("unchanged")} == (
            _created_ids(original)
        )
    # The ledger's answer is the server's: asking it gives the same reports.
    asked = fresh(ledger=False).register_sessions(tree)
    assert server.request_count() > before
    assert _summary(again) == _summary(asked)
    assert [r.session["id"] for r in again] == [r.session["id"] for r in asked]


def test_touched_file_rehashes_and_asks_for_its_session_only(server, fresh, tree):
    fresh().register_sessions(tree)
    touched = tree[1] / "alf/probe00/spikes.times.npy"
    os.utime(touched, ns=(HOUR_AGO_NS + 10**9, HOUR_AGO_NS + 10**9))
    before = {
        (method, path): server.request_count(method, path)
        for method, path in [
            ("GET", "/sessions"),
            ("GET", "/datasets"),
            ("POST", "/register-file"),
            ("GET", "/dataset-types"),
            ("GET", "/subjects/algernon"),
        ]
    }

    reports = fresh().register_sessions(tree)

    after = {key: server.request_count(*key) - n for key, n in before.items()}
    assert after == {
        ("GET", "/sessions"): 2,  # the search, then the full record of the session found
        ("GET", "/datasets"): 1,
        ("POST", "/register-file"): 0,
        ("GET", "/dataset-types"): 0,  # the ledger knows the file's dataset type
        ("GET", "/subjects/algernon"): 0,  # the ledger knows the session
    }
    (outcome,) = [f for f in reports[1].files if f.path == touched]
    assert outcome.status is Outcome.UNCHANGED
    assert outcome.md5 == hashlib.md5(GOOD_FILES["alf/probe00/spikes.times.npy"]).hexdigest()
    assert all(r.counts[Outcome.UNCHANGED] == len(GOOD_FILES) for r in reports)

    settled = server.request_count()
    fresh().register_sessions(tree)
    assert server.request_count() == settled, "the ledger learnt the touched file's new stat"


def test_new_file_sends_only_its_session(server, fresh, tree):
    fresh().register_sessions(tree)
    new = tree[2] / "alf/probe00/spikes.amps.npy"
    new.write_bytes(b"amps" * 10)
    _age(tree[2])
    sessions = server.request_count("GET", "/sessions")
    posts = server.request_count("POST", "/register-file")

    reports = fresh().register_sessions(tree)

    assert server.request_count("GET", "/sessions") - sessions == 2  # search, full record
    assert server.request_count("POST", "/register-file") - posts == 1
    (created,) = reports[2].by_status(Outcome.CREATED)
    assert created.path == new
    assert [r.counts[Outcome.UNCHANGED] for r in reports] == [len(GOOD_FILES)] * 3
    quiet = server.request_count()
    fresh().register_sessions(tree)
    assert server.request_count() == quiet


def test_recheck_asks_the_server(server, fresh, tree):
    fresh().register_sessions(tree[:1])
    before = server.request_count("GET", "/datasets")

    report = fresh().register_session(tree[0], recheck=True)

    assert server.request_count("GET", "/datasets") - before == 1
    assert report.counts[Outcome.UNCHANGED] == len(GOOD_FILES)


def test_recheck_repairs_a_dataset_deleted_on_the_server(server, fresh, tree, alyx_client):
    (first,) = fresh().register_sessions(tree[:1])
    gone = "alf/_ibl_trials.table.pqt"
    dataset = _created_ids(first)[gone]
    server.store.execute("DELETE FROM file_records WHERE dataset = ?", (dataset,))
    server.store.execute("DELETE FROM datasets WHERE id = ?", (dataset,))

    # What the ledger cannot see: it still reports the dataset as registered.
    blind = fresh().register_session(tree[0])
    assert {f.rel_path for f in blind.by_status(Outcome.UNCHANGED)} >= {gone}

    repaired = fresh().register_session(tree[0], recheck=True)

    assert [f.rel_path for f in repaired.by_status(Outcome.CREATED)] == [gone]
    held = {d["name"]: d for d in alyx_client.list_all("/datasets", {"session": first.eid})}
    assert held["_ibl_trials.table.pqt"]["hash"] == hashlib.md5(GOOD_FILES[gone]).hexdigest()
    new_id = repaired.by_status(Outcome.CREATED)[0].dataset["id"]
    quiet = server.request_count()
    ledgered = fresh().register_session(tree[0])
    assert server.request_count() == quiet
    assert {f.rel_path: f.dataset["id"] for f in ledgered.by_status("unchanged")}[gone] == new_id


class Crash(Exception):
    """Stands for the process dying right after the server answered."""


def test_crash_before_the_ledger_write_costs_only_a_round_trip(
    server, fresh, tree, alyx_client, monkeypatch
):
    def crash(*args, **kwargs):
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(RegistrationLedger, "record", crash)
        with pytest.raises(Crash):
            fresh().register_session(tree[0])
    eids = [s["id"] for s in alyx_client.list_all("/sessions")]
    assert len(eids) == 1 and len(alyx_client.list_all("/datasets", {"session": eids[0]})) == len(
        GOOD_FILES
    )
    posts = (
        server.request_count("POST", "/register-file"),
        server.request_count("POST", "/sessions"),
    )

    report = fresh().register_session(tree[0])

    assert server.request_count("GET", "/datasets") == 2  # this run's, and ours just above
    assert (
        server.request_count("POST", "/register-file"),
        server.request_count("POST", "/sessions"),
    ) == posts, "nothing registered twice"
    assert report.eid == eids[0] and report.counts[Outcome.UNCHANGED] == len(GOOD_FILES)
    quiet = server.request_count()
    fresh().register_session(tree[0])
    assert server.request_count() == quiet


def test_session_fields_sent_before_need_no_request(server, fresh, tree, alyx_client):
    client = fresh()
    client.register_session(tree[0], n_trials=10, file_list=False)
    quiet = server.request_count()

    same = fresh().register_session(tree[0], n_trials=10, file_list=False)
    assert server.request_count() == quiet and same.session["n_trials"] == 10

    changed = fresh().register_session(tree[0], n_trials=12, file_list=False)
    assert server.request_count("PATCH") == 1
    assert changed.session["n_trials"] == alyx_client.get(f"/sessions/{same.eid}")["n_trials"] == 12
    quiet = server.request_count()
    # The session is in the ledger, its files are not yet: they go to the server.
    with_files = fresh().register_session(tree[0], n_trials=12)
    assert server.request_count("POST", "/register-file") == 1
    assert with_files.counts[Outcome.CREATED] == len(GOOD_FILES)
    assert server.request_count() > quiet


def test_explicit_file_list_and_repository_are_matched(server, fresh, tree):
    fresh().register_sessions(tree[:1])
    listed = [tree[0] / "alf/probe00/spikes.times.npy", tree[0] / "alf/foo.bar.npy"]
    quiet = server.request_count()

    report = fresh().register_session(tree[0], file_list=listed)

    assert server.request_count() == quiet
    assert [f.status for f in report.files] == [Outcome.SKIPPED, Outcome.UNCHANGED]
    # A repository the ledger did not record it in: the server decides.
    fresh().register_session(tree[0], file_list=listed[:1], repository="flatiron_cortexlab")
    assert server.request_count("GET", "/datasets") == 1
    quiet = server.request_count()
    fresh().register_session(tree[0], file_list=listed[:1], repository="flatiron_cortexlab")
    assert server.request_count() == quiet


def test_recently_modified_files_are_not_trusted(server, fresh, make_session):
    path = make_session()  # written just now: a rewrite could keep their stat
    fresh().register_session(path)
    before = server.request_count("GET", "/datasets")

    report = fresh().register_session(path)

    assert server.request_count("GET", "/datasets") - before == 1
    assert report.counts[Outcome.UNCHANGED] == len(GOOD_FILES)


@pytest.mark.parametrize(
    "options", [{"ledger": False}, {"digest_cache": False}], ids=["no ledger", "no digest cache"]
)
def test_without_a_ledger_every_run_asks(server, fresh, tree, options):
    fresh(**options).register_sessions(tree[:1])
    before = server.request_count("GET", "/datasets")
    fresh(**options).register_sessions(tree[:1])
    assert server.request_count("GET", "/datasets") - before == 1


def test_ledger_location(tmp_path, monkeypatch, server):
    monkeypatch.setenv("ONE_FLOWS_CACHE_DIR", str(tmp_path / "cache"))
    assert default_ledger_path() == tmp_path / "cache" / "registrations.sqlite"
    with AlyxClient(server.url, username=server.username, password=server.password) as alyx:
        explicit = RegistrationLedger(tmp_path / "mine.sqlite")
        client = RegistrationClient(alyx, ledger=explicit)
        assert client._registration_ledger() is explicit
        client.close()
        assert explicit.session("t", tmp_path) is None, "a ledger given is not closed"
        explicit.close()
        client = RegistrationClient(alyx, digest_cache=":memory:")
        assert client._registration_ledger().path == ":memory:"
        client.close()


def test_two_processes_share_a_ledger(server, fresh, tree, tmp_path):
    script = textwrap.dedent(
        """
        import sys
        from one_flows.alyx import AlyxClient
        from one_flows.registration import RegistrationClient
        url, user, password, digests, *sessions = sys.argv[1:]
        with AlyxClient(url, username=user, password=password) as alyx:
            client = RegistrationClient(alyx, digest_cache=digests)
            reports = client.register_sessions(sessions)
            client.close()
        assert all(r.ok for r in reports), [r.summary() for r in reports]
        """
    )
    args = [server.url, server.username, server.password, str(tmp_path / "digests.sqlite")]
    halves = [[str(tree[0]), str(tree[1])], [str(tree[2])]]
    procs = [subprocess.Popen([sys.executable, "-c", script, *args, *h]) for h in halves]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    quiet = server.request_count()

    reports = fresh().register_sessions(tree)

    assert server.request_count() == quiet
    assert [r.counts[Outcome.UNCHANGED] for r in reports] == [len(GOOD_FILES)] * 3


# -- the ledger itself ------------------------------------------------------------------------


def _entry(eid: str, files: dict[str, int], skipped: dict[str, str] | None = None) -> LedgerSession:
    return LedgerSession(
        eid,
        {"id": eid, "number": 1},
        {"n_trials": 3},
        {
            rel: LedgerFile(rel, "spikes.times", (size, 5, 2**64 - 1, 7, 6), "0" * 32, f"d-{rel}")
            for rel, size in files.items()
        },
        dict(skipped or {}),
    )


def test_ledger_round_trip_and_covered_files(tmp_path):
    with RegistrationLedger(tmp_path / "l.sqlite") as ledger:
        folder = tmp_path / "s"
        entry = _entry("e1", {"a.b.npy": 1, "c.d.npy": 2}, {"x.flag": "not an ALF file name"})
        ledger.record("alyx:x", folder, entry)
        assert ledger.session("alyx:x", folder) == entry
        assert ledger.session("alyx:y", folder) is None

        ledger.record("alyx:x", folder, _entry("e1", {"a.b.npy": 9}), covered={"a.b.npy"})
        kept = ledger.session("alyx:x", folder)
        assert {r: f.identity[0] for r, f in kept.files.items()} == {"a.b.npy": 9, "c.d.npy": 2}
        assert kept.skipped == entry.skipped

        ledger.record("alyx:x", folder, _entry("e2", {}), covered=None)
        replaced = ledger.session("alyx:x", folder)
        assert (replaced.eid, replaced.files, replaced.skipped) == ("e2", {}, {})


def test_ledger_of_another_schema_is_refused(tmp_path):
    import sqlite3

    path = tmp_path / "l.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version=99")
    with pytest.raises(ValueError, match="schema version 99"):
        RegistrationLedger(path)


def test_ledger_is_thread_safe(tmp_path):
    with RegistrationLedger(tmp_path / "l.sqlite") as ledger:
        errors: list[BaseException] = []

        def work(n: int) -> None:
            try:
                for i in range(20):
                    folder = tmp_path / f"s{n}-{i % 3}"
                    ledger.record("t", folder, _entry(f"e{n}", {f"f{i}.x.npy": i}))
                    assert ledger.session("t", folder).eid == f"e{n}"
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert ledger.session("t", tmp_path / "s5-1").files.keys() == {"f19.x.npy"}


def test_a_same_size_edit_whose_mtime_was_put_back_is_registered_again(server, fresh, tree):
    """Such an edit keeps size, mtime and inode; the ctime moves, and the ledger (and the digest
    cache) see it. Before the ctime was recorded, the session was reported unchanged."""
    (first,) = fresh().register_sessions(tree[:1])
    edited = tree[0] / "alf/probe00/spikes.times.npy"
    before = edited.stat()
    new_content = bytes(len(GOOD_FILES["alf/probe00/spikes.times.npy"]))
    with open(edited, "r+b") as f:  # in place, as an editor may write
        f.write(new_content)
    os.utime(edited, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (edited.stat().st_size, edited.stat().st_mtime_ns) == (
        before.st_size,
        before.st_mtime_ns,
    )

    report = fresh().register_session(tree[0])

    (created,) = report.by_status(Outcome.CREATED)
    assert (created.path, created.md5) == (edited, hashlib.md5(new_content).hexdigest())
    assert created.dataset["id"] == _created_ids(first)["alf/probe00/spikes.times.npy"]


def test_a_ledger_written_before_ctime_was_recorded_asks_the_target_once(
    server, fresh, tree, tmp_path
):
    fresh().register_sessions(tree[:1])
    import sqlite3

    with sqlite3.connect(tmp_path / "registrations.sqlite") as db:
        db.execute("UPDATE files SET ctime_ns = NULL")  # as rows of the earlier schema read
    asked = server.request_count()
    report = fresh().register_session(tree[0])
    assert server.request_count() > asked and report.counts[Outcome.UNCHANGED] == len(GOOD_FILES)
    quiet = server.request_count()
    fresh().register_session(tree[0])
    assert server.request_count() == quiet
