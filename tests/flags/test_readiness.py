"""is_quiet: a session is ready once nothing in it changed for the quiet time."""

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from one_flows.flags import is_quiet, session_activity

MakeSession = Callable[..., Path]
NOW = 1_700_000_000.0


def _age_everything(session: Path, seconds_ago: float) -> None:
    stamp = NOW - seconds_ago
    for folder, subfolders, files in os.walk(session, topdown=False):
        for name in files + subfolders:
            os.utime(os.path.join(folder, name), (stamp, stamp), follow_symlinks=False)
        os.utime(folder, (stamp, stamp))


def test_a_session_untouched_for_the_quiet_time_is_quiet(make_session: MakeSession) -> None:
    session = make_session()
    _age_everything(session, 120)
    assert is_quiet(session, 60, now=NOW)
    assert not is_quiet(session, 121, now=NOW)


@pytest.mark.parametrize(
    "touched",
    ["alf/obj0.attr.npy", "alf", ".", "raw_video_data/.video.mp4.partial"],
)
def test_a_recent_change_anywhere_makes_the_session_busy(
    make_session: MakeSession, touched: str
) -> None:
    session = make_session()
    (session / "raw_video_data").mkdir()
    (session / "raw_video_data" / ".video.mp4.partial").write_bytes(b"")  # hidden: rsync temp
    _age_everything(session, 120)
    os.utime(session / touched, (NOW - 5, NOW - 5))
    assert not is_quiet(session, 60, now=NOW)


def test_the_two_sample_check_catches_copies_that_keep_old_mtimes(
    make_session: MakeSession,
) -> None:
    session = make_session()
    _age_everything(session, 120)
    before = session_activity(session)
    assert (before.files, before.total_size) == (2, 1 + 2)
    assert is_quiet(session, 60, now=NOW, previous=before)
    with open(session / "alf" / "obj0.attr.npy", "ab") as stream:
        stream.write(b"more")
    _age_everything(session, 120)  # cp -p / rsync -t set the source's old times
    assert is_quiet(session, 60, now=NOW)
    assert not is_quiet(session, 60, now=NOW, previous=before)


def test_bad_input_is_refused(make_session: MakeSession, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="quiet_seconds"):
        is_quiet(make_session(), -1)
    with pytest.raises(FileNotFoundError):
        is_quiet(tmp_path / "missing", 60)
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError):
        is_quiet(tmp_path / "file", 60)
