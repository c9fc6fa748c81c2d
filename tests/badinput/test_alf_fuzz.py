"""A fuzz run of the ALF parsers: on any text they answer or raise ALFError, nothing else.

The bounded run goes in every test run; the long one (20 000 inputs per parser) is ``slow``.
Inputs mix random text with ALF-shaped pieces, so that deep paths of the grammar are reached.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from one_flows.alf import (
    ALFError,
    filename_parts,
    full_path_parts,
    get_session_path,
    is_valid,
    rel_path_parts,
    session_path_parts,
)

PIECES = st.sampled_from(
    [
        "lab", "Subjects", "KS022", "2026-01-05", "001", "1", "alf", "probe00", "#2026-02-01#",
        "_ibl_", "trials", ".", "intervals", "_bpod", ".npy", ".ext", "/", "\\", "..", "#", "_",
        "-", " ", "\n", "é", "C:", "",
    ]
)  # fmt: skip
TEXT = st.one_of(st.text(max_size=80), st.lists(PIECES, max_size=24).map("".join))
PARSERS = (full_path_parts, rel_path_parts, session_path_parts, filename_parts)


def _check(text: str) -> None:
    for parse in PARSERS:
        with contextlib.suppress(ALFError):
            parse(text, assert_valid=True)
        parse(text, assert_valid=False)
    valid = is_valid(text)
    if valid:
        assert filename_parts(text)[1]  # a valid name has an object
    get_session_path(text)


def _fuzz(examples: int):
    return settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))(
        given(TEXT)(_check)
    )


test_alf_parsers_answer_or_raise_alf_errors = _fuzz(500)
test_alf_parsers_answer_or_raise_alf_errors_long = pytest.mark.slow(_fuzz(20_000))
