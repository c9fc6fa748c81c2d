"""Each deliberate difference from ONE-api (numbered as in the one_flows.alf docstring):
what we return, next to what ONE-api gives."""

from __future__ import annotations

import pathlib

import one.alf.path as one_path
import one.alf.spec as one_spec
import pytest

import one_flows.alf as alf

S = "subject/2020-01-01/001"


def test_1_hyphenated_lab_is_kept_whole() -> None:
    path = "cortex-lab/Subjects/algernon/2026-01-03/001/alf/spikes.times.npy"
    ours = alf.full_path_parts(path, as_dict=True)
    assert (ours["lab"], ours["subject"], ours["collection"]) == ("cortex-lab", "algernon", "alf")
    assert one_path.full_path_parts(path, as_dict=True)["lab"] == "lab"
    assert alf.get_alf_path("/srv/" + path) == path
    assert one_path.get_alf_path("/srv/" + path) == path.removeprefix("cortex-")


def test_1_dotted_lab() -> None:
    path = "/data/my.lab/Subjects/sub/2020-01-01/001"
    assert alf.session_path_parts(path) == ("my.lab", "sub", "2020-01-01", "001")
    assert one_path.session_path_parts(path) == ("lab", "sub", "2020-01-01", "001")


def test_2_subject_is_not_cut_from_a_folder_name() -> None:
    path = "a/foo bar/2020-01-01/001"
    assert one_path.session_path_parts(path) == (None, "bar", "2020-01-01", "001")
    assert one_spec.is_session_path(path)
    with pytest.raises(alf.ALFInvalidPath) as error:
        alf.session_path_parts(path)
    assert error.value.part == "subject"
    assert not alf.is_session_path(path)


def test_2_over_padded_number_is_not_truncated() -> None:
    path = "subject/2020-01-01/0001"
    assert one_path.session_path_parts(path) == (None, "subject", "2020-01-01", "000")
    with pytest.raises(alf.ALFInvalidPath) as error:
        alf.session_path_parts(path)
    assert error.value.part == "number"
    # get_session_path stays lenient, so padded_sequence can still repair the number
    assert alf.padded_sequence(path + "/alf") == pathlib.Path("subject/2020-01-01/001/alf")


def test_3_namespace_needs_closing_underscore() -> None:
    assert one_path.filename_parts("_trials.intervals.npy")[:2] == ("trial", "s")
    assert alf.filename_parts("_trials.intervals.npy")[:2] == (None, "trials")
    assert alf.filename_parts("_ibl_trials.intervals.npy")[:2] == ("ibl", "trials")


def test_4_trailing_newline_is_invalid() -> None:
    assert one_spec.is_valid("obj.attr.npy\n")
    assert not alf.is_valid("obj.attr.npy\n")
    assert one_spec.is_session_path(S + "\n")
    assert not alf.is_session_path(S + "\n")
    with pytest.raises(alf.ALFInvalidFilename) as error:
        alf.filename_parts("obj.attr.npy\n")
    assert error.value.part == "extension"


def test_5_nested_collection_folder_path() -> None:
    path = f"{S}/alf/probe00"
    with pytest.raises(Exception, match="probe00"):
        one_path.full_path_parts(path)
    assert alf.full_path_parts(path)[:6] == (
        None,
        "subject",
        "2020-01-01",
        "001",
        "alf/probe00",
        None,
    )


@pytest.mark.parametrize(
    ("path", "part"),
    [
        (f"{S}/alf/#v1#/alf", "revision"),
        (f"{S}/alf/#v1#/sub/obj.attr.npy", "revision"),
        (f"{S}/foo bar/obj.attr.npy", "collection"),
    ],
)
def test_5_folders_are_never_silently_dropped(path: str, part: str) -> None:
    # ONE-api parses these, dropping the folders it cannot read
    assert one_path.full_path_parts(path)[1] == "subject"
    with pytest.raises(alf.ALFInvalidPath) as error:
        alf.full_path_parts(path)
    assert error.value.part == part
    assert error.value.path == path


def test_6_get_session_path_does_not_wrap_around() -> None:
    assert one_path.get_session_path("1/x/2020-01-01") == pathlib.Path("1")
    assert alf.get_session_path("1/x/2020-01-01") is None


def test_6_session_number_is_ascii() -> None:
    assert one_path.get_session_path("s/2020-01-01/²") == pathlib.Path("s/2020-01-01/²")
    assert alf.get_session_path("s/2020-01-01/²") is None


def test_7_backslashes_are_separators() -> None:
    path = "C:\\Data\\subject\\2020-01-01\\1\\trials.intervals.npy"
    assert one_path.get_session_path(path) is None  # on POSIX; its docstring promises this:
    assert alf.get_session_path(path) == pathlib.Path("C:/Data/subject/2020-01-01/1")
    assert alf.full_path_parts(path)[1:4] == ("subject", "2020-01-01", "1")
    assert alf.is_session_path("lab\\Subjects\\subject\\2020-01-01\\001")
    assert alf.padded_sequence(path) == pathlib.Path(
        "C:/Data/subject/2020-01-01/001/trials.intervals.npy"
    )


def test_8_is_valid_accepts_paths() -> None:
    with pytest.raises(TypeError):
        one_spec.is_valid(pathlib.Path("obj.attr.npy"))
    assert alf.is_valid(pathlib.Path("obj.attr.npy"))


def test_8_readable_alf_has_no_leading_space() -> None:
    assert one_spec.readableALF("SparseNoise") == " sparse noise"
    assert alf.readableALF("SparseNoise") == "sparse noise"


def test_9_errors_are_alf_errors() -> None:
    with pytest.raises(IndexError):
        one_spec.to_alf("", "times", "npy")
    with pytest.raises(alf.ALFInvalidPart) as error:
        alf.to_alf("", "times", "npy")
    assert error.value.part == "object"
    impossible = "subject/2020-02-30/001/alf/#v1#/obj.attr.npy"
    with pytest.raises(AttributeError):
        one_path.without_revision(impossible)
    with pytest.raises(alf.ALFInvalidPath) as error:
        alf.without_revision(impossible)
    assert error.value.part == "date"


@pytest.mark.parametrize(
    ("kwargs", "one_gives", "part"),
    [
        ({"attribute": ""}, "spikes..npy", "attribute"),
        ({"timescale": ("a.b",)}, "spikes.times_a.b.npy", "timescale"),
        ({"extra": ("x", "y z")}, "spikes.times.x.y z.npy", "extra"),
        ({"namespace": "a-b"}, "_a-b_spikes.times.npy", "namespace"),
    ],
)
def test_10_to_alf_refuses_invalid_parts(kwargs: dict, one_gives: str, part: str) -> None:
    arguments = {"object": "spikes", "attribute": "times", "extension": "npy", **kwargs}
    assert one_spec.to_alf(**arguments) == one_gives
    with pytest.raises(alf.ALFInvalidPart) as error:
        alf.to_alf(**arguments)
    assert error.value.part == part


def test_10_add_uuid_string_needs_a_uuid() -> None:
    assert one_path.add_uuid_string("a/obj.attr.npy", 5) == pathlib.Path("a/obj.attr.5.npy")
    with pytest.raises(alf.ALFInvalidPart) as error:
        alf.add_uuid_string("a/obj.attr.npy", 5)
    assert error.value.part == "uuid"
