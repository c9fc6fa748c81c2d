"""Flag file names encode the state: composing and parsing agree, and bad run ids are refused."""

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from one_flows.flags import Flag, FlagState
from one_flows.flags.names import (
    check_run_id,
    compose_name,
    is_flag_file,
    name_pattern,
    parse_name,
)

NAMES = ("create_me.flag", "register_me.flag")
run_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,40}", fullmatch=True).filter(
    lambda r: not r.startswith("failed-")
)


@given(
    name=st.sampled_from(NAMES),
    attempt=st.integers(0, 999),
    run_id=run_ids,
)
def test_claimed_and_failed_names_parse_back(name: str, attempt: int, run_id: str) -> None:
    claimed = compose_name(name, FlagState.CLAIMED, attempt, run_id)
    assert parse_name(claimed, NAMES) == (name, FlagState.CLAIMED, attempt, run_id)
    if attempt:
        failed = compose_name(name, FlagState.FAILED, attempt)
        assert failed == f"{name}.failed-{attempt}"
        assert parse_name(failed, NAMES) == (name, FlagState.FAILED, attempt, None)


def test_the_names_of_a_flags_life() -> None:
    assert compose_name("create_me.flag", FlagState.PENDING) == "create_me.flag"
    assert compose_name("create_me.flag", FlagState.CLAIMED, 0, "r1") == "create_me.flag.r1.claimed"
    assert (
        compose_name("create_me.flag", FlagState.CLAIMED, 2, "r1")
        == "create_me.flag.failed-2.r1.claimed"
    )
    assert compose_name("create_me.flag", FlagState.QUARANTINED) == "create_me.flag.quarantined"
    assert parse_name("create_me.flag.done", NAMES) == ("create_me.flag", FlagState.DONE, 0, None)


@pytest.mark.parametrize(
    "file_name",
    [
        "create_me.flags",
        "create_me.flag.bak",
        "create_me.flag.failed-0",
        "create_me.flag.failed-01",
        "create_me.flag..claimed",
        "create_me.flag.a.b.claimed",
        "other.flag",
        "xcreate_me.flag",
    ],
)
def test_other_names_are_not_flags(file_name: str) -> None:
    assert parse_name(file_name, NAMES) is None


@pytest.mark.parametrize("run_id", ["", "a.b", "a/b", "-x", "failed-1", "x" * 129, "é"])
def test_bad_run_ids_are_refused(run_id: str) -> None:
    with pytest.raises(ValueError, match="invalid run id"):
        check_run_id(run_id)


def test_bad_states_are_refused() -> None:
    with pytest.raises(ValueError, match="attempt must be >= 1"):
        compose_name("create_me.flag", FlagState.FAILED, 0)
    with pytest.raises(ValueError, match="needs a run id"):
        compose_name("create_me.flag", FlagState.CLAIMED, 0)


def test_moved_keeps_the_folder_and_session() -> None:
    flag = Flag(
        Path("/d/s/2020-01-01/001/create_me.flag"),
        Path("/d/s/2020-01-01/001"),
        "create_me.flag",
        FlagState.PENDING,
    )
    failed = flag.moved(FlagState.FAILED, 2)
    assert failed.path == Path("/d/s/2020-01-01/001/create_me.flag.failed-2")
    assert failed.claimable and failed.session_path == flag.session_path
    assert not flag.moved(FlagState.QUARANTINED, 0).claimable


@pytest.mark.parametrize(
    ("file_name", "flag"),
    [
        ("create_me.flag", True),
        ("register_me.flag.failed-2", True),
        ("create_me.flag.3f2a9c1e-58f0-4cf5-a3a9-0f8f0c1d2e3b.claimed", True),
        ("create_me.flag.failed-1.run-7.claimed", True),
        ("create_me.flag.done", True),
        ("create_me.flag.quarantined", True),
        ("trials.flag.npy", False),
        ("create_me.flag.npy", False),
        ("spikes.times.npy", False),
        (".flag", False),
    ],
)
def test_is_flag_file_knows_every_state_and_no_dataset(file_name, flag):
    assert is_flag_file(file_name) is flag


def test_flag_names_must_end_in_dot_flag():
    with pytest.raises(ValueError, match=r"end in '\.flag'"):
        name_pattern(("create_me.txt",))
