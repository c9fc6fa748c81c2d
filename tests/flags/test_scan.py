"""find_flags: what a walk of a data root finds, skips and reports."""

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from one.registration import RegistrationClient

from one_flows.flags import (
    Flag,
    FlagError,
    FlagLocationError,
    FlagState,
    claim,
    fail,
    find_flags,
    write_flag,
)

MakeSession = Callable[..., Path]


def _found(root: Path, **kwargs: object) -> tuple[list[Flag], list[FlagError]]:
    errors: list[FlagError] = []
    flags = list(find_flags(root, on_error=errors.append, **kwargs))
    return flags, errors


def test_finds_the_same_sessions_as_one_api(root: Path, make_session: MakeSession) -> None:
    flagged = set()
    for i in range(12):
        session = make_session(f"lab{i % 2}/Subjects/sub{i % 3}/2021-03-{i + 1:02d}/00{i % 4}")
        if i % 3:
            write_flag(session)
            flagged.add(session)
    make_session("sub/2021-01-01/001")  # no lab folder, no flag
    flags, errors = _found(root)
    oracle, _ = RegistrationClient.create_sessions(None, root, dry=True)
    assert {f.session_path for f in flags} == {Path(p) for p in oracle} == flagged
    assert errors == []
    assert all(f.state is FlagState.PENDING and f.path.parent == f.session_path for f in flags)


def test_skips_hidden_folders(root: Path, make_session: MakeSession) -> None:
    write_flag(make_session(".trash/sub/2020-01-01/001"))
    write_flag(make_session("sub/2020-01-01/001/.snapshot/sub/2020-01-02/001"))
    assert _found(root) == ([], [])


def test_symlinked_folders_are_not_followed(
    root: Path, tmp_path: Path, make_session: MakeSession
) -> None:
    outside = tmp_path / "outside" / "sub" / "2020-01-01" / "001"
    outside.mkdir(parents=True)
    write_flag(outside)
    (root / "escape").symlink_to(tmp_path / "outside", target_is_directory=True)
    session = make_session()
    write_flag(session)
    (session / "loop").symlink_to(root, target_is_directory=True)
    (session / "self").symlink_to(session, target_is_directory=True)
    flags, errors = _found(root)
    assert [f.session_path for f in flags] == [session]
    assert errors == []


def test_unusable_flags_are_reported_and_the_walk_goes_on(
    root: Path, make_session: MakeSession
) -> None:
    good = make_session("sub/2020-01-01/001")
    write_flag(good)
    write_flag(make_session("sub/2020-01-01/001/alf/deeper"))  # inside a session, not its root
    (root / "not_a_session").mkdir()
    write_flag(root / "not_a_session")
    write_flag(make_session("sub/2020-02-30/001"))  # no such date
    dir_flag = make_session("sub/2020-01-02/001") / "create_me.flag"
    dir_flag.mkdir()
    link_flag = make_session("sub/2020-01-03/001") / "create_me.flag"
    link_flag.symlink_to(good / "create_me.flag")
    flags, errors = _found(root)
    assert [f.session_path for f in flags] == [good]
    assert all(isinstance(e, FlagLocationError) for e in errors)
    reasons = {Path(e.flag).relative_to(root).as_posix(): e.reason for e in errors}
    assert set(reasons) == {
        "sub/2020-01-01/001/alf/deeper/create_me.flag",
        "not_a_session/create_me.flag",
        "sub/2020-02-30/001/create_me.flag",
        "sub/2020-01-02/001/create_me.flag",
        "sub/2020-01-03/001/create_me.flag",
    }
    assert "not in a session folder" in reasons["not_a_session/create_me.flag"]
    assert "not a regular file" in reasons["sub/2020-01-02/001/create_me.flag"]
    assert "symbolic link" in reasons["sub/2020-01-03/001/create_me.flag"]
    assert str(dir_flag) in str(next(e for e in errors if e.flag == str(dir_flag)))


def test_states_and_names_select_flags(root: Path, make_session: MakeSession) -> None:
    pending = make_session("sub/2020-01-01/001")
    write_flag(pending)
    failing = make_session("sub/2020-01-01/002")
    write_flag(failing)
    (held,) = [f for f in find_flags(root) if f.session_path == failing]
    failed = fail(claim(held, "run1"), "boom")
    claimed_session = make_session("sub/2020-01-01/003")
    write_flag(claimed_session)
    held = claim(next(f for f in find_flags(root) if f.session_path == claimed_session), "run2")
    write_flag(make_session("sub/2020-01-01/004"), name="register_me.flag")
    (claimed_session / "create_me.flag.bak").write_text("")

    by_state = {f.state: f for f in find_flags(root, states=FlagState)}
    assert set(by_state) == {FlagState.PENDING, FlagState.FAILED, FlagState.CLAIMED}
    assert by_state[FlagState.FAILED].path == failed.path
    assert by_state[FlagState.FAILED].attempt == 1
    assert by_state[FlagState.CLAIMED].run_id == "run2" == held.run_id
    claimable = {f.session_path for f in find_flags(root)}
    assert claimable == {pending, failing}
    both = {f.name for f in find_flags(root, names=("create_me.flag", "register_me.flag"))}
    assert both == {"create_me.flag", "register_me.flag"}


def test_bad_roots_and_names_are_refused(root: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list(find_flags(root / "missing"))
    (root / "file").write_text("")
    with pytest.raises(NotADirectoryError, match="not a directory"):
        list(find_flags(root / "file"))
    with pytest.raises(ValueError, match="invalid flag name"):
        list(find_flags(root, names=("../x.flag",)))


def test_unlistable_folders_are_skipped(
    root: Path, make_session: MakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = make_session()
    write_flag(session)
    write_flag(make_session("locked/sub/2020-01-01/001"))
    real_scandir = os.scandir

    def scandir(path: str) -> object:
        if os.path.basename(path) == "locked":
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert [f.session_path for f in find_flags(root)] == [session]
