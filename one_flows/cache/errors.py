"""The errors of the cache tables, under `one_flows.errors.OneFlowsError`.

Each also derives from the builtin error that callers caught before it existed.
"""

from __future__ import annotations

from one_flows.errors import OneFlowsError, Outage

__all__ = [
    "CacheError",
    "NotACacheTable",
    "SessionFolderError",
    "TablesFolderMissing",
    "TablesLockError",
]


class CacheError(OneFlowsError):
    """The cache tables cannot be built, updated, read or written."""


class TablesFolderMissing(CacheError, NotADirectoryError, Outage):
    """The data folder or the tables folder does not exist (an outage: e.g. a share that is
    not mounted)."""


class NotACacheTable(CacheError, ValueError):
    """A file that should hold a ONE cache table does not."""


class SessionFolderError(CacheError, ValueError):
    """A folder given as a session is not one, or not under the data folder, or its lab folder
    conflicts with the lab given."""


class TablesLockError(CacheError, OSError, Outage):
    """The tables folder cannot be locked (e.g. a file system without ``flock``): an outage."""
