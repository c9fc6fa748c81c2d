"""The flag's states, the file names that encode them and the :class:`Flag` record.

A flag's whole state lives in its file name, so a single ``os.rename`` moves it from one state to
the next::

    create_me.flag                          pending: waiting to be claimed
    create_me.flag.<run_id>.claimed         claimed by run <run_id> (first attempt)
    create_me.flag.failed-<n>               failed n times, waiting to be retried
    create_me.flag.failed-<n>.<run_id>.claimed   retry n+1 claimed by run <run_id>
    create_me.flag.quarantined              failed too often: reported, never retried
    create_me.flag.done                     registered (only when a done marker is kept)
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

DEFAULT_NAMES: tuple[str, ...] = ("create_me.flag",)
"""The flag names looked for unless told otherwise (ONE-api's ``create_sessions`` convention)."""

FLAG_SUFFIX = ".flag"
_RUN_ID = r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}"
_RUN_ID_RE = re.compile(_RUN_ID)


class FlagState(StrEnum):
    """Where a flag is in its life."""

    PENDING = "pending"
    FAILED = "failed"
    CLAIMED = "claimed"
    QUARANTINED = "quarantined"
    DONE = "done"


CLAIMABLE: frozenset[FlagState] = frozenset({FlagState.PENDING, FlagState.FAILED})
"""The states a run may claim: new flags and failed flags due for a retry."""


@dataclass(frozen=True)
class Flag:
    """One flag file found in a session folder.

    Attributes
    ----------
    path : Path
        The flag file as it is named now.
    session_path : Path
        The session folder holding the flag.
    name : str
        The flag's base name, e.g. ``'create_me.flag'``.
    state : FlagState
        The state its file name encodes.
    attempt : int
        How many registration attempts of this flag have failed so far.
    run_id : str or None
        The run holding the claim, for claimed flags.
    """

    path: Path
    session_path: Path
    name: str
    state: FlagState
    attempt: int = 0
    run_id: str | None = None

    @property
    def claimable(self) -> bool:
        """True when a run may claim this flag (pending, or failed and due for a retry)."""
        return self.state in CLAIMABLE

    def moved(self, state: FlagState, attempt: int, run_id: str | None = None) -> Flag:
        """Return the same flag in another state, with the file name that state implies."""
        file_name = compose_name(self.name, state, attempt, run_id)
        return replace(
            self, path=self.path.with_name(file_name), state=state, attempt=attempt, run_id=run_id
        )


def check_run_id(run_id: str) -> str:
    """Return ``run_id`` if it can be part of a claimed flag's name, else raise ValueError."""
    if not isinstance(run_id, str) or not _RUN_ID_RE.fullmatch(run_id):
        raise ValueError(
            f"invalid run id {run_id!r}: expected 1 to 128 letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    if run_id.startswith("failed-"):
        raise ValueError(f"invalid run id {run_id!r}: 'failed-' would be read as an attempt count")
    return run_id


def compose_name(name: str, state: FlagState, attempt: int = 0, run_id: str | None = None) -> str:
    """Return the file name of flag ``name`` in ``state``.

    ``attempt`` counts past failures: a claimed flag with ``attempt`` > 0 is a retry of
    ``<name>.failed-<attempt>``.
    """
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    if state is FlagState.QUARANTINED or state is FlagState.DONE:
        return f"{name}.{state.value}"
    source = f"{name}.failed-{attempt}" if attempt else name
    if state is FlagState.CLAIMED:
        if run_id is None:
            raise ValueError("a claimed flag needs a run id")
        return f"{source}.{check_run_id(run_id)}.claimed"
    if state is FlagState.FAILED and attempt == 0:
        raise ValueError("a failed flag has failed at least once: attempt must be >= 1")
    if state is FlagState.PENDING and attempt:
        raise ValueError("a pending flag has never failed: attempt must be 0")
    return source


def _check_base_name(name: str) -> str:
    if not name or name.startswith(".") or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(f"invalid flag name {name!r}: expected a plain, non-hidden file name")
    if not name.endswith(FLAG_SUFFIX):
        raise ValueError(f"invalid flag name {name!r}: flag names end in {FLAG_SUFFIX!r}")
    return name


# What follows a flag's base name in each state: nothing, .failed-N, .<run>.claimed, .done, ...
_STATE_SUFFIXES = (
    rf"(?:(?:\.failed-(?P<attempt>[1-9][0-9]{{0,5}}))?(?:\.(?P<run_id>{_RUN_ID})\.claimed)?"
    r"|\.(?P<sink>quarantined|done))"
)
_ANY_FLAG_RE = re.compile(rf"[^/\\]+{re.escape(FLAG_SUFFIX)}{_STATE_SUFFIXES}")


def is_flag_file(file_name: str) -> bool:
    """Whether ``file_name`` is a flag in any state (``*.flag``, claimed, failed, done, ...).

    Several such names are also valid ALF names (``create_me.flag.done``): registration and
    cache tables use this to leave flags out of the datasets.
    """
    return _ANY_FLAG_RE.fullmatch(file_name) is not None


@functools.lru_cache(maxsize=32)
def name_pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    """Return the regular expression matching every state's file name of the given flag names."""
    if not names:
        raise ValueError("at least one flag name is needed")
    bases = "|".join(re.escape(_check_base_name(n)) for n in names)
    return re.compile(rf"(?P<name>{bases}){_STATE_SUFFIXES}")


def parse_name(
    file_name: str, names: tuple[str, ...]
) -> tuple[str, FlagState, int, str | None] | None:
    """Return ``(name, state, attempt, run_id)`` encoded by a flag's file name.

    Returns None if ``file_name`` is not the file name of a flag of one of ``names``.
    """
    match = name_pattern(names).fullmatch(file_name)
    if match is None:
        return None
    name, attempt, run_id, sink = match.group("name", "attempt", "run_id", "sink")
    if sink is not None:
        return name, FlagState(sink), 0, None
    count = int(attempt) if attempt else 0
    if run_id is not None:
        return name, FlagState.CLAIMED, count, run_id
    return name, FlagState.FAILED if count else FlagState.PENDING, count, None
