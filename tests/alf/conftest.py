"""ONE-api as the oracle of one_flows.alf: run a path through both and list every disagreement.

A disagreement is a different result, or a different outcome: where ONE-api raises (whatever
the exception type) one_flows must raise an ALFError; where ONE-api returns, one_flows must
return an equal value of the same kind (tuple, ordered mapping, str, bool, None, or the same
pathlib class where ONE-api returns its ALFPath subclass of it).
"""

from __future__ import annotations

import logging
import pathlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import one.alf.path as one_path
import one.alf.spec as one_spec
import pytest

import one_flows.alf as alf

UUID = "2622b17c-9408-4910-99cb-abf16d9225b9"

PARSERS = (
    "full_path_parts",
    "folder_parts",
    "filename_parts",
    "session_path_parts",
    "rel_path_parts",
)
PATH_FUNCTIONS = (
    "get_session_path",
    "get_alf_path",
    "padded_sequence",
    "without_revision",
    "remove_uuid_string",
)
ALL_FUNCTIONS = (*PARSERS, *PATH_FUNCTIONS, "add_uuid_string", "is_session_path", "is_valid")


def _one_function(name: str) -> Callable[..., Any]:
    return getattr(one_spec if name.startswith("is_") else one_path, name)


def _calls(path: str | pathlib.PurePath) -> list[tuple[str, str, tuple, dict]]:
    """(function, label, args, kwargs) of every call compared for one input path."""
    calls = []
    for name in PARSERS:
        for as_dict in (False, True):
            for assert_valid in (True, False):
                kwargs = {"as_dict": as_dict, "assert_valid": assert_valid}
                calls.append((name, f"{name}({kwargs})", (path,), kwargs))
    for name in (*PATH_FUNCTIONS, "is_session_path", "is_valid"):
        calls.append((name, name, (path,), {}))
    for strict in (False, True):
        calls.append(
            (
                "add_uuid_string",
                f"add_uuid_string(strict={strict})",
                (path, UUID),
                {"strict": strict},
            )
        )
    return calls


def _outcome(function: Callable[..., Any], args: tuple, kwargs: dict) -> tuple[str, Any]:
    try:
        return "returned", function(*args, **kwargs)
    except Exception as error:  # the oracle may raise anything; we compare outcomes
        return "raised", error


def _pathlib_class(value: pathlib.PurePath) -> type:
    return next(c for c in type(value).__mro__ if c.__module__ == "pathlib")


def same_value(ours: Any, theirs: Any) -> bool:
    """Equal values of the same kind (see module docstring)."""
    if isinstance(theirs, pathlib.PurePath):
        return type(ours) is _pathlib_class(theirs) and ours == theirs
    if isinstance(theirs, OrderedDict):
        return isinstance(ours, OrderedDict) and list(ours.items()) == list(theirs.items())
    return type(ours) is type(theirs) and ours == theirs


def disagreements(path: str | pathlib.PurePath, skip: frozenset[str] = frozenset()) -> list[str]:
    """Every call on which one_flows.alf and ONE-api disagree, described for a test report."""
    found = []
    for name, label, args, kwargs in _calls(path):
        if name in skip:
            continue
        one_args = args
        if name == "is_valid" and isinstance(path, pathlib.PurePath):
            # ONE-api raises TypeError on path objects (a documented difference): compare with
            # ONE-api's answer for the same path as str.
            one_args = (path.as_posix(), *args[1:])
        ours = _outcome(getattr(alf, name), args, kwargs)
        theirs = _outcome(_one_function(name), one_args, kwargs)
        if theirs[0] == "raised":
            agree = ours[0] == "raised" and isinstance(ours[1], alf.ALFError)
        else:
            agree = ours[0] == "returned" and same_value(ours[1], theirs[1])
        if not agree:
            found.append(f"{label}: ours {ours[0]} {ours[1]!r}; ONE {theirs[0]} {theirs[1]!r}")
    return found


@pytest.fixture(scope="module", autouse=True)
def _quiet_one_logs() -> Iterator[None]:
    """ONE-api and one_flows log a warning when a UUID is already in a name; keep output clean.

    Module-scoped and restored, so the levels never leak into other folders' tests.
    """
    loggers = [logging.getLogger(name) for name in ("one", "one_flows")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


@pytest.fixture(scope="session")
def one_disagreements() -> Callable[..., list[str]]:
    """The :func:`disagreements` checker, for test modules."""
    return disagreements
