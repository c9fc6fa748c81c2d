"""Property tests of one_flows.alf: composing then parsing gives the parts back, parsers only
ever raise ALFError, and ONE-api agrees on generated valid paths."""

from __future__ import annotations

import contextlib
import pathlib
import string

import one.alf.spec as one_spec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import one_flows.alf as alf

SETTINGS = settings(
    derandomize=True,
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

ALNUM = string.ascii_letters + string.digits


def _word(alphabet: str, max_size: int = 8) -> st.SearchStrategy[str]:
    # '.' and '..' folders would be collapsed by pathlib; they are never ALF names.
    return st.text(alphabet, min_size=1, max_size=max_size).filter(lambda w: w.strip(".") != "")


labs = _word(ALNUM + "_")
labs_with_hyphens = _word(ALNUM + "_.-")
subjects = _word(ALNUM + "_.-")
dates = st.dates().filter(lambda d: d.year >= 1000).map(lambda d: d.isoformat())
numbers = st.integers(0, 999).flatmap(lambda n: st.sampled_from(sorted({str(n), str(n).zfill(3)})))
collections = st.lists(_word(ALNUM + "_.-"), min_size=1, max_size=3).map("/".join)
revisions = _word(ALNUM + "_.-")
namespaces = _word(ALNUM)
objects = st.builds(lambda a, b: a + b, st.sampled_from(ALNUM), st.text(ALNUM + "_", max_size=8))
attributes = st.builds(
    lambda a, suffix: a + suffix, _word(ALNUM), st.sampled_from(["", "_times", "_intervals"])
)
# A timescale starting with 'times' or 'intervals' would read as part of the attribute.
timescales = _word(ALNUM + "_").filter(
    lambda t: not t.startswith(("times", "intervals")) or t in ("times", "intervals")
)
extras = st.lists(_word(ALNUM + "_-"), min_size=1, max_size=3).map(".".join)
extensions = _word(ALNUM + "_", 5)


def _optional(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str | None]:
    return st.none() | strategy


@st.composite
def dataset_paths(draw: st.DrawFn, lab_names: st.SearchStrategy[str] = labs_with_hyphens):
    with_session = draw(st.booleans())
    timescale = draw(_optional(timescales))
    attribute = draw(attributes)
    if timescale in ("times", "intervals") and not attribute.endswith(("_times", "_intervals")):
        timescale = None  # 'attr_times' would read as one attribute
    return alf.DatasetPath(
        lab=draw(_optional(lab_names)) if with_session else None,
        subject=draw(subjects) if with_session else None,
        date=draw(dates) if with_session else None,
        number=draw(numbers) if with_session else None,
        collection=draw(_optional(collections)),
        revision=draw(_optional(revisions)),
        namespace=draw(_optional(namespaces)),
        object=draw(objects),
        attribute=attribute,
        timescale=timescale,
        extra=draw(_optional(extras)),
        extension=draw(extensions),
    )


@SETTINGS
@given(dataset_paths(), st.sampled_from(["", "/", "/mnt/data/", "C:/Data/"]))
def test_dataset_path_round_trips(dataset: alf.DatasetPath, root: str) -> None:
    assert alf.DatasetPath.parse(dataset.path) == dataset
    if dataset.session_path is not None:
        assert alf.DatasetPath.parse(pathlib.PurePosixPath(root + dataset.path)) == dataset
        assert alf.is_session_path(root + dataset.session_path)
        assert alf.get_alf_path(root + dataset.path) == dataset.path


camel_words = st.builds(
    lambda a, b: a + b, st.sampled_from(string.ascii_lowercase), st.text(ALNUM, max_size=8)
)


@SETTINGS
@given(
    camel_words,
    st.builds(lambda a, s: a + s, camel_words, st.sampled_from(["", "_times", "_intervals"])),
    extensions,
    _optional(namespaces),
    _optional(camel_words.filter(lambda t: not t.startswith(("times", "intervals")))),
    _optional(st.lists(_word(ALNUM + "_-"), min_size=1, max_size=3)),
)
def test_to_alf_round_trips(obj, attribute, extension, namespace, timescale, extra) -> None:
    name = alf.to_alf(obj, attribute, extension, namespace, timescale, extra)
    assert name == one_spec.to_alf(obj, attribute, extension, namespace, timescale, extra)
    joined = ".".join(extra) if extra else None
    assert alf.filename_parts(name) == (namespace, obj, attribute, timescale, joined, extension)


@SETTINGS
@given(dataset=dataset_paths(lab_names=labs), root=st.sampled_from(["", "/", "/mnt/data/"]))
def test_agrees_with_one_on_valid_paths(dataset: alf.DatasetPath, root, one_disagreements):
    path = root + dataset.path
    assert one_disagreements(path) == []
    if dataset.session_path is not None:
        assert one_disagreements(root + dataset.session_path) == []


PARSERS = [
    alf.full_path_parts,
    alf.folder_parts,
    alf.filename_parts,
    alf.session_path_parts,
    alf.rel_path_parts,
    alf.get_session_path,
    alf.get_alf_path,
    alf.padded_sequence,
    alf.without_revision,
    alf.remove_uuid_string,
    alf.is_valid,
    alf.is_session_path,
    alf.DatasetPath.parse,
    lambda p: alf.with_revision(p, "v1"),
    lambda p: alf.add_uuid_string(p, "2622b17c-9408-4910-99cb-abf16d9225b9"),
]
ALF_PIECES = [*"/\\.#_-: aZ09\n", "é", "²", "٠", "2020-01-01", "001", "Subjects"]
ALF_LIKE_TEXT = st.lists(st.sampled_from(ALF_PIECES), max_size=20).map("".join)


@SETTINGS
@given(st.one_of(st.text(max_size=30), ALF_LIKE_TEXT), st.booleans())
def test_parsers_raise_only_alf_errors(text: str, as_path: bool) -> None:
    path = pathlib.PurePosixPath(text) if as_path else text
    for parse in PARSERS:
        with contextlib.suppress(alf.ALFError):
            parse(path)
