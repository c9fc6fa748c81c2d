"""The readiness rule: a session is ready once its data, not its flags, are quiet for a while."""

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from one_flows.flags import claim, fail, find_flags, is_quiet, write_flag
from one_flows.flags.readiness import session_activity

MakeSession = Callable[..., Path]


def _latest_data_change(session: Path) -> float:
    """The newest modification or status change of the data ``make_session`` wrote."""
    paths = [session / "alf", *(session / "alf").iterdir()]
    return max(max(p.lstat().st_mtime, p.lstat().st_ctime) for p in paths)


def _after(stamp: float) -> None:
    """Wait until the file-system clock has moved past ``stamp``, so later changes are later."""
    while time.time() < stamp + 0.05:
        time.sleep(0.01)


def test_a_session_whose_data_are_quiet_is_ready_however_new_its_flag(
    make_session: MakeSession,
) -> None:
    session = make_session()
    latest = _latest_data_change(session)
    _after(latest)
    flag = write_flag(session, ["alf/obj0.attr.npy"])
    future = latest + 3600
    os.utime(flag, (future, future))
    os.utime(session, (future, future))  # the flag's arrival changed the session folder
    assert is_quiet(session, 60, now=latest + 60)
    assert not is_quiet(session, 60, now=latest + 59)
    held = claim(next(find_flags(session)), "run1")  # renamed, with a lock file beside it
    assert held is not None and any(p.name.endswith(".lock") for p in session.iterdir())
    assert is_quiet(session, 60, now=latest + 60)
    fail(held, "unknown subject")  # a history line appended, renamed failed-1
    assert is_quiet(session, 60, now=latest + 60)
    assert session_activity(session).files == 2


def test_a_growing_data_file_is_not_ready(make_session: MakeSession) -> None:
    session = make_session()
    write_flag(session)
    latest = _latest_data_change(session)
    assert is_quiet(session, 60, now=latest + 60)
    _after(latest)
    with open(session / "alf" / "obj0.attr.npy", "ab") as stream:
        stream.write(b"more")
    assert not is_quiet(session, 60, now=latest + 60)
    assert is_quiet(session, 60, now=_latest_data_change(session) + 60)


def test_a_copy_that_keeps_old_modification_times_is_seen(make_session: MakeSession) -> None:
    session = make_session()
    latest = _latest_data_change(session)
    _after(latest)
    copied = session / "alf" / "obj9.attr.npy"
    copied.write_bytes(b"copied")
    os.utime(copied, (latest - 86400, latest - 86400))  # cp -p, rsync -t: the source's times
    os.utime(session / "alf", (latest - 86400, latest - 86400))
    assert not is_quiet(session, 60, now=latest + 60)


@pytest.mark.parametrize("change", ["hidden partial file", "file added and removed in a folder"])
def test_a_change_anywhere_below_the_session_folder_counts(
    make_session: MakeSession, change: str
) -> None:
    session = make_session()
    latest = _latest_data_change(session)
    _after(latest)
    if change == "hidden partial file":
        (session / "raw_video_data").mkdir()
        (session / "raw_video_data" / ".video.mp4.partial").write_bytes(b"")  # rsync's temp
    else:
        (session / "alf" / "tmp").write_bytes(b"")
        (session / "alf" / "tmp").unlink()
    assert not is_quiet(session, 60, now=latest + 60)


def test_a_second_sample_sees_what_times_cannot(make_session: MakeSession) -> None:
    session = make_session()
    (session / "raw.bin").write_bytes(b"12345")
    before = session_activity(session)
    assert (before.files, before.total_size) == (3, 1 + 2 + 5)
    later = before.latest_change + 60
    (session / "raw.bin").unlink()  # leaves no data entry with a new time
    assert is_quiet(session, 60, now=later)
    assert not is_quiet(session, 60, now=later, previous=before)
    assert is_quiet(session, 60, now=later, previous=session_activity(session))


def test_a_session_holding_only_its_flag_is_ready_at_once(root: Path) -> None:
    session = root / "lab/Subjects/sub/2020-01-01/001"
    session.mkdir(parents=True)
    write_flag(session)
    assert is_quiet(session, 3600)
    assert session_activity(session).files == 0


def test_bad_input_is_refused(make_session: MakeSession, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="quiet_seconds"):
        is_quiet(make_session(), -1)
    with pytest.raises(FileNotFoundError):
        is_quiet(tmp_path / "missing", 60)
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError):
        is_quiet(tmp_path / "file", 60)
