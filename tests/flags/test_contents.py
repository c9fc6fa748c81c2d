"""Flag contents: ibllib's file-list format, refusals naming flag and line, and unreadable flags."""

import builtins
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from one_flows.flags import (
    FlagContentError,
    FlagContents,
    FlagError,
    FlagLocationError,
    FlagUnreadable,
    read_flag,
    write_flag,
)
from one_flows.flags.contents import MAX_FLAG_BYTES, append_record, format_flag, parse_flag_text

MakeSession = Callable[..., Path]
P = PurePosixPath


def test_empty_flag_means_every_file() -> None:
    assert parse_flag_text("") == FlagContents(None)
    assert parse_flag_text("\n  \n\t\n").files is None


def test_ibllib_file_lists_are_read() -> None:
    # ibllib's write_flag_file joins paths with '\n' and writes no final newline.
    text = "\n".join(["raw_video_data/_iblrig_leftCamera.raw.mp4", "alf/_ibl_trials.table.pqt"])
    assert parse_flag_text(text).files == (
        P("raw_video_data/_iblrig_leftCamera.raw.mp4"),
        P("alf/_ibl_trials.table.pqt"),
    )


def test_whitespace_backslashes_duplicates_and_dots_are_normalised(
    make_session: MakeSession,
) -> None:
    text = "  alf/a.b.npy \r\n\r\nraw_video_data\\c.d.mp4\n./alf//a.b.npy\n\talf/x.y.npy\t"
    flag = make_session() / "create_me.flag"
    flag.write_bytes(b"\xef\xbb\xbf" + text.encode())  # Windows editors start with a BOM
    assert read_flag(flag).files == (
        P("alf/a.b.npy"),
        P("raw_video_data/c.d.mp4"),
        P("alf/x.y.npy"),
    )


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("../other/2020-01-01/001/alf/a.b.npy", "'..' is refused"),
        ("alf/../../x", "'..' is refused"),
        ("..\\x", "'..' is refused"),
        ("/etc/passwd", "absolute paths are refused"),
        ("\\\\server\\share\\x", "absolute paths are refused"),
        ("C:\\Data\\x.npy", "absolute paths are refused"),
        ("./", "session folder itself"),
        ("alf/a\x00b", "control characters"),
    ],
)
def test_paths_leaving_the_session_are_refused_naming_flag_and_line(line: str, reason: str) -> None:
    with pytest.raises(FlagContentError) as caught:
        parse_flag_text(f"alf/ok.x.npy\n\n{line}\n", "/s/create_me.flag")
    error = caught.value
    assert (error.flag, error.line, error.text) == ("/s/create_me.flag", 3, line.strip())
    assert reason in error.reason
    assert str(error).startswith("/s/create_me.flag: line 3 ")


_tokens = [*'./\\:C \t\n\r\x00x{}[]"', "..", "//one-flows ", "{}", '{"a": 1}']
_path_like_text = st.lists(st.sampled_from(_tokens), max_size=30).map("".join)


@given(st.one_of(st.text(), _path_like_text))
def test_arbitrary_text_parses_or_raises_flag_content_error(text: str) -> None:
    try:
        contents = parse_flag_text(text)
    except FlagContentError as error:
        assert error.line >= 1
        return
    for path in contents.files or ():
        assert not path.is_absolute()
        assert ".." not in path.parts and path.parts
        assert P("/session", path).is_relative_to("/session")
        assert "\\" not in path.as_posix()


_component = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="/\\"),
    min_size=1,
    max_size=12,
).filter(lambda c: c not in (".", "..") and c == c.strip() and ":" not in c[:2])
_relative = st.lists(_component, min_size=1, max_size=4).map(lambda parts: P(*parts))


@given(st.lists(_relative, max_size=20))
def test_writing_then_reading_a_file_list_round_trips(files: list[PurePosixPath]) -> None:
    contents = parse_flag_text(format_flag(files))
    unique = tuple(dict.fromkeys(files))
    assert contents.files == (unique or None)


def test_format_refuses_what_the_parser_would_refuse() -> None:
    with pytest.raises(FlagContentError, match=r"'\.\.' is refused"):
        format_flag(["alf", "../x"])
    with pytest.raises(FlagContentError, match="whitespace"):
        format_flag([" alf/x"])


def test_history_lines_are_kept_apart_from_the_file_list(make_session: MakeSession) -> None:
    flag = write_flag(make_session(), ["alf/obj0.attr.npy"])
    flag.write_text(flag.read_text().rstrip("\n"))  # an ibllib flag: no final newline
    append_record(flag, {"event": "failed", "reason": "line one\nline two"})
    contents = read_flag(flag)
    assert contents.files == (P("alf/obj0.attr.npy"),)
    assert contents.records == ({"event": "failed", "reason": "line one\nline two"},)
    with pytest.raises(FlagContentError, match="not JSON"):
        parse_flag_text("//one-flows {nope")
    with pytest.raises(FlagContentError, match="not a JSON object"):
        parse_flag_text("//one-flows [1]")


def test_symlinks_resolving_outside_the_session_are_refused(
    make_session: MakeSession, tmp_path: Path
) -> None:
    session = make_session()
    other = make_session("sub/2020-01-01/002")
    (tmp_path / "secret").write_text("")
    (session / "alf" / "out.link.npy").symlink_to(tmp_path / "secret")
    (session / "sideways").symlink_to(other, target_is_directory=True)
    (session / "alf" / "in.link.npy").symlink_to(session / "alf" / "obj0.attr.npy")
    ok = write_flag(session, ["alf/in.link.npy", "alf/not_yet_there.x.npy"])
    assert read_flag(ok).files == (P("alf/in.link.npy"), P("alf/not_yet_there.x.npy"))
    for listed in ("alf/out.link.npy", "sideways/alf/obj0.attr.npy"):
        flag = write_flag(session, ["alf/obj0.attr.npy", listed])
        with pytest.raises(FlagContentError, match="outside the session") as caught:
            read_flag(flag)
        assert caught.value.line == 2 and caught.value.flag == str(flag)


def test_sessions_resolving_outside_the_root_are_refused(root: Path, tmp_path: Path) -> None:
    real = tmp_path / "elsewhere" / "sub" / "2020-01-01" / "001"
    real.mkdir(parents=True)
    (root / "sub").mkdir()
    (root / "sub" / "2020-01-01").symlink_to(real.parent, target_is_directory=True)
    flag = write_flag(root / "sub" / "2020-01-01" / "001")
    assert read_flag(flag).files is None
    with pytest.raises(FlagLocationError, match="outside the data root"):
        read_flag(flag, root=root)


def test_unreadable_flags_raise_flag_unreadable(
    make_session: MakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = make_session()
    (session / "create_me.flag").mkdir()
    with pytest.raises(FlagUnreadable, match="cannot read: Is a directory"):
        read_flag(session / "create_me.flag")
    (session / "create_me.flag").rmdir()

    flag = session / "create_me.flag"
    flag.write_bytes(b"alf/ok.x.npy\nalf/\xff\xfe.npy\n")
    with pytest.raises(FlagUnreadable, match=r"not UTF-8 text: byte 0xff at offset 17"):
        read_flag(flag)

    flag.write_bytes(b"x" * (MAX_FLAG_BYTES + 1))
    with pytest.raises(FlagUnreadable, match="larger than"):
        read_flag(flag)

    flag.write_bytes(b"")
    real_open = builtins.open

    def denied(path: object, *args: object, **kwargs: object) -> object:
        if str(path) == str(flag):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", denied)
    with pytest.raises(FlagError, match="cannot read: Permission denied"):
        read_flag(flag)
