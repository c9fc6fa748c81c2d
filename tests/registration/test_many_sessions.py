"""register_sessions: many sessions against a server that serves a few requests at a time."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from one_flows.alyx import AlyxClient
from one_flows.hashing import DigestCache
from one_flows.registration import Outcome, RegistrationClient
from one_flows.registration.pipeline import HashAhead
from one_flows.testing import AlyxTestServer, LatencyModel
from one_flows.testing.latency import Cost

from .conftest import GOOD_FILES

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

NAMES = list(GOOD_FILES)


def _sessions(make_session, counts: list[int]) -> list[Path]:
    """One session a day, with the first ``count`` good files each."""
    return [
        make_session(
            {name: GOOD_FILES[name] for name in NAMES[:count]},
            session=f"cortexlab/Subjects/algernon/2026-01-{day + 1:02d}/001",
        )
        for day, count in enumerate(counts)
    ]


def _client(server, tmp_path: Path, max_workers: int) -> RegistrationClient:
    alyx = AlyxClient(server.url, username=server.username, password=server.password)
    return RegistrationClient(
        alyx, digest_cache=tmp_path / "digests.sqlite", max_workers=max_workers
    )


def test_a_subject_is_looked_up_once_for_all_its_sessions(server, make_session, tmp_path):
    sessions = _sessions(make_session, [2] * 8)
    client = _client(server, tmp_path, max_workers=4)

    reports = client.register_sessions(sessions)

    assert all(r.ok and r.counts[Outcome.CREATED] == 2 for r in reports)
    assert server.request_count("GET", "/subjects/") == 1
    assert server.request_count("GET", "/dataset-types") == 1
    assert server.request_count("GET", "/data-formats") == 1


def test_sessions_with_the_most_files_are_sent_first(make_session, tmp_path):
    counts = [1, 4, 2, 5, 3]
    sessions = _sessions(make_session, counts)
    # A cost per file has the server count the files of each request.
    with AlyxTestServer(latency=LatencyModel(register_file=Cost(per_file=0.001))) as server:
        client = _client(server, tmp_path, max_workers=1)
        reports = client.register_sessions(sessions)
        served = server.workers.served

    # The answers keep the input order; the requests went out most files first.
    assert [r.session_path for r in reports] == sessions
    assert [r.counts[Outcome.CREATED] for r in reports] == counts
    sent = [r.files for r in served if r.path.rstrip("/") == "/register-file"]
    assert sent == sorted(counts, reverse=True)


def test_the_next_sessions_are_made_ready_while_files_are_sent(make_session, tmp_path):
    sessions = _sessions(make_session, [5, 4, 3, 2])
    # Registering files takes long; everything else is quick.
    slow_files = LatencyModel(register_file=Cost(seconds=1.5))
    with AlyxTestServer(latency=slow_files) as server:
        client = _client(server, tmp_path, max_workers=2)
        reports = client.register_sessions(sessions)
        served = server.workers.served

    assert all(r.ok for r in reports)
    sends = [r for r in served if r.path.rstrip("/") == "/register-file"]
    creations = [r for r in served if r.method == "POST" and r.path.rstrip("/") == "/sessions"]
    # Never more batches in flight than max_workers ...
    assert len(sends) == 4
    assert all(sum(o.started <= s.started < o.finished for o in sends) <= 2 for s in sends)
    # ... and the later sessions' records were created while the first files were being sent:
    # the server had answered every creation when it answered the first files.
    assert len(creations) == 4
    first_sent = served.index(sends[0])  # served lists the requests in the order answered
    assert [r for r in served[:first_sent] if r in creations] == creations


def test_hash_ahead_fills_the_digest_cache_session_after_session(make_session, tmp_path):
    sessions = _sessions(make_session, [3, 2])
    files = [(s, sorted(p for p in s.rglob("*") if p.is_file())) for s in sessions]
    for _, paths in files:
        for path in paths:  # modified long enough ago for the cache to keep their digests
            os.utime(path, (path.stat().st_atime - 3600, path.stat().st_mtime - 3600))
    cache = DigestCache(tmp_path / "digests.sqlite")

    ahead = HashAhead(files, cache)
    ahead.wait(sessions)

    for _, paths in files:
        assert all(cache.get(p, p.stat()) is not None for p in paths)
    ahead.stop()
    cache.close()


def test_a_failed_batch_leaves_no_files_behind_for_the_next_call(server, make_session, tmp_path):
    sessions = _sessions(make_session, [1, 1])
    unopenable = tmp_path / "digests"
    unopenable.mkdir()  # a folder is no digest cache
    alyx = AlyxClient(server.url, username=server.username, password=server.password)
    client = RegistrationClient(alyx, digest_cache=unopenable, ledger=False, max_workers=2)

    with pytest.raises(ValueError, match="cannot open digest cache"):
        client.register_sessions(sessions)

    unopenable.rmdir()
    (sessions[0] / NAMES[1]).parent.mkdir(parents=True, exist_ok=True)
    (sessions[0] / NAMES[1]).write_bytes(GOOD_FILES[NAMES[1]])
    report = client.register_session(sessions[0])

    # The folder is walked again: the file added since the failed call is registered too.
    assert report.ok and report.counts[Outcome.CREATED] == 2
    assert not [t for t in threading.enumerate() if t.name == "look-up-ahead"]
    client.close()


def test_batches_on_one_client_run_one_after_another(make_session, tmp_path):
    # Two batches that the server's answers tell apart: one file per session, and four.
    few = _sessions(make_session, [1, 1, 1])
    many = [
        make_session(
            {name: GOOD_FILES[name] for name in NAMES[:4]},
            session=f"cortexlab/Subjects/algernon/2026-02-0{day}/001",
        )
        for day in (1, 2, 3)
    ]
    with AlyxTestServer(
        latency=LatencyModel(register_file=Cost(seconds=0.3, per_file=0.001))
    ) as server:
        client = _client(server, tmp_path, max_workers=2)
        start = threading.Barrier(2)

        def batch(sessions: list[Path]) -> list:
            start.wait()
            return client.register_sessions(sessions)

        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(batch, [few, many]))
        served = server.workers.served
        client.close()

    assert [[r.counts[Outcome.CREATED] for r in reports] for reports in answers] == [
        [1, 1, 1],
        [4, 4, 4],
    ]
    assert all(r.ok for reports in answers for r in reports)
    # Neither batch's files went out while the other's were being sent.
    sent = [r.files for r in served if r.path.rstrip("/") == "/register-file"]
    assert sent in ([1, 1, 1, 4, 4, 4], [4, 4, 4, 1, 1, 1])


def test_hash_ahead_stops_within_a_session(tmp_path):
    session = tmp_path / "data/cortexlab/Subjects/algernon/2026-01-03/001"
    (session / "alf").mkdir(parents=True)
    paths = [session / f"alf/spikes.part{i:02d}.npy" for i in range(16)]
    for path in paths:  # large sparse files, modified long ago: the cache keeps their digests
        with path.open("wb") as f:
            f.truncate(16 * 2**20)
        os.utime(path, (path.stat().st_atime - 3600, path.stat().st_mtime - 3600))
    cache = DigestCache(tmp_path / "digests.sqlite")

    ahead = HashAhead([(session, paths)], cache, workers=1)
    ahead.stop()
    ahead.wait([session])  # at once: nothing more is hashed

    # The session was not hashed to its end before stop returned.
    assert sum(cache.get(p, p.stat()) is not None for p in paths) < len(paths)
    cache.close()
