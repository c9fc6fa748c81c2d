"""FlagWatcher: each newly flagged session announced once, when ready; polls that skip unchanged
folders."""

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from one_flows.flags import (
    QUIET_SECONDS,
    FlagError,
    FlagWatcher,
    claim,
    fail,
    find_flags,
    release,
    write_flag,
)

MakeSession = Callable[..., Path]


class FakeClock:
    """The watcher's "now": starts at the real time (file times are real) and moves when told."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def restart(self) -> None:
        self.now = time.time()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def flagged(make_session: MakeSession) -> Path:
    """A session with a pending flag, its data written just now."""
    session = make_session()
    write_flag(session)
    return session


def _watcher(root: Path, clock: FakeClock, quiet: float = 10, **kwargs: object) -> FlagWatcher:
    """A watcher whose clock starts now, after the test's data were written."""
    clock.restart()
    return FlagWatcher(root, interval=1, quiet_seconds=quiet, clock=clock, **kwargs)


def test_a_session_is_announced_once_its_data_are_quiet(
    root: Path, make_session: MakeSession, clock: FakeClock
) -> None:
    session = make_session()
    watcher = _watcher(root, clock)
    assert watcher.poll() == []
    write_flag(session)
    write_flag(session, name="register_me.flag")  # not watched: default names only
    assert watcher.poll() == []
    clock.now += 10
    assert watcher.poll() == [session]
    clock.now += 100
    assert watcher.poll() == []
    assert FlagWatcher(root).quiet_seconds == QUIET_SECONDS


def test_a_new_flag_on_quiet_data_is_announced_at_the_next_poll(
    root: Path, make_session: MakeSession, clock: FakeClock
) -> None:
    session = make_session()
    watcher = _watcher(root, clock)
    clock.now += 10
    assert watcher.poll() == []
    write_flag(session)  # newer than the data, and than the clock: flags are not data
    assert watcher.poll() == [session]


def test_data_still_arriving_hold_the_announcement(
    root: Path, flagged: Path, clock: FakeClock
) -> None:
    session = flagged
    watcher = _watcher(root, clock)
    clock.now += 8
    assert watcher.poll() == []
    os.utime(session / "alf" / "obj0.attr.npy", (clock.now, clock.now))  # written to, now
    clock.now += 8
    assert watcher.poll() == []  # 16 s after the flag, but only 8 after the data changed
    assert watcher.waiting == [session]
    clock.now += 8
    assert watcher.poll() == [session]
    assert watcher.waiting == []


def test_a_change_between_polls_that_times_cannot_show_holds_one_more_poll(
    root: Path, make_session: MakeSession, clock: FakeClock
) -> None:
    session = make_session()
    (session / "raw.bin").write_bytes(b"12345")
    write_flag(session)
    watcher = _watcher(root, clock)
    assert watcher.poll() == []
    (session / "raw.bin").unlink()  # changes only the session folder, whose time is not data
    clock.now += 10
    assert watcher.poll() == []  # one file fewer than at the last poll
    assert watcher.poll() == [session]


def test_sessions_are_announced_separately_and_sorted(
    root: Path, make_session: MakeSession, clock: FakeClock
) -> None:
    first, second = make_session("sub/2020-01-01/001"), make_session("sub/2020-01-01/002")
    for session in (first, second):
        write_flag(session)
    watcher = _watcher(root, clock)
    assert watcher.poll() == []  # flags present at start count as new
    with open(second / "alf" / "obj0.attr.npy", "ab") as stream:
        stream.write(b"more")
    clock.now += 10
    assert watcher.poll() == [first]
    clock.now += 10
    assert watcher.poll() == [second]
    write_flag(first, ["alf/obj0.attr.npy"])  # a rewrite is a new request
    write_flag(second, ["alf/obj1.attr.npy"])
    assert watcher.poll() == [first, second]


def test_a_released_flag_is_announced_again_a_failed_one_is_left_to_the_sweep(
    root: Path, flagged: Path, clock: FakeClock
) -> None:
    session = flagged
    watcher = _watcher(root, clock, quiet=0)
    assert watcher.poll() == [session]
    held = claim(next(find_flags(root)), "run1")
    assert watcher.poll() == []
    release(held)
    assert watcher.poll() == [session]
    held = claim(next(find_flags(root)), "run2")
    assert watcher.poll() == []
    fail(held, "boom")
    assert watcher.poll() == []
    assert [f.path.name for f in find_flags(root)] == ["create_me.flag.failed-1"]


def test_a_session_claimed_while_waiting_is_not_announced(
    root: Path, flagged: Path, clock: FakeClock
) -> None:
    watcher = _watcher(root, clock)
    assert watcher.poll() == []
    claim(next(find_flags(root)), "sweep")
    clock.now += 10
    assert watcher.poll() == []


def test_a_rewrite_in_place_is_seen_without_a_folder_change(
    root: Path, make_session: MakeSession, clock: FakeClock
) -> None:
    session = make_session()
    flag = write_flag(session)
    old = 1_600_000_000
    os.utime(session, (old, old))  # old enough for the watcher to trust its listing
    watcher = _watcher(root, clock, quiet=0)
    assert watcher.poll() == [session]
    flag.write_text("alf/obj0.attr.npy\n")
    os.utime(session, (old, old))
    assert watcher.poll() == [session]
    assert watcher.poll() == []


def test_unchanged_folders_are_not_listed_again(
    root: Path, make_session: MakeSession, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = [make_session(f"sub/2020-01-01/00{i}") for i in range(5)]
    old = 1_600_000_000
    for folder, subfolders, _ in os.walk(root):
        for name in subfolders:
            os.utime(os.path.join(folder, name), (old, old))
    os.utime(root, (old, old))
    watcher = _watcher(root, clock)
    listed: list[str] = []
    real_scandir = os.scandir

    def counting_scandir(path: str) -> object:
        listed.append(path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", counting_scandir)
    watcher.poll()
    assert len(listed) == 1 + 1 + 1 + 5 * 2  # root, sub, date, sessions and their alf
    listed.clear()
    watcher.poll()
    assert listed == []
    write_flag(sessions[2])
    watcher.poll()
    assert listed[0] == str(sessions[2])  # then only its readiness is looked at
    assert {Path(p) for p in listed[1:]} <= {sessions[2], sessions[2] / "alf"}


def test_unusable_flags_are_reported_once(
    root: Path, make_session: MakeSession, clock: FakeClock
) -> None:
    (root / "not_a_session").mkdir()
    write_flag(root / "not_a_session")
    errors: list[FlagError] = []
    watcher = _watcher(root, clock, on_error=errors.append, quiet=0)
    for _ in range(3):
        assert watcher.poll() == []
        clock.now += 5
    assert [e.flag for e in errors] == [str(root / "not_a_session" / "create_me.flag")]


def test_watch_yields_until_stopped(root: Path, flagged: Path) -> None:
    session = flagged
    stop = threading.Event()
    watcher = FlagWatcher(root, interval=0.01, quiet_seconds=0)
    announced = []
    for found in watcher.watch(stop):
        announced.append(found)
        stop.set()
    assert announced == [session]


def test_bad_settings_are_refused(root: Path) -> None:
    with pytest.raises(ValueError, match="interval"):
        FlagWatcher(root, interval=0)
    with pytest.raises(ValueError, match="quiet_seconds"):
        FlagWatcher(root, quiet_seconds=-1)
    with pytest.raises(FileNotFoundError):
        FlagWatcher(root / "missing")
