"""Alyx's ``django=`` list filter: Django field lookups sent as ``field,value,field,value``.

ONE-api sends them as ``django=pk,<id>`` (``eid2path``) and ``django=pk__in,('<id>',)``
(``get_details``): a value may be a Python literal (a tuple or list) whose commas do not split.
Only the fields a route maps to columns are understood; others fail as Django does, with a 500.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any

from ..protocol import server_error

__all__ = ["django_clauses"]

_OPERATORS = {
    "exact": "{column} = ?",
    "iexact": "lower({column}) = lower(?)",
    "icontains": "{column} LIKE '%' || ? || '%'",
    "contains": "instr({column}, ?) > 0",
    "istartswith": "{column} LIKE ? || '%'",
    "gte": "{column} >= ?",
    "lte": "{column} <= ?",
    "gt": "{column} > ?",
    "lt": "{column} < ?",
}


def _split(text: str) -> list[str]:
    """Split at the commas that are not inside brackets or quotes."""
    parts, depth, quote, current = [], 0, "", ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += char
    parts.append(current)
    return parts


def _value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def django_clauses(value: str, columns: Mapping[str, str]) -> tuple[list[str], list[Any]]:
    """SQL conditions (and their parameters) for a ``django=`` filter over ``columns``.

    ``columns`` maps a Django field path (``pk``, ``subject__nickname``) to an SQL expression.
    """
    parts = _split(value)
    if len(parts) % 2:
        raise server_error("list index out of range")
    clauses: list[str] = []
    params: list[Any] = []
    for field, text in zip(parts[::2], parts[1::2], strict=True):
        path, _, lookup = field.rpartition("__")
        if lookup not in (*_OPERATORS, "in") or not path:
            path, lookup = field, "exact"
        if path not in columns:
            choices = ", ".join(sorted(columns))
            raise server_error(
                f"Cannot resolve keyword '{path.split('__')[0]}' into field. Choices are: {choices}"
            )
        column, found = columns[path], _value(text)
        if lookup == "in":
            items = list(found) if isinstance(found, (list, tuple, set)) else [found]
            clauses.append(f"{column} IN ({', '.join('?' for _ in items)})" if items else "0")
            params.extend(str(i) for i in items)
        else:
            clauses.append(_OPERATORS[lookup].format(column=column))
            params.append(found if isinstance(found, (int, float)) else str(found))
    return clauses, params
