"""Composition, naming helpers, errors and DatasetPath of one_flows.alf."""

from __future__ import annotations

import pathlib
import uuid

import one.alf.path as one_path
import one.alf.spec as one_spec
import pytest

import one_flows.alf as alf

U = "2622b17c-9408-4910-99cb-abf16d9225b9"

TO_ALF_CASES = [
    (
        ("spike_train", "ids", "npy"),
        {"namespace": "ibl", "timescale": "ephys clock", "extra": ("a", "b")},
    ),
    (("spikes", "times", "ssv"), {}),
    (("spikes", "times", ".npy"), {"namespace": "ibl", "timescale": ("ephys clock", "minutes")}),
    (("wheel", "timestamps", "npy", "ibl", "bpod", ("raw", "v12")), {}),
    (("trials", "stim_on_times", "npy"), {"timescale": "bpod"}),
    (("trials", "go_cue_trigger_times", "npy"), {}),
    (("trials", "intervals", "npy"), {"extra": "a.b"}),
    (("Trials", "GoCue", "npy"), {"timescale": ["ephys clock", "", "minutes"]}),
    (("mpci ROIs", "passive_RFM", "npy"), {}),
    (("ABC", "XYZs", "npy"), {}),
    (("a_", "x", "npy"), {"timescale": "", "extra": ""}),
    (("wheel", "position_timestamps", "npy"), {}),
    (("obj", "attr", "npy"), {"extra": U}),
]


@pytest.mark.parametrize(("args", "kwargs"), TO_ALF_CASES)
def test_to_alf_agrees_with_one(args: tuple, kwargs: dict) -> None:
    name = alf.to_alf(*args, **kwargs)
    assert name == one_spec.to_alf(*args, **kwargs)
    assert alf.is_valid(name)


def test_to_alf_camel_cases_as_one_documents() -> None:
    name = alf.to_alf(
        "spike_train", "ids", "npy", namespace="ibl", timescale="ephys clock", extra=("a", "b")
    )
    assert name == "_ibl_spikeTrain.ids_ephysClock.a.b.npy"
    assert alf.filename_parts(name) == ("ibl", "spikeTrain", "ids", "ephysClock", "a.b", "npy")


@pytest.mark.parametrize(
    ("args", "part"),
    [
        (("spikes", "times", ""), "extension"),
        (("spikes", "times", "n.py"), "extension"),
        (("spikes.x", "times", "npy"), "object"),
        (("_spikes", "times", "npy"), "object"),
        (("spikes", "ti.mes", "npy"), "attribute"),
        (("spikes", "times", "npy", "a_b"), "namespace"),
    ],
)
def test_to_alf_rejects_bad_parts(args: tuple, part: str) -> None:
    with pytest.raises(alf.ALFInvalidPart) as error:
        alf.to_alf(*args)
    assert error.value.part == part
    assert part in str(error.value)
    with pytest.raises((ValueError, TypeError)):  # ONE-api rejects them too
        one_spec.to_alf(*args)


WORDS = [
    "sparseNoise",
    "someROIDataset",
    "ROIs",
    "fooBAR",
    "a1B",
    "x",
    "X",
    "ABCd",
    "",
    "camelCaseABC2x",
    "ROIsFoo",
    "motion_energy",
    "mpci ROIs",
    "FOO_bar",
    "a  b",
    "Hello world",
    "foo_BARs_baz",
]


@pytest.mark.parametrize("word", WORDS)
def test_case_helpers_agree_with_one(word: str) -> None:
    assert alf.spec.dromedary(word) == one_spec._dromedary(word)
    if word and not word[0].isupper():  # ONE-api prefixes a space otherwise (difference 8)
        for capitalize in (False, True):
            assert alf.readableALF(word, capitalize) == one_spec.readableALF(word, capitalize)


@pytest.mark.parametrize(
    "value",
    [
        U,
        U.upper(),
        U.replace("-", ""),
        "2622b17c-9408-1910-99cb-abf16d9225b9",
        "2622b17c-9408-5910-99cb-abf16d9225b9",
        "2622b17c-9408-3910-99cb-abf16d9225b9",
        f"{{{U}}}",
        "nope",
        "",
        None,
        5,
        3.5,
        uuid.UUID(U),
        uuid.UUID(U).bytes,
    ],
)
def test_uuid_predicates_agree_with_one(value: object) -> None:
    assert alf.is_uuid_string(value) == one_spec.is_uuid_string(value)
    assert alf.is_uuid(value) == one_spec.is_uuid(value)


@pytest.mark.parametrize("part", list(alf.SPEC_DESCRIPTION))
def test_describe_points_at_each_part(part: str, capsys: pytest.CaptureFixture[str]) -> None:
    alf.describe(part)
    lines = capsys.readouterr().out.splitlines()
    pattern, caret = lines[0], lines[1]
    assert pattern[caret.index("^") :].startswith(part)
    assert caret.count("^") == len(part)
    assert lines[3] == part.upper()


def test_describe_all_parts_and_unknown_part(capsys: pytest.CaptureFixture[str]) -> None:
    alf.describe(width=40)
    out = capsys.readouterr().out
    assert all(name.upper() in out for name in alf.SPEC_DESCRIPTION)
    assert max(len(line) for line in out.splitlines()[1:]) <= 40
    with pytest.raises(alf.ALFInvalidPart, match="bogus"):
        alf.describe("bogus")


def test_regex_overrides_a_part() -> None:
    trials = alf.regex(alf.spec.FILE_SPEC, object="trials")
    assert trials.match("_ibl_trials.intervals.npy")["namespace"] == "ibl"
    assert trials.match("wheel.position.npy") is None
    with pytest.raises(alf.ALFInvalidPart, match="bogus"):
        alf.regex(bogus="x")


def test_errors_carry_path_and_part() -> None:
    with pytest.raises(alf.ALFInvalidFilename) as error:
        alf.filename_parts("obj.é.npy")
    assert (error.value.path, error.value.part) == ("obj.é.npy", "attribute")
    assert "'obj.é.npy'" in str(error.value) and "attribute" in str(error.value)
    assert isinstance(error.value, ValueError)
    with pytest.raises(alf.ALFInvalidPath) as error:
        alf.rel_path_parts("alf/#v1#/x/obj.attr.npy")
    assert error.value.part == "revision"
    with pytest.raises(alf.ALFInvalid) as error:
        alf.filename_parts(42)
    assert "int" in str(error.value)


@pytest.mark.parametrize(
    "path",
    [
        "/data/lab/Subjects/sub/2020-01-01/001/alf/#v1#/spikes.times.npy",
        "sub/2020-01-01/1/spikes.times.npy",
        "sub/2020-01-01/001/alf/probe00/spikes.times.npy",
        "sub/2020-01-01/001/#v1#/obj.attr.npy",
        pathlib.PurePosixPath("sub/2020-01-01/001/alf/obj.attr.npy"),
    ],
)
def test_with_revision_of_dataset_agrees_with_one(path: str) -> None:
    ours = alf.with_revision(path, "2024-01-01")
    assert ours == one_path.ensure_alf_path(path).with_revision("2024-01-01")
    assert type(ours) is (type(pathlib.Path()) if isinstance(path, str) else type(path))


@pytest.mark.parametrize(
    "folder",
    ["/data/lab/Subjects/sub/2020-01-01/001/alf/#v1#", "sub/2020-01-01/1", "s/2020-01-01/001/alf"],
)
def test_with_revision_of_folder_agrees_with_one(folder: str) -> None:
    assert alf.with_revision(folder, "v2") == one_path.ALFPath(folder).with_revision("v2")


def test_with_revision_rejects_bad_revision() -> None:
    with pytest.raises(alf.ALFInvalidPart) as error:
        alf.with_revision("sub/2020-01-01/001/obj.attr.npy", "#v1#")
    assert error.value.part == "revision"


def test_remove_uuid_string_of_bare_uuid_name() -> None:
    with pytest.raises(ValueError):
        one_path.remove_uuid_string(U)
    with pytest.raises(alf.ALFInvalidFilename):
        alf.remove_uuid_string(U)


def test_add_uuid_string_strict_conflict() -> None:
    other = str(uuid.uuid4())
    with pytest.raises(alf.ALFUUIDMismatch) as error:
        alf.add_uuid_string(f"a/obj.attr.{U}.npy", other, strict=True)
    assert error.value.part == "uuid" and U in str(error.value)
    assert alf.add_uuid_string(f"a/obj.attr.{U}.npy", uuid.UUID(other)) == pathlib.Path(
        f"a/obj.attr.{other}.npy"
    )


FULL = "lab/Subjects/sub/2020-01-01/001/alf/probe00/#v1#/_ns_obj.attr_clock.x.y.npy"


@pytest.mark.parametrize(
    "path",
    [
        FULL,
        "/mnt/" + FULL,
        "sub/2020-01-01/1/obj.attr.npy",
        "alf/#v1#/obj.attr.npy",
        "obj.attr.npy",
        pathlib.PurePosixPath(FULL),
    ],
)
def test_dataset_path_parses_like_one(path: str) -> None:
    parsed = alf.DatasetPath.parse(path)
    if alf.session_path_parts(path, assert_valid=False)[1] is not None:
        expected = one_path.full_path_parts(path, as_dict=True)
    else:
        expected = {**dict.fromkeys(alf.PARTS), **one_path.rel_path_parts(path, as_dict=True)}
    assert parsed.as_dict() == dict(expected)
    assert list(parsed.as_dict()) == list(alf.PARTS)


def test_dataset_path_composes_back() -> None:
    parsed = alf.DatasetPath.parse("/mnt/" + FULL)
    assert parsed.path == str(parsed) == FULL
    assert parsed.session_path == "lab/Subjects/sub/2020-01-01/001"
    assert parsed.relative_path == "alf/probe00/#v1#/_ns_obj.attr_clock.x.y.npy"
    assert parsed.filename == "_ns_obj.attr_clock.x.y.npy"
    bare = alf.DatasetPath(object="spikes", attribute="times", extension="npy")
    assert (bare.session_path, bare.path) == (None, "spikes.times.npy")


@pytest.mark.parametrize(
    ("parts", "part"),
    [
        ({"object": "spi.kes"}, "object"),
        ({"object": ""}, "object"),
        ({"attribute": None}, "attribute"),
        ({"namespace": "a_b"}, "namespace"),
        ({"timescale": "a.b"}, "timescale"),
        ({"collection": "a b"}, "collection"),
        ({"collection": "/alf"}, "collection"),
        ({"revision": "v#1"}, "revision"),
        ({"subject": "sub", "date": "2020-01-01"}, "number"),
        ({"lab": "lab"}, "subject"),
        ({"subject": "sub", "date": "2020-01-01", "number": "0001"}, "number"),
        ({"subject": "s b", "date": "2020-01-01", "number": "1"}, "subject"),
        ({"extension": 5}, "extension"),
    ],
)
def test_dataset_path_rejects_bad_parts(parts: dict, part: str) -> None:
    base = {"object": "spikes", "attribute": "times", "extension": "npy"}
    with pytest.raises(alf.ALFInvalidPart) as error:
        alf.DatasetPath(**{**base, **parts})
    assert error.value.part == part


@pytest.mark.parametrize("path", ["sub/2020-01-01/001/alf", "foo.npy", ""])
def test_dataset_path_parse_rejects_non_datasets(path: str) -> None:
    with pytest.raises(alf.ALFInvalid):
        alf.DatasetPath.parse(path)


@pytest.mark.parametrize(
    ("parse", "path", "error", "part"),
    [
        (alf.filename_parts, "foo.npy", alf.ALFInvalidFilename, "attribute"),
        (alf.filename_parts, "_a-b_obj.attr.npy", alf.ALFInvalidFilename, "namespace"),
        (alf.filename_parts, "obj attr.x.npy", alf.ALFInvalidFilename, "object"),
        (alf.filename_parts, "obj.attr_.npy", alf.ALFInvalidFilename, "timescale"),
        (alf.filename_parts, "obj.attr.x y.npy", alf.ALFInvalidFilename, "extra"),
        (alf.filename_parts, "obj.attr.np-y", alf.ALFInvalidFilename, "extension"),
        (alf.session_path_parts, "sub/2020-01-01", alf.ALFInvalidPath, "number"),
        (alf.session_path_parts, "sub/20200101/001", alf.ALFInvalidPath, "date"),
        (alf.session_path_parts, "2020-01-01/001", alf.ALFInvalidPath, "subject"),
        (
            alf.full_path_parts,
            "la b/Subjects/s/2020-01-01/001/x y/o.a.n",
            alf.ALFInvalidPath,
            "collection",
        ),
        (alf.full_path_parts, "s/2020-01-01/001/alf/#v1/o.a.n", alf.ALFInvalidPath, "revision"),
        (alf.full_path_parts, "s/2020-01-01/001/alf/o.a.n-n", alf.ALFInvalidFilename, "extension"),
        (alf.rel_path_parts, "alf/#v1#/x/obj.attr.npy", alf.ALFInvalidPath, "revision"),
        (alf.padded_sequence, "sub/2020-02-30/1", alf.ALFInvalidPath, "date"),
    ],
)
def test_errors_name_the_broken_part(parse, path: str, error: type, part: str) -> None:
    with pytest.raises(error) as raised:
        parse(path)
    assert (raised.value.path, raised.value.part) == (path, part)
    assert f"(part: {part})" in str(raised.value)
