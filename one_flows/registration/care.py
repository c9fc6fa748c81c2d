"""Animal care records: weighings and water given, as `RegistrationClient` records them.

`AnimalCare` checks the amounts, rounds them as ONE-api does (4 significant figures), fills in
the defaults (now, the target's user, plain water) and resolves a session given as a folder or
a record to its id, then hands the record to the target.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from one_flows.alf import is_uuid_string
from one_flows.registration.sessions import ensure_ISO8601
from one_flows.targets import RegistrationTarget
from one_flows.targets.base import preferred_session
from one_flows.walk import SessionKey

__all__ = ["AnimalCare"]

WATER_OPTIONS = frozenset({"date_time", "water_type", "user", "session", "adlib"})
"""The keyword arguments of `AnimalCare.register_water_administration`."""


class AnimalCare:
    """Records weighings and water administrations in a target.

    Parameters
    ----------
    target : RegistrationTarget
        Where the records go.
    require : callable
        ``require(endpoint, member)``: the record of a subject or user, raising when the target
        has none (the client's cached ``assert_exists``).
    """

    def __init__(self, target: RegistrationTarget, require: Callable[[str, str], Any]) -> None:
        self.target = target
        self.require = require

    def register_weight(
        self, subject: str, weight: float, date_time: Any = None, user: str | None = None
    ) -> dict[str, Any]:
        """Record a weighing of ``weight`` grams (see `RegistrationClient.register_weight`)."""
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
            raise ValueError(f"weight must be a positive number of grams, not {weight!r}")
        record = {
            "subject": subject,
            "date_time": ensure_ISO8601(date_time),
            "weight": float(f"{weight:.4g}"),
            "user": self._user(subject, user),
        }
        return self.target.register_weight(record)

    def register_water_administration(
        self, subject: str, volume: float, **kwargs: Any
    ) -> dict[str, Any]:
        """Record ``volume`` ml of water given to a subject (see
        `RegistrationClient.register_water_administration`)."""
        if isinstance(volume, bool) or not isinstance(volume, int | float) or not volume > 0:
            raise ValueError(f"volume must be a positive number of ml, not {volume!r}")
        unknown = set(kwargs) - WATER_OPTIONS
        if unknown:
            raise TypeError(f"unexpected keyword arguments: {', '.join(sorted(unknown))}")
        record: dict[str, Any] = {
            "subject": subject,
            "date_time": ensure_ISO8601(kwargs.get("date_time")),
            "water_administered": float(f"{volume:.4g}"),
            "water_type": kwargs.get("water_type") or "Water",
            "user": self._user(subject, kwargs.get("user")),
            "adlib": bool(kwargs.get("adlib", False)),
        }
        if kwargs.get("session"):
            record["session"] = self._session_id(kwargs["session"])
        return self.target.register_water_administration(record)

    def _user(self, subject: str, user: str | None) -> str | None:
        """The user of a care record (default: the target's), once it and the subject are
        known to exist."""
        self.require("subjects", subject)
        user = user or self.target.user
        if user is not None:
            self.require("users", user)
        return user

    def _session_id(self, session: Any) -> str:
        """The id of a session given as an id, a record, or a session folder."""
        if isinstance(session, dict):
            eid = session.get("id") or str(session.get("url", ""))[-36:]
        elif is_uuid_string(str(session)):
            eid = str(session)
        else:
            key = SessionKey.from_path(session)
            found = self.target.find_sessions(key.subject, key.date, int(key.number))
            eid = preferred_session(found)["id"] if found else ""
        if not is_uuid_string(eid):
            raise ValueError(f"no session id found for {session!r}")
        return eid
