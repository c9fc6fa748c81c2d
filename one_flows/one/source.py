"""What the query API asks of the place its sessions and datasets come from.

`One` (`one_flows.one.api`) answers ONE's calls by filtering rows of datasets, whoever supplies
them: the ONE cache tables of a folder (`one_flows.one.tables.TableSource`), an Alyx database and
its data repositories (`one_flows.one.alyx.AlyxSource`), or the first of them that knows a session
(`CacheFirst`, ONE's "auto" mode). A source answers in the terms of this module: session ids as
strings, and dataset rows prepared by `dataset_rows`.
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from one_flows.alyx import AlyxTransientError
from one_flows.cache.tables import QC_TYPE

from .objects import name_parts

__all__ = [
    "DATASET_COLUMNS",
    "CacheFirst",
    "Source",
    "dataset_rows",
    "dataset_type",
    "is_of_type",
    "same_type",
    "split_rel_path",
]

logger = logging.getLogger("one_flows.one")

DATASET_COLUMNS = ("rel_path", "file_size", "hash", "exists", "qc")
"""The columns of ``list_datasets(details=True)``, as ONE-api's; ``default_revision`` follows
when the source has it."""


def split_rel_path(rel_path: str) -> tuple[str, str, str]:
    """Split ``collection/#revision#/name`` into (collection, revision, name)."""
    folder, _, name = rel_path.rpartition("/")
    collection, _, last = folder.rpartition("/")
    if len(last) > 1 and last[0] == "#" and last[-1] == "#":
        return collection, last[1:-1], name
    return folder, "", name


DEFAULT_NAMESPACE = "ibl"
"""The namespace that Alyx databases leave out of dataset type names (``trials.intervals`` is
the type of ``_ibl_trials.intervals.npy``); other namespaces are part of the name
(``_spikeglx_sync.times``, ``_iblrig_taskData.raw``)."""

_NAMESPACED = re.compile(r"_(?P<namespace>[^_.]+)_(?P<rest>.+)")


def _file_type(name: str) -> tuple[str, str]:
    """A file name's namespace ('' for none) and ``object.attribute[_timescale]``."""
    namespace, obj, attribute, timescale = name_parts(name)[:4]
    return namespace, f"{obj}.{attribute}_{timescale}" if timescale else f"{obj}.{attribute}"


def dataset_type(name: str) -> str:
    """The dataset type a file name implies, named as Alyx databases name types:
    ``object.attribute`` (``_timescale`` included), after the file's namespace unless that is
    `DEFAULT_NAMESPACE`: ``_spikeglx_sync.times``, ``trials.intervals``,
    ``trials.intervals_bpod``."""
    namespace, own = _file_type(name)
    return f"_{namespace}_{own}" if namespace and namespace != DEFAULT_NAMESPACE else own


@lru_cache(maxsize=65536)
def _without_namespace(type_name: str) -> tuple[str | None, str]:
    found = _NAMESPACED.fullmatch(type_name)
    return (found["namespace"], found["rest"]) if found else (None, type_name)


def same_type(asked: str, type_name: str) -> bool:
    """Whether a dataset type asked for names ``type_name`` (a type, or a file name's
    ``_namespace_object.attribute``): the same type with or without a namespace on either side
    (``sync.times`` and ``_spikeglx_sync.times``; not ``_ibl_sync.times`` and
    ``_spikeglx_sync.times``). An ``object`` without attribute names every type of the object.
    """
    asked_namespace, asked_rest = _without_namespace(asked)
    namespace, rest = _without_namespace(type_name)
    if asked_namespace and namespace and asked_namespace != namespace:
        return False
    return asked_rest == (rest if "." in asked_rest else rest.partition(".")[0])


def is_of_type(name: str, asked: str) -> bool:
    """Whether the file ``name`` is of the dataset type asked for (see `same_type`), its own
    namespace, ``_ibl_`` too, being the one it has."""
    namespace, own = _file_type(name)
    return same_type(asked, f"_{namespace}_{own}" if namespace else own)


def dataset_rows(datasets: pd.DataFrame) -> pd.DataFrame:
    """Datasets as sources hand them to the query API: one row per dataset.

    ``datasets`` has ONE's datasets-table columns (``eid`` and ``id`` as columns or index levels,
    ``rel_path``, ``file_size``, ``hash``, ``exists``, ``qc``, optionally ``default_revision``);
    a source may add its own (``data_url``, ``dataset_type``). The rows get ``eid``/``id`` as str
    columns, ``qc`` as the QC categorical, and ``collection``, ``revision`` and ``name``
    categoricals split from ``rel_path`` (each distinct value parsed once).
    """
    if isinstance(datasets.index, pd.MultiIndex) or datasets.index.name in ("eid", "id"):
        rows = datasets.reset_index()
    else:
        rows = datasets.copy(deep=False)
    for column in ("eid", "id"):
        if not isinstance(rows[column].dtype, pd.StringDtype):
            rows[column] = rows[column].astype("str")
    codes, uniques = pd.factorize(rows["rel_path"])
    split = [split_rel_path(r) for r in uniques]
    for i, column in enumerate(("collection", "revision", "name")):
        values = [s[i] for s in split]
        categories = sorted(set(values))
        where = {c: k for k, c in enumerate(categories)}
        part_codes = np.array([where[v] for v in values], dtype=np.int64)
        rows[column] = pd.Categorical.from_codes(part_codes[codes], categories=categories)
    if rows["qc"].dtype != QC_TYPE:
        rows["qc"] = rows["qc"].astype(QC_TYPE)
    return rows


class Source(ABC):
    """Sessions and datasets for the query API, and the local files of datasets.

    ``mode`` is ONE's name for where the answers come from ('local' or 'remote').
    ``search_terms`` are the search keywords it understands (``aliases`` map ONE's other names to
    them); ``refused_terms`` are ONE's keywords it cannot answer, refused with the reason.
    ``where`` names it in messages ("the cache tables in ...").
    """

    mode: str
    where: str
    search_terms: tuple[str, ...]
    aliases: Mapping[str, str] = {}
    refused_terms: tuple[str, ...] = ()

    @abstractmethod
    def search(self, terms: dict[str, Any], details: bool) -> tuple[list[str], list[dict] | None]:
        """Session ids matching every term (full names), newest first, and with ``details``
        their records."""

    @abstractmethod
    def to_eid(self, id: Any) -> str | None:
        """The session id of an id, path, URL or (lab/)subject/date/number; None if unknown.

        Raises ValueError for input that names no session at all.
        """

    @abstractmethod
    def session_path(self, eid: str) -> Path | None:
        """The folder of a session's files in the local cache; None if the session is unknown."""

    @abstractmethod
    def details(self, eid: str, full: bool) -> Any:
        """A session's record (with ``full``, with its datasets), in the source's own form."""

    @abstractmethod
    def datasets(self, eid: str | None) -> pd.DataFrame:
        """A session's dataset rows (see `dataset_rows`), all sessions' with None."""

    @abstractmethod
    def files(self, rows: pd.DataFrame, check_hash: bool) -> list[Path | None]:
        """The local file of each row, fetched if the source can; None where there is none."""

    @abstractmethod
    def values(self, keyword: str) -> list[str]:
        """All 'dataset-types', 'subjects', 'labs' or 'users' names, sorted."""

    def knows(self, eid: str) -> bool:
        """Whether this source can answer for the session ``eid`` without asking elsewhere."""
        return self.session_path(eid) is not None


class CacheFirst(Source):
    """ONE's "auto" mode: the local cache answers for what it holds, the remote source for the
    rest; searches go to the remote source (only it knows every session) and fall back to the
    cache when it cannot be reached.
    """

    mode = "auto"

    def __init__(self, cache: Source, remote: Source) -> None:
        self.cache = cache
        self.remote = remote
        self.where = f"{cache.where} or {remote.where}"
        self.search_terms = remote.search_terms
        self.aliases = remote.aliases

    def __repr__(self) -> str:
        return f"CacheFirst({self.cache!r}, {self.remote!r})"

    def _for(self, eid: str) -> Source:
        return self.cache if self.cache.knows(eid) else self.remote

    def search(self, terms: dict[str, Any], details: bool) -> tuple[list[str], list[dict] | None]:
        try:
            return self.remote.search(terms, details)
        except AlyxTransientError as exc:
            logger.warning("%s; searching the local cache instead", exc)
        local = {self.cache.aliases.get(k, k): v for k, v in terms.items()}
        return self.cache.search(local, details)

    def to_eid(self, id: Any) -> str | None:
        return self.cache.to_eid(id) or self.remote.to_eid(id)

    def session_path(self, eid: str) -> Path | None:
        return self._for(eid).session_path(eid)

    def details(self, eid: str, full: bool) -> Any:
        return self._for(eid).details(eid, full)

    def datasets(self, eid: str | None) -> pd.DataFrame:
        return self.cache.datasets(eid) if eid is None else self._for(eid).datasets(eid)

    def files(self, rows: pd.DataFrame, check_hash: bool) -> list[Path | None]:
        found = self.cache.files(rows, check_hash) if len(rows) else []
        missing = [i for i, path in enumerate(found) if path is None]
        if missing:
            fetched = iter(self.remote.files(rows.iloc[missing], check_hash))
            found = [path if path is not None else next(fetched) for path in found]
        return found

    def values(self, keyword: str) -> list[str]:
        return self.remote.values(keyword)

    def knows(self, eid: str) -> bool:
        return self.cache.knows(eid) or self.remote.knows(eid)
