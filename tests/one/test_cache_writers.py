"""Writers of one tables folder: each change is made under the folder's lock, on the tables as
they are then, so none is lost; a killed writer's temporary files are cleared by the next one."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from one_flows import cache
from one_flows.cache import load_tables, make_parquet_db, save_tables, update_tables
from one_flows.errors import OneFlowsError
from one_flows.targets import FileBatch, LocalTarget

from .conftest import age

NEW = "KS007/2019-05-01/001"  # found by the update
LATE = "KS008/2019-05-02/001"  # made and registered while the update runs


def _session(root: Path, rel: str) -> None:
    (root / rel / "alf").mkdir(parents=True)
    np.save(root / rel / "alf" / "_ibl_trials.choice.npy", np.arange(3))


def _register(target: LocalTarget, rel: str) -> str:
    subject, date, number = rel.split("/")
    eid = target.create_session(
        {"subject": subject, "start_time": f"{date}T10:00:00", "number": int(number)}
    )["id"]
    target.register_files(FileBatch(rel, ["alf/_ibl_trials.choice.npy"], ["0" * 32], [152], [None]))
    return eid


class _Waiting(logging.Handler):
    """Sets ``event`` when a writer logs that it waits for the tables' lock."""

    def __init__(self) -> None:
        super().__init__()
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Waiting for another"):
            self.event.set()


@pytest.fixture
def waiting():
    handler = _Waiting()
    logger = logging.getLogger("one_flows.cache")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler.event
    logger.removeHandler(handler)
    logger.setLevel(old_level)


@pytest.mark.parametrize("mode", ["all", "changed"])
def test_a_registration_during_an_update_waits_and_neither_loses_rows(
    alf_tree, monkeypatch, waiting, mode
):
    age(alf_tree)
    make_parquet_db(alf_tree)
    _session(alf_tree, NEW)
    target = LocalTarget(alf_tree)
    assert target.find_sessions("KS007", "2019-05-01", 1) == []  # tables held in memory
    registered = threading.Event()
    thread = None

    def scan_then_register(found):
        # The update has read the tables and scanned; a registration of a session the scan
        # did not see starts now. It must wait for the update, then build on its tables.
        nonlocal thread
        scanned = real_scan(found)
        _session(alf_tree, LATE)
        thread = threading.Thread(target=lambda: (_register(target, LATE), registered.set()))
        thread.start()
        while not (registered.is_set() or waiting.is_set()):
            time.sleep(0.01)
        return scanned

    real_scan = cache.build.scan_sessions
    monkeypatch.setattr(cache.build, "scan_sessions", scan_then_register)
    summary = update_tables(alf_tree, rescan=mode)
    thread.join()
    assert summary.sessions_added == 1
    sessions = load_tables(alf_tree).sessions
    assert {cache.session_id(NEW), cache.session_id(LATE)} <= set(sessions.index)
    assert sessions.index.is_unique
    # The target saw the update's change before writing its own.
    assert target.find_sessions("KS007", "2019-05-01", 1)[0]["id"] == cache.session_id(NEW)


def _temporary_files(root: Path) -> list[Path]:
    names = [
        root / f".sessions.pqt.{uuid.uuid4().hex}.tmp",
        root / f".datasets.pqt.{uuid.uuid4().hex}.tmp",
        root / cache.files.STATE_DIR / f".scan_state.parquet.{uuid.uuid4().hex}.tmp",
        root / cache.files.STATE_DIR / f".scan_dirs.parquet.{uuid.uuid4().hex}.tmp",
    ]
    for path in names:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"PAR1 half a table")
    return names


WRITERS = {
    "registration": lambda root: _register(LocalTarget(root), LATE),
    "update": lambda root: update_tables(root),
    "build": lambda root: make_parquet_db(root),
    "save": lambda root: save_tables(load_tables(root), root),
}


@pytest.mark.parametrize("writer", WRITERS)
def test_writers_clear_the_temporary_files_of_killed_writers(alf_tree, writer):
    make_parquet_db(alf_tree)
    kept = set(load_tables(alf_tree).sessions.index)
    _session(alf_tree, LATE)
    left = _temporary_files(alf_tree)
    others = [alf_tree / ".datasets.pqt.mine.tmp", alf_tree / "KS005" / ".datasets.pqt.tmp"]
    for path in others:
        path.write_bytes(b"not ours")

    WRITERS[writer](alf_tree)
    assert [p for p in left if p.exists()] == []
    assert all(p.exists() for p in others)
    assert kept < set(load_tables(alf_tree).sessions.index) or writer == "save"


STUCK_WRITER = """
import sys, time
from one_flows import cache

def stuck(table, sink):
    sink.write(b"PAR1 the first bytes of a table")
    sink.flush()
    print("writing", flush=True)
    time.sleep(600)

cache.files._write_parquet = stuck
cache.update_tables(sys.argv[1])
"""


def test_a_writer_killed_mid_write_leaves_the_old_tables_and_its_lock_goes(alf_tree, waiting):
    make_parquet_db(alf_tree)
    before = {name: (alf_tree / name).read_bytes() for name in ("sessions.pqt", "datasets.pqt")}
    _session(alf_tree, NEW)
    writer = subprocess.Popen(
        [sys.executable, "-c", STUCK_WRITER, str(alf_tree)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout.readline() == "writing\n"
        # It holds the lock: another process's writer would wait.
        fd = os.open(alf_tree / cache.files.LOCK_FILE, os.O_RDWR)
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(fd)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert len(list(alf_tree.glob(".datasets.pqt.*.tmp"))) == 1
    assert {n: (alf_tree / n).read_bytes() for n in before} == before

    # The kernel dropped the dead writer's lock: the next writer neither waits nor fails.
    _register(LocalTarget(alf_tree), LATE)
    assert not waiting.is_set()
    assert list(alf_tree.glob(".*.tmp")) == []
    assert cache.session_id(LATE) in load_tables(alf_tree).sessions.index


HOLDER = """
import sys
from one_flows import cache

with cache.lock_tables(sys.argv[1]):
    print("locked", flush=True)
    sys.stdin.readline()
"""


def test_a_registration_waits_for_another_process_holding_the_lock(alf_tree, waiting):
    make_parquet_db(alf_tree)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(alf_tree)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "locked\n"
        registration = threading.Thread(target=_register, args=(LocalTarget(alf_tree), LATE))
        registration.start()
        waiting.wait()
        assert cache.session_id(LATE) not in load_tables(alf_tree).sessions.index
        holder.stdin.write("\n")
        holder.stdin.flush()
        registration.join()
    finally:
        holder.kill()
        holder.wait()
    assert cache.session_id(LATE) in load_tables(alf_tree).sessions.index


def test_the_lock_is_taken_again_by_its_thread_and_marks_changes(tmp_path):
    before = cache.lock.tables_generation(tmp_path)
    with cache.lock_tables(tmp_path) as lock, cache.lock_tables(tmp_path) as again:
        assert lock is again
        save_tables(cache.CacheTables.empty(), tmp_path)
    assert cache.lock.tables_generation(tmp_path) not in (before, b"")
    with pytest.raises(cache.TablesFolderMissing), cache.lock_tables(tmp_path / "missing"):
        pass


def test_a_forked_child_does_not_inherit_the_lock(tmp_path):
    # The child must wait for the lock its parent holds, not enter it as if it were its own
    # (the forking thread lives on in the child, and would re-enter the lock it held).
    with cache.lock_tables(tmp_path):
        pid = os.fork()
        if pid == 0:
            try:
                handler = _Waiting()
                logging.getLogger("one_flows.cache").addHandler(handler)
                logging.getLogger("one_flows.cache").setLevel(logging.INFO)
                threading.Thread(target=lambda: handler.event.wait() and os._exit(0)).start()
                with cache.lock_tables(tmp_path):
                    pass
            finally:
                os._exit(1)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_cache_errors_are_one_flows_errors(tmp_path, alf_tree, monkeypatch):
    with pytest.raises(cache.TablesFolderMissing) as missing:
        update_tables(tmp_path / "nowhere")
    assert isinstance(missing.value, OneFlowsError) and isinstance(
        missing.value, NotADirectoryError
    )

    (tmp_path / "other").mkdir()
    pd.DataFrame({"x": [1]}).to_parquet(tmp_path / "other" / "sessions.pqt")
    with pytest.raises(cache.NotACacheTable, match="not a ONE cache table"):
        load_tables(tmp_path / "other")

    make_parquet_db(alf_tree)
    with pytest.raises(cache.SessionFolderError, match="not a session folder"):
        update_tables(alf_tree, sessions=["KS005"])

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(cache.lock.fcntl, "flock", no_locks)
    with pytest.raises(cache.TablesLockError, match="cannot lock the tables") as refused:
        save_tables(load_tables(alf_tree), alf_tree)
    assert refused.value.errno == errno.ENOLCK
    assert isinstance(refused.value, OneFlowsError) and isinstance(refused.value, OSError)
    for error in (cache.CacheError, cache.NotACacheTable, cache.SessionFolderError):
        assert issubclass(error, OneFlowsError)
