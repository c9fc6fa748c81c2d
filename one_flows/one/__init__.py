"""Search, list and load sessions and datasets, as ONE-api does: from ONE cache tables, or from
an Alyx database and its data repositories.

`One` is the query API (`one_flows.one.api`); it asks a source for sessions and dataset rows
(`one_flows.one.source.Source`): the cache tables of a folder (`one_flows.one.tables`) or an
Alyx database (`one_flows.one.alyx`), whose files the downloader fetches
(`one_flows.one.download`).
"""

from .api import ONE, One
from .download import DownloadAuthError, DownloadError, DownloadMismatch, DownloadProgress
from .errors import (
    ALFMultipleCollectionsFound,
    ALFMultipleObjectsFound,
    ALFMultipleRevisionsFound,
    ALFObjectNotFound,
    DatasetHashMismatch,
    NoCacheTables,
    NotInSource,
)
from .objects import AlfBunch, SessionDataInfo

__all__ = [
    "ONE",
    "ALFMultipleCollectionsFound",
    "ALFMultipleObjectsFound",
    "ALFMultipleRevisionsFound",
    "ALFObjectNotFound",
    "AlfBunch",
    "DatasetHashMismatch",
    "DownloadAuthError",
    "DownloadError",
    "DownloadMismatch",
    "DownloadProgress",
    "NoCacheTables",
    "NotInSource",
    "One",
    "SessionDataInfo",
]
