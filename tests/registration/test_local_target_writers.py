"""Registration into local tables by many writers at once, and the ledger, which is never trusted
over the tables it describes."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from one_flows.cache import load_tables, save_tables
from one_flows.registration import Outcome, RegistrationClient
from one_flows.targets import LocalTarget

from .conftest import GOOD_FILES


def _aged(session: Path) -> Path:
    """Date the session's files an hour back, so the ledger records them (see ledger.settled)."""
    when = time.time() - 3600
    for path in session.rglob("*"):
        os.utime(path, (when, when))
    return session


@pytest.fixture
def client(tmp_path: Path):
    """A client of local tables in tmp_path/tables with a ledger, as `one-flows register` has."""
    rc = RegistrationClient(
        LocalTarget(tmp_path / "tables"),
        digest_cache=tmp_path / "digests.sqlite",
        ledger=tmp_path / "ledger.sqlite",
    )
    yield rc
    rc.close()


def test_a_session_the_tables_lost_is_registered_again_whatever_the_ledger_says(
    tmp_path, client, make_session, monkeypatch
):
    session = _aged(make_session(GOOD_FILES))
    first = client.register_session(session)
    assert first.counts[Outcome.CREATED] == len(GOOD_FILES)

    # The session's rows are lost (as a writer without the lock lost them)
    tables_dir = tmp_path / "tables"
    tables = load_tables(tables_dir)
    save_tables(
        type(tables)(
            tables.sessions.drop(index=first.eid),
            tables.datasets.drop(index=first.eid, level="eid"),
            tables.metadata,
        ),
        tables_dir,
    )
    again = client.register_session(session)
    assert again.counts[Outcome.CREATED] == len(GOOD_FILES)
    held = load_tables(tables_dir)
    assert first.eid in held.sessions.index
    assert len(held.datasets.xs(first.eid, level="eid")) == len(GOOD_FILES)

    # One dataset lost: registered again too
    dropped = held.datasets.index[0]
    save_tables(
        type(held)(held.sessions, held.datasets.drop(index=[dropped]), held.metadata), tables_dir
    )
    third = client.register_session(session)
    assert third.counts[Outcome.CREATED] == 1
    assert dropped in load_tables(tables_dir).datasets.index

    # While the tables hold everything, the ledger answers alone: the target is not written.
    monkeypatch.setattr(client.target, "register_files", pytest.fail)
    monkeypatch.setattr(client.target, "create_session", pytest.fail)
    fourth = client.register_session(session)
    assert fourth.counts[Outcome.UNCHANGED] == len(GOOD_FILES)


def test_threads_and_targets_registering_into_one_folder_lose_nothing(tmp_path, make_session):
    sessions = [
        make_session(GOOD_FILES, session=f"cortexlab/Subjects/algernon/2026-01-{day:02d}/001")
        for day in range(1, 9)
    ]
    tables_dir = tmp_path / "tables"
    start = threading.Barrier(4)

    def register(part: list[Path]) -> None:
        # Each thread has its own target and client, as separate runs have.
        rc = RegistrationClient(LocalTarget(tables_dir), digest_cache=False, max_workers=2)
        start.wait()
        try:
            for session in part:
                rc.register_session(session)
        finally:
            rc.close()

    # Four writers, each session registered by two of them
    parts = [sessions[i : i + 4] for i in (0, 2, 4)] + [sessions[6:] + sessions[:2]]
    threads = [threading.Thread(target=register, args=(part,)) for part in parts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    tables = load_tables(tables_dir)
    assert len(tables.sessions) == len(sessions) and tables.sessions.index.is_unique
    assert len(tables.datasets) == len(sessions) * len(GOOD_FILES)
    assert tables.datasets.index.is_unique
