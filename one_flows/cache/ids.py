"""Stable ids: uuid3s of a session's key and of a dataset's path, in a fixed namespace."""

from __future__ import annotations

import datetime
import hashlib
import uuid

__all__ = ["ID_NAMESPACE", "dataset_id", "session_id", "session_key"]

ID_NAMESPACE = uuid.UUID("5b1e2d2a-8f0c-5c6e-9a43-0ae1f10f1a05")
"""The fixed namespace of the name-based (uuid3) session and dataset ids."""


def session_key(lab: str, subject: str, date: datetime.date | str, number: int | str) -> str:
    """Return the canonical relative session path ``lab/subject/date/NNN`` (no lab if empty)."""
    return "/".join(filter(None, [lab, subject, str(date), f"{int(number):03d}"]))


_NAMESPACE_MD5 = hashlib.md5(ID_NAMESPACE.bytes)


def _uuid3(name: str) -> str:
    """``str(uuid.uuid3(ID_NAMESPACE, name))``, without the cost of building a UUID object."""
    md5 = _NAMESPACE_MD5.copy()
    md5.update(name.encode())
    h = md5.hexdigest()
    # The MD5, with the version nibble set to 3 and the variant bits to 10
    variant = "89ab"[int(h[16], 16) & 3]
    return f"{h[:8]}-{h[8:12]}-3{h[13:16]}-{variant}{h[17:20]}-{h[20:32]}"


def session_id(key: str) -> str:
    """Return the stable session id (uuid3 string) of a session key."""
    return _uuid3(key)


def dataset_id(key: str, rel_path: str) -> str:
    """Return the stable dataset id (uuid3 string) of a dataset of the session ``key``."""
    return _uuid3(f"{key}/{rel_path}")
