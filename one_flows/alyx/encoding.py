"""How Python values go into Alyx query strings and JSON bodies."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import date, datetime, time
from pathlib import PurePath
from typing import Any


def encode_value(value: Any) -> str:
    """One query-string value as Alyx's filters read it.

    Booleans are `True`/`False`, dates and datetimes ISO 8601, lists and tuples comma-joined
    (a `date_range` of two dates becomes `2026-01-01,2026-01-31`).
    """
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | uuid.UUID):
        return str(value)
    if isinstance(value, date | datetime | time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        items = [encode_value(item) for item in value]
        for item in items:
            if "," in item:
                raise ValueError(
                    f"cannot send {item!r} in a list: Alyx splits list values on commas"
                )
        return ",".join(items)
    raise TypeError(
        f"cannot encode a {type(value).__name__} as an Alyx query value; "
        "use str, int, float, bool, date, datetime, UUID, or a list or tuple of those"
    )


def encode_params(params: Mapping[str, Any] | None) -> dict[str, str]:
    """Query parameters as Alyx expects them; parameters set to None are left out."""
    if not params:
        return {}
    return {key: encode_value(value) for key, value in params.items() if value is not None}


def _json_default(value: Any) -> Any:
    if isinstance(value, date | datetime | time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, PurePath):
        return value.as_posix()
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot send a {type(value).__name__} in a JSON body: {value!r}")


def encode_json(body: Any) -> bytes:
    """A JSON request body; dates become ISO strings, UUIDs strings, paths POSIX strings."""
    return json.dumps(body, default=_json_default).encode("utf-8")
