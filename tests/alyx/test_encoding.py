"""Query strings and JSON bodies in the form Alyx reads them (as recorded in the contract)."""

import json
import uuid
from datetime import date, datetime
from pathlib import PurePosixPath, PureWindowsPath
from urllib.parse import urlencode

import pytest

from one_flows.alyx.encoding import encode_json, encode_params, encode_value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "True"),
        (False, "False"),
        (1, "1"),
        (2.5, "2.5"),
        ("001", "001"),
        (date(2026, 1, 2), "2026-01-02"),
        (datetime(2026, 1, 2, 10, 30), "2026-01-02T10:30:00"),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        (["test_user", "other"], "test_user,other"),
        ((date(2026, 1, 1), date(2026, 1, 31)), "2026-01-01,2026-01-31"),
        ([], ""),
    ],
)
def test_encode_value(value, expected):
    assert encode_value(value) == expected


def test_bool_is_not_encoded_as_an_integer():
    # bool is a subclass of int: the check order matters for Alyx's `exists=True` filters
    assert encode_params({"exists": True, "number": 1}) == {"exists": "True", "number": "1"}


def test_none_parameters_are_left_out():
    assert encode_params({"subject": "algernon", "lab": None}) == {"subject": "algernon"}
    assert encode_params(None) == {}


def test_query_matches_the_one_that_one_api_sent_in_the_contract():
    # the query string of ONE-api's search, as recorded in alyx-contract/06-sessions-query.json
    recorded = "date_range=2026-01-03%2C2026-01-03&number=001&subject=algernon"
    params = {
        "date_range": (date(2026, 1, 3), date(2026, 1, 3)),
        "number": "001",
        "subject": "algernon",
    }
    assert urlencode(encode_params(params)) == recorded


def test_a_list_item_with_a_comma_is_refused():
    with pytest.raises(ValueError, match="splits list values on commas"):
        encode_value(["a,b", "c"])


def test_unsupported_types_name_the_type():
    with pytest.raises(TypeError, match="dict"):
        encode_params({"x": {"a": 1}})


def test_json_bodies_carry_dates_uuids_and_paths_as_strings():
    body = {
        "start_time": datetime(2026, 1, 3, 9, 0, 5),
        "date": date(2026, 1, 3),
        "id": uuid.UUID(int=2),
        "path": PureWindowsPath("alf\\probe00"),
        "posix": PurePosixPath("alf/probe00"),
        "users": {"b", "a"},
    }
    assert json.loads(encode_json(body)) == {
        "start_time": "2026-01-03T09:00:05",
        "date": "2026-01-03",
        "id": "00000000-0000-0000-0000-000000000002",
        "path": "alf/probe00",
        "posix": "alf/probe00",
        "users": ["a", "b"],
    }


def test_json_body_with_an_unsupported_value_names_it():
    with pytest.raises(TypeError, match="object"):
        encode_json({"x": object()})
