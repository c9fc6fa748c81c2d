"""Claims: exactly one winner among concurrent claimers, and every way a claim can end."""

import errno
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import pytest

from one_flows.flags import (
    Claim,
    ClaimLost,
    Flag,
    FlagConflict,
    FlagState,
    claim,
    complete,
    fail,
    find_flags,
    give_back,
    read_flag,
    reap_stale_claims,
    release,
    write_flag,
)

MakeSession = Callable[..., Path]
CLAIMERS = 8


def _flags(root: Path) -> list[Flag]:
    return sorted(find_flags(root, states=FlagState), key=lambda f: f.path)


def _one_flag(root: Path) -> Flag:
    (flag,) = list(find_flags(root))
    return flag


def _pending(root: Path, make_session: MakeSession, rounds: int) -> list[Flag]:
    for number in range(rounds):
        write_flag(make_session(f"sub/2020-01-{1 + number // 100:02d}/{number % 100:03d}", 0))
    return sorted(find_flags(root), key=lambda f: f.path)


def _check_one_winner_per_round(flags: list[Flag], winners: list[list[str]]) -> None:
    for flag, round_winners in zip(flags, winners, strict=True):
        assert len(round_winners) == 1, f"{flag.session_path}: winners {round_winners}"
        (winner,) = round_winners
        left = sorted(p.name for p in flag.session_path.iterdir() if p.name.startswith("create"))
        assert left == [f"create_me.flag.{winner}.claimed"]


def test_eight_threads_one_winner_per_round(root: Path, make_session: MakeSession) -> None:
    rounds = 150
    flags = _pending(root, make_session, rounds)
    barrier = threading.Barrier(CLAIMERS)
    winners: list[list[str]] = [[] for _ in range(rounds)]

    def claimer(index: int) -> None:
        for number, flag in enumerate(flags):
            barrier.wait()
            if claim(flag, f"thread{index}") is not None:
                winners[number].append(f"thread{index}")  # list.append is atomic

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(CLAIMERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    _check_one_winner_per_round(flags, winners)


# The processes are forked from a fresh interpreter: forking this test process is unsafe once
# other tests have started threads in it (a Prefect API client, a test server).
_PROCESS_RACE = """
import json, multiprocessing, sys
from pathlib import Path
from one_flows.flags import claim, find_flags

def claimer(index, paths, barrier, results):
    flags = {f.path: f for f in find_flags(sys.argv[1])}
    for number, path in enumerate(paths):
        barrier.wait()
        results.put((number, f"proc{index}", claim(flags[Path(path)], f"proc{index}") is not None))

paths = json.loads(sys.argv[2])
claimers = int(sys.argv[3])
context = multiprocessing.get_context("fork")
barrier, results = context.Barrier(claimers), context.Queue()
processes = [
    context.Process(target=claimer, args=(i, paths, barrier, results)) for i in range(claimers)
]
for process in processes:
    process.start()
outcomes = [results.get(timeout=60) for _ in range(len(paths) * claimers)]
for process in processes:
    process.join(timeout=60)
print(json.dumps({"outcomes": outcomes, "exitcodes": [p.exitcode for p in processes]}))
"""


def test_eight_processes_one_winner_per_round(root: Path, make_session: MakeSession) -> None:
    rounds = 40
    flags = _pending(root, make_session, rounds)
    paths = json.dumps([str(f.path) for f in flags])
    race = subprocess.run(
        [sys.executable, "-c", _PROCESS_RACE, str(root), paths, str(CLAIMERS)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert race.returncode == 0, race.stderr
    result = json.loads(race.stdout)
    assert result["exitcodes"] == [0] * CLAIMERS
    winners: list[list[str]] = [[] for _ in range(rounds)]
    for number, name, won in result["outcomes"]:
        if won:
            winners[number].append(name)
    _check_one_winner_per_round(flags, winners)


def test_a_claimed_flag_keeps_its_contents_and_cannot_be_claimed_again(
    root: Path, make_session: MakeSession
) -> None:
    session = make_session()
    write_flag(session, ["alf/obj0.attr.npy"])
    flag = _one_flag(root)
    held = claim(flag, "run1")
    assert isinstance(held, Claim)
    assert held.flag.path == session / "create_me.flag.run1.claimed"
    assert (held.run_id, held.session_path, held.source) == ("run1", session, flag)
    assert read_flag(held.flag).files == (PurePosixPath("alf/obj0.attr.npy"),)
    assert claim(flag, "run2") is None
    assert list(find_flags(root)) == []
    with pytest.raises(ValueError, match="a claimed flag cannot be claimed"):
        claim(held.flag, "run2")
    with pytest.raises(ValueError, match="invalid run id"):
        claim(flag, "bad/id")


def test_the_same_run_cannot_stack_two_claims_under_one_name(
    root: Path, make_session: MakeSession
) -> None:
    session = make_session()
    write_flag(session)
    assert claim(_one_flag(root), "run1") is not None
    write_flag(session, ["alf/obj0.attr.npy"])  # the rig drops a new flag meanwhile
    with pytest.raises(FlagConflict, match="already holds this claim"):
        claim(_one_flag(root), "run1")
    assert (session / "create_me.flag").exists()


def test_complete_removes_the_flag_or_keeps_a_done_marker(
    root: Path, make_session: MakeSession
) -> None:
    first, second = make_session("sub/2020-01-01/001"), make_session("sub/2020-01-01/002")
    write_flag(first)
    write_flag(second, ["alf/obj1.attr.npy"])
    claims = {f.session_path: claim(f, "run1") for f in find_flags(root)}
    assert complete(claims[first]) is None
    done = complete(claims[second], keep_done_marker=True)
    assert done == second / "create_me.flag.done"
    assert [f.path for f in _flags(root)] == [done]
    contents = read_flag(done)
    assert contents.files == (PurePosixPath("alf/obj1.attr.npy"),)
    assert [r["event"] for r in contents.records] == ["done"]
    with pytest.raises(ClaimLost, match="run1"):
        complete(claims[first])


def test_failures_are_retried_then_quarantined(root: Path, make_session: MakeSession) -> None:
    session = make_session()
    write_flag(session, ["alf/obj0.attr.npy"])
    outcomes = []
    for attempt in range(1, 4):
        held = claim(_one_flag(root), f"run{attempt}")
        assert held is not None and held.flag.attempt == attempt - 1
        outcomes.append(fail(held, f"boom {attempt}", max_attempts=3))
    assert [(f.state, f.attempt, f.path.name) for f in outcomes] == [
        (FlagState.FAILED, 1, "create_me.flag.failed-1"),
        (FlagState.FAILED, 2, "create_me.flag.failed-2"),
        (FlagState.QUARANTINED, 0, "create_me.flag.quarantined"),
    ]
    assert list(find_flags(root)) == []
    (quarantined,) = _flags(root)
    contents = read_flag(quarantined)
    assert contents.files == (PurePosixPath("alf/obj0.attr.npy"),)
    assert [(r["attempt"], r["reason"], r["run_id"]) for r in contents.records] == [
        (1, "boom 1", "run1"),
        (2, "boom 2", "run2"),
        (3, "boom 3", "run3"),
    ]
    write_flag(session)
    held = claim(_one_flag(root), "run4")
    with pytest.raises(ValueError, match="max_attempts"):
        fail(held, "boom", max_attempts=0)


def test_a_second_quarantine_appends_to_the_first(root: Path, make_session: MakeSession) -> None:
    session = make_session()
    for run in ("run1", "run2"):
        write_flag(session, [f"alf/{run}.x.npy"])
        fail(claim(_one_flag(root), run), f"{run} broke", max_attempts=1)
    (quarantined,) = _flags(root)
    contents = read_flag(quarantined)
    assert contents.files == (PurePosixPath("alf/run1.x.npy"), PurePosixPath("alf/run2.x.npy"))
    assert [r["reason"] for r in contents.records] == ["run1 broke", "run2 broke"]


def test_stale_claims_are_reaped_and_claimable_again(root: Path, make_session: MakeSession) -> None:
    dead = [make_session(f"sub/2020-01-01/00{i}") for i in range(3)]
    alive = make_session("sub/2020-01-02/001")
    for session in [*dead, alive]:
        write_flag(session)
    for flag in find_flags(root):
        claim(flag, "alive" if flag.session_path == alive else "dead")
    asked: list[str] = []

    def is_running(run_id: str) -> bool:
        asked.append(run_id)
        return run_id == "alive"

    released = reap_stale_claims(root, is_running)
    assert sorted(asked) == ["alive", "dead"]
    assert sorted(f.session_path for f in released) == dead
    assert all(f.state is FlagState.PENDING for f in released)
    assert sorted(f.session_path for f in find_flags(root)) == dead
    (still_held,) = [f for f in _flags(root) if f.state is FlagState.CLAIMED]
    assert still_held.run_id == "alive"
    retry = claim(released[0], "new-run")
    assert retry is not None
    assert [r["reason"] for r in read_flag(retry.flag).records] == ["run dead is not running"]


def test_a_reaped_retry_returns_to_its_failed_name(root: Path, make_session: MakeSession) -> None:
    write_flag(make_session())
    fail(claim(_one_flag(root), "run1"), "boom")
    claim(_one_flag(root), "run2")
    (released,) = reap_stale_claims(root, lambda run_id: False)
    assert (released.state, released.attempt) == (FlagState.FAILED, 1)
    assert released.path.name == "create_me.flag.failed-1"


def test_reaper_errors_from_is_running_propagate(root: Path, make_session: MakeSession) -> None:
    write_flag(make_session())
    claim(_one_flag(root), "run1")

    def unreachable(run_id: str) -> bool:
        raise ConnectionError("Prefect API unreachable")

    with pytest.raises(ConnectionError):
        reap_stale_claims(root, unreachable)
    assert [f.state for f in _flags(root)] == [FlagState.CLAIMED]


def test_release_onto_a_new_flag_that_covers_it_drops_the_claim(
    root: Path, make_session: MakeSession
) -> None:
    session = make_session()
    write_flag(session, ["alf/obj0.attr.npy"])
    held = claim(_one_flag(root), "run1")
    write_flag(session)  # a new flag for every file arrives while the claim is held
    back = release(held)
    assert back.path == session / "create_me.flag"
    assert [f.path for f in _flags(root)] == [back.path]
    assert read_flag(back).files is None


def test_release_onto_a_new_flag_that_does_not_cover_it_is_a_conflict(
    root: Path, make_session: MakeSession
) -> None:
    session = make_session()
    write_flag(session, ["alf/obj0.attr.npy"])
    held = claim(_one_flag(root), "run1")
    write_flag(session, ["alf/obj1.attr.npy"])
    with pytest.raises(FlagConflict, match="does not list every file") as caught:
        release(held)
    assert caught.value.flag == str(held.flag.path)
    assert held.flag.path.exists() and (session / "create_me.flag").exists()
    errors: list[Exception] = []
    assert reap_stale_claims(root, lambda run_id: False, on_error=errors.append) == []
    assert [type(e) for e in errors] == [FlagConflict]


def test_give_back_releases_every_claim_and_logs_one_it_cannot_give_back(
    root: Path, make_session: MakeSession, caplog: pytest.LogCaptureFixture
) -> None:
    lost_session, kept_session = make_session("sub/2020-01-01/001"), make_session()
    write_flag(lost_session)
    write_flag(kept_session)
    lost, kept = (claim(f, "run1") for f in sorted(find_flags(root), key=lambda f: f.path))
    os.unlink(lost.flag.path)  # removed behind the run's back
    give_back([lost, kept], "the run stopped")
    assert [(f.path, f.state) for f in _flags(root)] == [
        (kept.flag.session_path / "create_me.flag", FlagState.PENDING)
    ]
    assert [r["reason"] for r in read_flag(_flags(root)[0]).records] == ["the run stopped"]
    assert f"{lost.flag.path}: claim not given back" in caplog.text


def test_a_move_interrupted_between_link_and_unlink_is_finished(
    root: Path, make_session: MakeSession
) -> None:
    write_flag(make_session())
    held = claim(_one_flag(root), "run1")
    os.link(held.flag.path, held.source.path)  # the crash left both names
    assert release(held) == held.source
    assert [f.path for f in _flags(root)] == [held.source.path]


def test_file_systems_without_hard_links_fall_back_to_rename(
    root: Path, make_session: MakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = make_session()
    write_flag(session, ["alf/obj0.attr.npy"])

    def no_links(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    failed = fail(claim(_one_flag(root), "run1"), "boom")
    assert [f.path for f in _flags(root)] == [failed.path]
    held = claim(_one_flag(root), "run2")
    write_flag(session, ["alf/obj1.attr.npy"])
    (session / "create_me.flag").rename(failed.path)  # another failed-1 appears
    with pytest.raises(FlagConflict):
        release(held)


def test_ending_a_lost_claim_raises_claim_lost(root: Path, make_session: MakeSession) -> None:
    write_flag(make_session())
    held = claim(_one_flag(root), "run1")
    reap_stale_claims(root, lambda run_id: False)
    for end in (release, lambda c: fail(c, "boom"), complete):
        with pytest.raises(ClaimLost, match="the claim of run run1 is gone"):
            end(held)
    assert [f.state for f in _flags(root)] == [FlagState.PENDING]
