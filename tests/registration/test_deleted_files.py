"""A registered file deleted from its session folder is reported at the session's next
registration (issue #13.3): a WARNING naming it and ``SessionReport.deleted``; local tables mark it
``exists = False``, Alyx is left to the lab."""

from __future__ import annotations

import logging
import os
import time
from contextlib import closing

from one_flows.cache import load_tables
from one_flows.registration import Outcome, RegistrationClient
from one_flows.targets import LocalTarget

from .conftest import GOOD_FILES

GONE = "alf/probe00/spikes.times.npy"


def test_a_file_gone_from_a_session_is_reported_and_alyx_left_as_it_is(
    client, alyx_client, make_session, caplog
):
    session = make_session(GOOD_FILES)
    first = client.register_session(session)
    (session / GONE).unlink()

    with caplog.at_level(logging.WARNING, logger="one_flows.registration"):
        report = client.register_session(session)

    assert report.ok and report.deleted == [GONE]
    assert "1 registered files gone from the folder" in report.summary()
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert str(session / GONE) in warning.getMessage()
    assert "still registered as existing" in warning.getMessage()
    held = {d["name"] for d in alyx_client.list_all("/datasets", {"session": first.eid})}
    assert "spikes.times.npy" in held  # the lab decides (README): nothing changed on Alyx
    # Alyx still shows it: a registration that asks Alyx says so again.
    assert client.register_session(session, recheck=True).deleted == [GONE]


def test_a_file_gone_from_a_session_is_marked_missing_in_local_tables(make_session, tmp_path):
    session = make_session(GOOD_FILES)
    tables = tmp_path / "tables"
    with closing(RegistrationClient(LocalTarget(tables))) as client:
        client.register_session(session)
        content = (session / GONE).read_bytes()
        (session / GONE).unlink()

        report = client.register_session(session)

        assert report.deleted == [GONE]
        exists = load_tables(tables).datasets.set_index("rel_path")["exists"]
        assert not exists[GONE] and exists.drop(GONE).all()
        assert client.register_session(session, recheck=True).deleted == []  # said once

        # Put back, it is registered again and exists once more.
        (session / GONE).write_bytes(content)
        back = client.register_session(session)
        assert [f.rel_path for f in back.by_status(Outcome.CREATED)] == [GONE]
        assert load_tables(tables).datasets.set_index("rel_path")["exists"].all()


def test_only_whole_folder_registrations_look_for_deleted_files(client, make_session):
    session = make_session(GOOD_FILES)
    client.register_session(session)
    (session / GONE).unlink()
    listed = [session / "alf/_ibl_trials.table.pqt"]
    assert client.register_session(session, file_list=listed).deleted == []


def test_the_ledger_does_not_hide_a_deleted_file(client, server, make_session):
    """Files written long ago are in the ledger, which answers for an unchanged folder without a
    request; a registered file gone from it sends the session to the target."""
    session = make_session(GOOD_FILES)
    an_hour_ago = time.time() - 3600
    for path in session.rglob("*"):
        os.utime(path, (an_hour_ago, an_hour_ago))
    client.register_session(session)
    quiet = server.request_count()
    assert client.register_session(session).deleted == []
    assert server.request_count() == quiet
    (session / GONE).unlink()

    assert client.register_session(session).deleted == [GONE]
