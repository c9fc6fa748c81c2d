"""Validation of request fields, with Django REST framework's error messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..store import Store

DATETIME_FORMAT_ERROR = (
    "Datetime has wrong format. Use one of these formats instead: "
    "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
)
REQUIRED = "This field is required."


class Errors(dict[str, list[str]]):
    """Field errors collected while validating one request body."""

    def add(self, name: str, message: str) -> None:
        """Record one error of field ``name``."""
        self.setdefault(name, []).append(message)


def integer(value: Any, name: str, errors: Errors) -> int | None:
    """An integer field ("001" is 1); None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        errors.add(name, "A valid integer is required.")
        return None
    try:
        number = float(value) if isinstance(value, float) else int(str(value).strip())
    except ValueError:
        errors.add(name, "A valid integer is required.")
        return None
    if isinstance(number, float) and not number.is_integer():
        errors.add(name, "A valid integer is required.")
        return None
    return int(number)


def number(value: Any, name: str, errors: Errors) -> float | None:
    """A float field; None stays None."""
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise ValueError(value)
        return float(value)
    except (TypeError, ValueError):
        errors.add(name, "A valid number is required.")
        return None


def boolean(value: Any) -> bool:
    """A boolean field, also from the strings form bodies and query strings carry."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on")
    return bool(value)


def date_time(value: Any, name: str, errors: Errors) -> str | None:
    """An ISO 8601 datetime, rendered back as Django REST framework renders it."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        errors.add(name, DATETIME_FORMAT_ERROR)
        return None
    if len(str(value)) <= 10:  # a bare date is no datetime for Django REST framework
        errors.add(name, DATETIME_FORMAT_ERROR)
        return None
    return parsed.isoformat()


def relation(
    store: Store, table: str, column: str, value: Any, name: str, errors: Errors
) -> str | None:
    """The value of a relation given by name, after checking that the object exists."""
    if value is None:
        return None
    if store.one(f"SELECT 1 FROM {table} WHERE {column} = ?", (str(value),)) is None:
        errors.add(name, f"Object with {column}={value} does not exist.")
        return None
    return str(value)


def relations(
    store: Store, table: str, column: str, values: Any, name: str, errors: Errors
) -> list[str]:
    """A many-to-many relation given as a list of names (a single name is a list of one)."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    found = []
    for value in values:
        checked = relation(store, table, column, value, name, errors)
        if checked is not None:
            found.append(checked)
    return found
