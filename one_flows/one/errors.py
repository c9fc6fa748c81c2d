"""Errors of the query API: what a query did not find, or found more than once.

They are ALF errors (`one_flows.alf.ALFError`, under `one_flows.errors.OneFlowsError`), named as
ONE-api names them so that code catching ONE-api's ``one.alf.exceptions`` reads the same.
"""

from __future__ import annotations

from one_flows.alf import ALFError

__all__ = [
    "ALFMultipleCollectionsFound",
    "ALFMultipleObjectsFound",
    "ALFMultipleRevisionsFound",
    "ALFObjectNotFound",
    "DatasetHashMismatch",
    "NoCacheTables",
    "NotInSource",
]


class ALFObjectNotFound(ALFError):
    """No dataset, object or session matches the query."""


class ALFMultipleObjectsFound(ALFError):
    """The query matches several datasets or objects where one was expected."""


class ALFMultipleCollectionsFound(ALFError):
    """The query matches datasets in several collections where one was expected."""


class ALFMultipleRevisionsFound(ALFError):
    """The query matches several revisions where one was expected."""


class DatasetHashMismatch(ALFError):
    """A file's md5 differs from the one recorded for its dataset."""


class NotInSource(ALFError, ValueError):
    """The source holds nothing to answer the query with (the cache tables hold no users):
    refused, rather than answered empty."""


class NoCacheTables(ALFError, FileNotFoundError):
    """A folder queried in local mode holds no ONE cache tables."""
