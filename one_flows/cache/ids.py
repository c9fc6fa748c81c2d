"""Stable ids: uuid3s, in a fixed namespace, of a session's canonical name and of a dataset's
path in it."""

from __future__ import annotations

import hashlib
import uuid

from one_flows.walk import SessionKey

__all__ = ["ID_NAMESPACE", "dataset_id", "session_id"]

ID_NAMESPACE = uuid.UUID("5b1e2d2a-8f0c-5c6e-9a43-0ae1f10f1a05")
"""The fixed namespace of the name-based (uuid3) session and dataset ids."""

_NAMESPACE_MD5 = hashlib.md5(ID_NAMESPACE.bytes)


def _uuid3(name: str) -> str:
    """``str(uuid.uuid3(ID_NAMESPACE, name))``, without the cost of building a UUID object."""
    md5 = _NAMESPACE_MD5.copy()
    md5.update(name.encode())
    h = md5.hexdigest()
    # The MD5, with the version nibble set to 3 and the variant bits to 10
    variant = "89ab"[int(h[16], 16) & 3]
    return f"{h[:8]}-{h[8:12]}-3{h[13:16]}-{variant}{h[17:20]}-{h[20:32]}"


def _name(key: SessionKey | str) -> str:
    return key if isinstance(key, str) else key.canonical


def session_id(key: SessionKey | str) -> str:
    """Return the stable session id (uuid3 string) of a session, given its key or the key's
    canonical name (``lab/subject/date/NNN``, `SessionKey.canonical`)."""
    return _uuid3(_name(key))


def dataset_id(key: SessionKey | str, rel_path: str) -> str:
    """Return the stable dataset id (uuid3 string) of a dataset of the session ``key`` (a key or
    its canonical name)."""
    return _uuid3(f"{_name(key)}/{rel_path}")
