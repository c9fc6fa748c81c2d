"""Which files are registrable: dataset-type matching, find_files, and the flag-file scan."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from one_flows.registration import AMBIGUOUS_TYPE, NO_DATASET_TYPE, NOT_ALF, UNKNOWN_EXTENSION
from one_flows.registration.files import DatasetTypeMatcher, glob_matches
from one_flows.targets import DatasetType

from .conftest import BAD_FILES, GOOD_FILES

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

TYPES = [
    DatasetType("trials.table", "_ibl_trials.table*.pqt"),
    DatasetType("_iblrig_taskData.raw", "_iblrig_taskdata.raw*.jsonable"),
    DatasetType("spikes.times", ""),
    DatasetType("wheel.position", "*wheel.position*"),
    DatasetType("wheel.any", "*wheel.*"),
]


@pytest.mark.parametrize(
    ("rel_path", "expected"),
    [
        ("alf/_ibl_trials.table.pqt", ("trials.table", None)),
        ("alf/_IBL_TRIALS.Table.pqt", ("trials.table", None)),  # Alyx ignores case
        ("raw/_iblrig_taskData.raw.jsonable", ("_iblrig_taskData.raw", None)),
        ("alf/probe00/#v1#/spikes.times.npy", ("spikes.times", None)),  # empty pattern
        ("alf/spikes.times_ephysClock.npy", ("spikes.times", None)),
        ("alf/spikes.amps.npy", (None, NO_DATASET_TYPE)),
        ("alf/_ibl_wheel.position.npy", (None, AMBIGUOUS_TYPE)),
        ("alf/spikes.times.xyz", (None, UNKNOWN_EXTENSION)),
        ("create_me.flag", (None, NOT_ALF)),
        ("raw data/spikes.times.npy", (None, NOT_ALF)),  # a space in the collection
    ],
)
def test_classify(rel_path, expected):
    matcher = DatasetTypeMatcher(TYPES, frozenset({".npy", ".pqt", ".jsonable"}))
    dataset_type, reason, types = matcher.classify(rel_path)
    assert (dataset_type, reason) == expected
    if reason == AMBIGUOUS_TYPE:
        assert sorted(types) == ["wheel.any", "wheel.position"]


def test_find_files_agrees_with_one_api_and_explains_the_rest(
    client, one_registration, make_session
):
    extra = {"alf/_ibl_wheel.position.npy": b"p", "alf/.hidden/spikes.times.npy": b"h"}
    path = make_session(GOOD_FILES | BAD_FILES | extra)

    found = client.find_files(path)

    assert list(found) == sorted(found)
    assert set(found) == set(one_registration.find_files(path)) - {
        path / "alf/.hidden/spikes.times.npy"
    }
    assert {p.relative_to(path).as_posix() for p in found} == set(GOOD_FILES) | set(extra) - {
        "alf/.hidden/spikes.times.npy"
    }
    assert {f.rel_path: f.reason for f in found.skipped} == {
        "alf/foo.bar.npy": NO_DATASET_TYPE,
        "notes.txt": NOT_ALF,
        "alf/spikes.times.xyz": UNKNOWN_EXTENSION,
    }
    assert found.unmatched == [path / "alf/foo.bar.npy"]


def test_find_files_reports_a_file_of_several_types(client, make_session, server):
    server.add_dataset_type("trials.alias", "_ibl_trials.table.*")
    path = make_session({"alf/_ibl_trials.table.pqt": b"x"})

    found = client.find_files(path)

    assert list(found) == []
    assert found.ambiguous == [path / "alf/_ibl_trials.table.pqt"]
    assert sorted(found.candidates[path / "alf/_ibl_trials.table.pqt"]) == [
        "trials.alias",
        "trials.table",
    ]


def test_find_files_of_a_missing_folder(client, tmp_path):
    with pytest.raises(NotADirectoryError):
        client.find_files(tmp_path / "nowhere")


_names = st.sampled_from(["a", "b", "create_me.flag", "x.flag", ".h"])


@settings(max_examples=40, deadline=None)
@given(
    tree=st.lists(st.lists(_names, min_size=1, max_size=4), min_size=1, max_size=8),
    pattern=st.sampled_from(
        ["**/create_me.flag", "*/create_me.flag", "**/*.flag", "a/**/x.flag", "**/b/*", "*"]
    ),
)
def test_glob_matches_agrees_with_pathlib_glob(tmp_path_factory, tree, pattern):
    root = tmp_path_factory.mktemp("tree")
    for parts in tree:
        path = root.joinpath(*parts)
        if any(p.is_file() for p in [*path.parents][: len(parts) - 1]) or path.is_dir():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    # What pathlib finds, but for hidden entries, which no one-flows walker takes
    expected = sorted(
        p
        for p in root.glob(pattern)
        if p.is_file() and not any(part[0] == "." for part in p.relative_to(root).parts)
    )
    # create_sessions matches the flags it finds (hidden entries left out) with glob_matches
    visible = [
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not any(part[0] == "." for part in p.relative_to(root).parts)
    ]
    assert sorted(root / rel for rel in visible if glob_matches(rel, pattern)) == expected


def test_glob_matches_refuses_an_empty_pattern():
    with pytest.raises(ValueError, match="empty"):
        glob_matches("a/create_me.flag", "")


def test_walk_ignores_nothing_but_hidden_entries_and_flags(client, make_session):
    flags = {
        "create_me.flag": b"",
        "create_me.flag.run-1.claimed": b"",
        "create_me.flag.done": b"",  # valid ALF names, but never data
        "create_me.flag.quarantined": b"",
    }
    hidden = {".DS_Store": b"", "alf/.tmp.a.npy": b""}
    path = make_session({"alf/spikes.times.npy": b"x", **hidden, **flags})
    found = client.find_files(path)
    assert list(found) == [path / "alf/spikes.times.npy"]
    assert found.skipped == []
    assert isinstance(found.session_path, Path)
