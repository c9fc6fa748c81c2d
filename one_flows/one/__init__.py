"""Search, list and load sessions and datasets, as ONE-api does: from ONE cache tables, or from
an Alyx database and its data repositories.

`One` is the query API (`one_flows.one.api`); it asks a source for sessions and dataset rows
(`one_flows.one.source.Source`): the cache tables of a folder (`one_flows.one.tables`).
"""

from .api import One
from .errors import (
    ALFMultipleCollectionsFound,
    ALFMultipleObjectsFound,
    ALFMultipleRevisionsFound,
    ALFObjectNotFound,
    DatasetHashMismatch,
)
from .objects import AlfBunch, SessionDataInfo
from .source import CacheFirst, Source
from .tables import TableSource

__all__ = [
    "ALFMultipleCollectionsFound",
    "ALFMultipleObjectsFound",
    "ALFMultipleRevisionsFound",
    "ALFObjectNotFound",
    "AlfBunch",
    "CacheFirst",
    "DatasetHashMismatch",
    "One",
    "SessionDataInfo",
    "Source",
    "TableSource",
]
