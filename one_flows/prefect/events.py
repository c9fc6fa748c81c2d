"""Prefect events that one-flows emits, for deployment triggers to act on.

``one.session.registered`` is emitted once a session's files are registered. Its resource is
the session record: ``alyx.session.<eid>`` for a session in an Alyx database, and
``one.session.<eid>`` for one in local ONE cache tables, whose ids are uuid5s of the session
path and so never collide with Alyx's random ids; either way the resource id names one session,
so a trigger with ``for_each: [prefect.resource.id]`` debounces per session. The payload holds
``eid``, ``subject``, ``date``, ``number``, ``lab``, ``session_path``, ``target`` (the target's
label, e.g. ``alyx:https://alyx.example.org``) and ``dataset_types`` (sorted names).

``one.session.flagged`` is emitted by ``one-flows watch`` when a newly flagged session is ready;
its resource is ``one.flag.<session path>`` and its payload holds ``session_path``, ``flag`` and
``quiet_seconds`` (the quiet time by which the watcher found it ready, for the triggered run to
check the same).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prefect.events import Event, emit_event

from one_flows.alf import session_path_parts

__all__ = [
    "SESSION_FLAGGED",
    "SESSION_REGISTERED",
    "emit_session_flagged",
    "emit_session_registered",
    "session_registered_payload",
    "session_resource_id",
]

SESSION_REGISTERED = "one.session.registered"
SESSION_FLAGGED = "one.session.flagged"


def session_resource_id(eid: str, target: str) -> str:
    """The resource id of a session record: ``alyx.session.<eid>`` for an ``alyx:`` target,
    ``one.session.<eid>`` otherwise."""
    prefix = "alyx" if target.split(":", 1)[0] == "alyx" else "one"
    return f"{prefix}.session.{eid}"


def session_registered_payload(
    eid: str, session_path: str | os.PathLike[str], target: str, dataset_types: Iterable[str]
) -> dict[str, Any]:
    """The payload of ``one.session.registered`` for a session folder.

    Raises
    ------
    ALFInvalidPath
        ``session_path`` is not a session folder (a ValueError).
    """
    lab, subject, date, number = session_path_parts(Path(session_path))
    return {
        "eid": eid,
        "subject": subject,
        "date": date,
        "number": int(number),
        "lab": lab,
        "session_path": str(session_path),
        "target": target,
        "dataset_types": sorted(set(dataset_types)),
    }


def emit_session_registered(
    eid: str, session_path: str | os.PathLike[str], target: str, dataset_types: Iterable[str]
) -> Event | None:
    """Emit ``one.session.registered``; returns the event (None when events are off)."""
    payload = session_registered_payload(eid, session_path, target, dataset_types)
    name = f"{payload['subject']}/{payload['date']}/{payload['number']:03d}"
    return emit_event(
        SESSION_REGISTERED,
        resource={
            "prefect.resource.id": session_resource_id(eid, target),
            "prefect.resource.name": name,
        },
        payload=payload,
    )


def emit_session_flagged(
    session_path: str | os.PathLike[str], flag: str, quiet_seconds: float
) -> Event | None:
    """Emit ``one.session.flagged`` for a flagged session found ready with ``quiet_seconds``."""
    path = str(session_path)
    return emit_event(
        SESSION_FLAGGED,
        resource={"prefect.resource.id": f"one.flag.{path}", "prefect.resource.name": path},
        payload={"session_path": path, "flag": flag, "quiet_seconds": quiet_seconds},
    )
