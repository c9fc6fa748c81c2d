"""FlagWatcher: debounced, once-per-session announcements, and polls that skip unchanged folders."""

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from one_flows.flags import FlagError, FlagWatcher, claim, fail, find_flags, write_flag

MakeSession = Callable[..., Path]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _watcher(root: Path, clock: FakeClock, debounce: float = 10, **kwargs: object) -> FlagWatcher:
    return FlagWatcher(root, interval=1, debounce=debounce, clock=clock, **kwargs)


def test_flags_within_the_window_give_one_announcement(
    root: Path, make_session: MakeSession, clock: FakeClock
) -> None:
    session = make_session()
    watcher = _watcher(root, clock)
    assert watcher.poll() == []
    write_flag(session)
    assert watcher.poll() == []
    clock.now += 4
    write_flag(session, ["alf/obj0.attr.npy"])  # a rewrite
    write_flag(session, name="register_me.flag")  # not watched: default names only
    assert watcher.poll() == []
    clock.now += 6
    assert watcher.poll() == [session]
    clock.now += 100
    assert watcher.poll() == []


def test_sessions_are_announced_separately_and_sorted(
    root: Path, make_session: MakeSession, clock: FakeClock
) -> None:
    first, second = make_session("sub/2020-01-01/001"), make_session("sub/2020-01-01/002")
    write_flag(second)
    watcher = _watcher(root, clock)
    assert watcher.poll() == []  # flags present at start count as new
    clock.now += 5
    write_flag(first)
    assert watcher.poll() == []
    clock.now += 5
    assert watcher.poll() == [second]
    clock.now += 5
    assert watcher.poll() == [first]


def test_a_flag_back_in_the_pool_is_announced_again(
    root: Path, make_session: MakeSession, clock: FakeClock
) -> None:
    session = make_session()
    write_flag(session)
    watcher = _watcher(root, clock, debounce=0)
    assert watcher.poll() == [session]
    held = claim(next(find_flags(root)), "run1")
    assert watcher.poll() == []
    fail(held, "boom")
    assert watcher.poll() == [session]


def test_a_rewrite_in_place_is_seen_without_a_folder_change(
    root: Path, make_session: MakeSession, clock: FakeClock
) -> None:
    session = make_session()
    flag = write_flag(session)
    old = 1_600_000_000
    os.utime(session, (old, old))  # old enough for the watcher to trust its listing
    watcher = _watcher(root, clock, debounce=0)
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
    assert listed == [str(sessions[2])]


def test_unusable_flags_are_reported_once(
    root: Path, make_session: MakeSession, clock: FakeClock
) -> None:
    (root / "not_a_session").mkdir()
    write_flag(root / "not_a_session")
    errors: list[FlagError] = []
    watcher = _watcher(root, clock, on_error=errors.append, debounce=0)
    for _ in range(3):
        assert watcher.poll() == []
        clock.now += 5
    assert [e.flag for e in errors] == [str(root / "not_a_session" / "create_me.flag")]


def test_watch_yields_until_stopped(root: Path, make_session: MakeSession) -> None:
    session = make_session()
    write_flag(session)
    stop = threading.Event()
    watcher = FlagWatcher(root, interval=0.01, debounce=0)
    announced = []
    for found in watcher.watch(stop):
        announced.append(found)
        stop.set()
    assert announced == [session]


def test_bad_settings_are_refused(root: Path) -> None:
    with pytest.raises(ValueError, match="interval"):
        FlagWatcher(root, interval=0)
    with pytest.raises(FileNotFoundError):
        FlagWatcher(root / "missing")
