"""The query API: search, list and load sessions and datasets, as ONE-api's ``One`` does.

``One(cache_dir)`` answers from the ONE cache tables in ``cache_dir`` (or any ``CacheTables``
passed as ``tables=``), ONE-api's local mode; it then only reads. ``One(base_url=...,
username=..., password=...)`` (or ``alyx=`` an `AlyxClient`, or anything with an
``AlyxCredentials`` block's ``get_client()``) answers from an Alyx database and downloads files
from its data repositories into ``cache_dir`` (see `one_flows.one.alyx`). Calls are ONE-api's
(``search``, ``search_terms``, ``list_datasets``, ``list_collections``, ``list_revisions``,
``list_subjects``, ``get_details``, ``eid2path``, ``path2eid``, ``load_object``,
``load_dataset``, ``load_datasets``) and the older tutorial's (``list``, ``load``; ``load``
gives every match of a type: see `One.load`). ``ONE(...)`` is ONE-api's factory. ``mode``
(and each call's ``query_type``) is ONE's: 'local' answers from the cache tables only, 'remote'
from Alyx, 'auto' from the cache tables for the sessions they hold and from Alyx for the rest
(searches go to Alyx, and to the cache tables when Alyx cannot be reached). The query API asks a
`Source` for sessions and dataset rows and filters them itself, whichever source answers.

Matching follows ONE-api: with ``wildcards=True`` (default) filename, collection and revision
filters are shell globs (``*``, ``?``, ``[...]``), otherwise regular expressions; either way a
pattern must match the whole part, a list of patterns means any of them, None means anything and
an empty string means "absent" (no collection, no revision). Local search filters on subject,
lab, projects and task protocol are regular expressions matched anywhere in the field; remote
ones are Alyx's filters (see `one_flows.one.alyx`).

Deliberate differences from ONE-api's ``One``:

- Session ids are returned as strings (ONE 3 returns ``uuid.UUID``); both are accepted.
- Files are not md5-hashed on load unless ``check_hash=True``, and a mismatch then raises
  ``DatasetHashMismatch`` (ONE hashes every file on every load and only logs a mismatch). A
  downloaded file whose size or md5 is not the registered one raises ``DownloadMismatch`` and is
  deleted (ONE keeps it and tags the file record on Alyx).
- Filename patterns are matched against the file name, collection patterns against the
  collection: a glob such as ``*wheel*`` never matches a folder name, and ``alf/*`` never
  matches the revision folder of ``alf/#rev#/...`` (ONE's can). In a list of filename patterns
  every pattern counts (ONE anchors only the first after the collection), and ``revision=''``
  excludes revised datasets even when a filename is given (ONE then ignores it).
- ``list_datasets(None)``, ``list_collections`` and ``list_revisions`` return sorted lists.
- ``search(dataset_qc_lte=...)`` without ``datasets`` returns sessions having any dataset at or
  below that QC (ONE returns none), and local ``search`` records include the session ``id``.
- Unknown sessions give empty listings (ONE's ``list_datasets`` an empty DataFrame) and
  ``ALFObjectNotFound`` on load.
- Local mode on a folder without cache tables raises ``NoCacheTables`` (ONE warns, then answers
  every query empty). ``search(users=...)`` and ``list(None, 'users')`` on cache tables, which
  hold no users, raise ``NotInSource`` (ONE: an invalid search term).
- Dataset types, which the cache tables do not hold, are those the file names imply, named as
  Alyx names them (`one_flows.one.source.dataset_type`); a type asked with or without its
  namespace finds the same datasets (``sync.times`` and ``_spikeglx_sync.times``), locally and
  on an Alyx. ``search(dataset_types=...)`` works locally too.
- Remote: search terms are checked against Alyx 3.6's session filters, known in advance, rather
  than against the schema the server sends (ONE's first request); files come from each file
  record's ``data_url`` (ONE joins its own ``HTTP_DATA_SERVER`` setting with the path), several
  at once, resumed when a transfer breaks off; ``list(...)`` and ``load(...)`` of the older
  tutorial, which ONE-api 3 dropped, answer from Alyx too.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from one_flows.alf import get_session_path
from one_flows.alyx import AlyxClient
from one_flows.alyx.settings import one_params, one_params_key
from one_flows.cache import QC, CacheTables
from one_flows.loaders import load_file_content

from .alyx import AlyxSource
from .download import Downloader, ProgressCallback
from .errors import (
    ALFMultipleCollectionsFound,
    ALFMultipleObjectsFound,
    ALFObjectNotFound,
    NoCacheTables,
)
from .objects import AlfBunch, SessionDataInfo, name_parts, read_object
from .source import (
    DATASET_COLUMNS,
    CacheFirst,
    Source,
    dataset_type,
    is_of_type,
    same_type,
    split_rel_path,
)
from .tables import TableSource, category_mask, qc_passes

__all__ = ["ONE", "One"]

_FILE_PARTS = ("namespace", "object", "attribute", "timescale", "extra", "extension")
DATA_LOGIN = "HTTP_DATA_SERVER_LOGIN"
DATA_PASSWORD = "HTTP_DATA_SERVER_PWD"
"""ONE-api's names of the data server's HTTP basic auth, in its settings and our environment."""


def _listify(value: str | Iterable[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _pattern(patterns: str | Iterable[str], wildcards: bool) -> re.Pattern[str]:
    """Compile one or several globs (or regexes) into a regex that must match a whole string."""
    parts = _listify(patterns)
    if not parts:
        raise ValueError("An empty list of patterns matches nothing; pass None to match anything")
    if wildcards:
        parts = [fnmatch.translate(p) for p in parts]
    return re.compile("|".join(f"(?:{p})" for p in parts))


class One:
    """Queries over ONE cache tables or an Alyx database; see the module documentation.

    The arguments are ONE-api's (``One(cache_dir, mode, wildcards, tables_dir)``, and
    ``ONE(base_url=..., username=..., ...)``), plus ours.

    Parameters
    ----------
    cache_dir : str or os.PathLike or None
        The local cache: cache tables, and the files (downloaded ones too). With an
        Alyx, by default the ``CACHE_DIR`` of ONE-api's settings for it, else
        ``~/Downloads/ONE/<host>`` as ONE-api does.
    mode : str or None
        'local', 'remote' or 'auto' (default: 'remote' with an Alyx, else 'local').
    wildcards : bool
        Globs (True) or regular expressions (False) in patterns.
    tables_dir : str or os.PathLike or None
        Where the cache tables are, when not in ``cache_dir`` (local mode only).
    tables : CacheTables or None
        Cache tables to query instead of those in ``cache_dir``.
    alyx : Any
        An `AlyxClient`, or an object whose ``get_client()`` gives one (an
        ``AlyxCredentials`` block).
    base_url, username, password, token : str or None
        The Alyx to connect to, as ONE-api takes them;
        what is not given comes from the environment or ONE-api's settings
        (`one_flows.alyx.settings`).
    data_login, data_password : str or None
        HTTP basic auth for the data server; by default
        ``HTTP_DATA_SERVER_LOGIN`` and ``HTTP_DATA_SERVER_PWD`` from the environment, then from
        ONE-api's settings for that Alyx.
    progress : ProgressCallback or None
        Called with a `DownloadProgress` while files download.
    download_workers : int
        Files downloaded at once.
    cache_rest : str or None
        ONE-api's switch of its REST cache: None asks Alyx again on every call;
        otherwise a session's details are reused for 5 minutes, as ONE-api does.
    silent : bool
        Accepted for ONE-api's sake; nothing is printed either way.

    Raises
    ------
    NoCacheTables
        Local mode on a folder without cache tables (ONE-api warns, and then
        answers every query empty).
    ValueError
        A mode or a combination of arguments that cannot be served (``tables_dir``
        with an Alyx: the downloads' tables are kept in ``cache_dir``).
    """

    def __init__(
        self,
        cache_dir: str | os.PathLike | None = None,
        mode: str | None = None,
        wildcards: bool = True,
        tables_dir: str | os.PathLike | None = None,
        *,
        tables: CacheTables | None = None,
        alyx: Any = None,
        base_url: str | None = None,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        data_login: str | None = None,
        data_password: str | None = None,
        progress: ProgressCallback | None = None,
        download_workers: int = 16,
        cache_rest: str | None = "GET",
        silent: bool = True,
    ) -> None:
        connected = any(v is not None for v in (alyx, base_url, username, password, token))
        self.mode = mode or ("remote" if connected else "local")
        if self.mode not in ("local", "remote", "auto"):
            raise ValueError(f"mode {self.mode!r}: use 'local', 'remote' or 'auto'")
        self.wildcards = wildcards
        self.alyx: AlyxClient | None = None
        self._remote: AlyxSource | None = None
        if connected or self.mode != "local":
            if alyx is None:
                alyx = AlyxClient(base_url, username=username, password=password, token=token)
            elif hasattr(alyx, "get_client"):
                alyx = alyx.get_client()
            self.alyx = alyx
            settings = one_params(alyx.base_url)
            if cache_dir is None:
                host = one_params_key(alyx.base_url)
                cache_dir = settings.get("CACHE_DIR") or Path.home() / "Downloads" / "ONE" / host
            login = data_login or os.environ.get(DATA_LOGIN) or settings.get(DATA_LOGIN)
            secret = data_password or os.environ.get(DATA_PASSWORD) or settings.get(DATA_PASSWORD)
            downloader = Downloader(
                auth=(login, secret) if login and secret else None,
                workers=download_workers,
                progress=progress,
            )
        elif cache_dir is None:
            raise ValueError("give the cache_dir to query, or an Alyx to connect to")
        if tables_dir is not None and self.alyx is not None:
            raise ValueError(
                "tables_dir is for local mode only: with an Alyx, the cache tables of the "
                "downloaded files are kept in cache_dir"
            )
        self.cache_dir = Path(cache_dir)
        self._local = TableSource(
            self.cache_dir, tables=tables, wildcards=wildcards, tables_dir=tables_dir
        )
        if self.alyx is None and not self._local.has_tables():
            raise NoCacheTables(
                f"No ONE cache tables (sessions.pqt) in {self._local.tables_dir}: build them "
                f"with `one-flows cache {self._local.tables_dir}`, or connect to an Alyx "
                "(One(base_url=...))"
            )
        if self.alyx is not None:
            self._remote = AlyxSource(
                self.alyx,
                self.cache_dir,
                downloader=downloader,
                rest_cache_seconds=300.0 if cache_rest else 0.0,
                on_saved=self._local.reload,
            )

    def __repr__(self) -> str:
        where = self.cache_dir if self.alyx is None else self.alyx.base_url
        return f"One({str(where)!r}, mode={self.mode!r})"

    @property
    def offline(self) -> bool:
        """True when queries are answered without Alyx (mode 'local', or no Alyx given)."""
        return self.mode == "local" or self._remote is None

    def _source(self, query_type: str | None) -> Source:
        kind = query_type or self.mode
        if kind == "local":
            return self._local
        if kind not in ("remote", "auto"):
            raise ValueError(f"query_type {kind!r}: use 'local', 'remote' or 'auto'")
        if self._remote is None:
            raise ValueError(f"query_type {kind!r}: these tables only answer local queries")
        return self._remote if kind == "remote" else CacheFirst(self._local, self._remote)

    # -- sessions --------------------------------------------------------------------------------

    def search_terms(self, query_type: str | None = None) -> tuple[str, ...]:
        """Return the keyword arguments ``search`` accepts (prefixes of them also work)."""
        return self._source(query_type).search_terms

    @staticmethod
    def _complete(term: str, source: Source) -> str:
        term = term.casefold()
        if term in source.search_terms or term in source.refused_terms:
            return term
        if term in source.aliases:
            return source.aliases[term]
        matches = [t for t in source.search_terms if t.startswith(term)]
        if len(matches) != 1:
            problem = "Ambiguous" if matches else "Invalid"
            raise ValueError(
                f'{problem} search term "{term}": use one of {", ".join(source.search_terms)}'
            )
        return matches[0]

    def to_eid(self, id: Any, query_type: str | None = None) -> str | None:
        """Return the session id of a UUID, id string, session path or (lab/)subject/date/number.

        Returns None when the session is unknown. Raises ValueError for input that is neither an
        id nor a session path.
        """
        return self._source(query_type).to_eid(id)

    def _eid(self, id: Any, source: Source) -> str:
        eid = source.to_eid(id)
        if eid is None:
            raise ALFObjectNotFound(f"Session {id} is not in {source.where}")
        return eid

    def eid2path(self, eid: Any, query_type: str | None = None) -> Path | None:
        """Return the local folder of a session, or None if the session is unknown."""
        source = self._source(query_type)
        found = source.to_eid(eid)
        return None if found is None else source.session_path(found)

    def path2eid(self, path: str | os.PathLike, query_type: str | None = None) -> str | None:
        """Return the id of the session a path is in, or None."""
        return self.to_eid(path, query_type) if get_session_path(path) is not None else None

    def get_details(
        self, eid: Any, full: bool = False, query_type: str | None = None
    ) -> pd.Series | pd.DataFrame | dict:
        """Return a session's record, or with ``full`` its datasets joined with the record.

        From cache tables, a Series (a DataFrame with ``full``); from Alyx, ONE-api's dicts.
        """
        source = self._source(query_type)
        return source.details(self._eid(eid, source), full)

    def list_subjects(self, query_type: str | None = None) -> list[str]:
        """Return the sorted names of all subjects."""
        return self._source(query_type).values("subjects")

    def search(
        self, details: bool = False, query_type: str | None = None, **kwargs: Any
    ) -> list[str] | tuple[list[str], list[dict]]:
        """Return the ids of sessions matching all criteria, newest first.

        Criteria (prefixes accepted, e.g. ``subj=``, ``date=``, ``lab=``): ``subject``,
        ``laboratory``, ``projects``, ``task_protocol`` (regular expressions found anywhere in the
        field; a list means any of them), ``date_range`` (a date, or a list of one or two dates
        or None, inclusive), ``number`` (one or several), ``datasets`` (regular expressions that
        must each fully match the file name of an existing dataset of the session),
        ``dataset_types`` (type names, with or without the namespace, that must all be present)
        and ``dataset_qc_lte`` (QC at or below which those datasets must be). With ``details``,
        also return the session records. Results are sorted by date, subject then number,
        descending.
        """
        source = self._source(query_type)
        terms = {self._complete(k, source): v for k, v in kwargs.items()}
        eids, records = source.search(terms, details)
        return (eids, records) if details else eids

    # -- datasets -------------------------------------------------------------------------------

    def _filter(
        self,
        datasets: pd.DataFrame,
        filename: str | Iterable[str] | Mapping[str, Any] | None = None,
        collection: str | Iterable[str] | None = None,
        revision: str | Iterable[str] | None = None,
        qc: QC | int | str = QC.FAIL,
        ignore_qc_not_set: bool = False,
    ) -> pd.DataFrame:
        """Rows whose name, collection and revision match the patterns and whose QC passes."""
        mask = qc_passes(datasets["qc"].cat.codes.to_numpy(), qc, ignore_qc_not_set)
        if isinstance(filename, Mapping):
            unknown = set(filename) - set(_FILE_PARTS)
            if unknown:
                raise ValueError(f"Unknown ALF parts {sorted(unknown)}; use {_FILE_PARTS}")
            checks = [
                (_FILE_PARTS.index(k), _pattern(v, self.wildcards))
                for k, v in filename.items()
                if v is not None
            ]
            if checks:
                mask &= category_mask(
                    datasets["name"],
                    lambda n: all(r.fullmatch(name_parts(n)[i]) for i, r in checks),
                )
        elif filename is not None:
            regex = _pattern(filename, self.wildcards)
            has_folder = any("/" in f for f in _listify(filename))
            column = datasets["rel_path"] if has_folder else datasets["name"]
            if has_folder:
                mask &= column.map(lambda p: regex.fullmatch(p) is not None).to_numpy(dtype=bool)
            else:
                mask &= category_mask(column, lambda n: regex.fullmatch(n) is not None)
        for column, value in (("collection", collection), ("revision", revision)):
            if value is not None:
                regex = _pattern(value, self.wildcards)
                mask &= category_mask(
                    datasets[column], lambda c, r=regex: r.fullmatch(c) is not None
                )
        return datasets[mask]

    @staticmethod
    def _last_before(datasets: pd.DataFrame, revision: str | None) -> pd.DataFrame:
        """One row per dataset: the default revision (None) or the last one on/before ``revision``.

        Without a ``default_revision`` column the latest revision is the default. Revisions are
        compared as strings; a dataset without revision comes before any revision.
        """
        if datasets.empty:
            return datasets
        frame = datasets.assign(_rev=datasets["revision"].astype(str))
        if revision is not None:
            frame = frame[frame["_rev"] <= revision]
            order = ["_rev"]
        elif "default_revision" in frame.columns:
            frame = frame.assign(_default=frame["default_revision"].fillna(False).astype(bool))
            order = ["_default", "_rev"]
        else:
            order = ["_rev"]
        frame = frame.sort_values(order, kind="stable")
        last = frame.groupby(["collection", "name"], observed=True, sort=False).tail(1)
        return datasets.loc[last.index.sort_values()]

    @staticmethod
    def _details(rows: pd.DataFrame, keep_eid_index: bool) -> pd.DataFrame:
        columns = [*DATASET_COLUMNS]
        if "default_revision" in rows.columns:
            columns.append("default_revision")
        index = ["eid", "id"] if keep_eid_index else ["id"]
        return rows[[*index, *columns]].set_index(index)

    def _rows(self, source: Source, eid: Any) -> pd.DataFrame | None:
        """A session's dataset rows (all sessions' for None); None for an unknown session."""
        if eid is None:
            return source.datasets(None)
        found = source.to_eid(eid)
        return None if found is None else source.datasets(found)

    def list_datasets(
        self,
        eid: Any = None,
        filename: str | Iterable[str] | Mapping[str, Any] | None = None,
        collection: str | Iterable[str] | None = None,
        revision: str | Iterable[str] | None = None,
        qc: QC | int | str = QC.FAIL,
        ignore_qc_not_set: bool = False,
        details: bool = False,
        query_type: str | None = None,
        default_revisions_only: bool = False,
        keep_eid_index: bool = False,
    ) -> list[str] | pd.DataFrame:
        """Return the sorted relative paths of a session's datasets (all sessions if no eid).

        ``filename`` is a pattern for the file name (or for the relative path if it contains a
        slash), a list of them, or a dict of ALF part patterns (``object``, ``attribute``...).
        ``collection`` and ``revision`` are patterns too. Datasets with QC worse than ``qc`` are
        left out, and with ``ignore_qc_not_set`` those without QC. ``default_revisions_only``
        keeps only the default revision of each dataset. ``details`` returns the table rows,
        indexed by dataset id (by (eid, id) across sessions or with ``keep_eid_index``).
        """
        source = self._source(query_type)
        rows = self._rows(source, eid)
        if rows is None:
            return self._details(source.datasets(None).iloc[0:0], keep_eid_index) if details else []
        plain = filename is None and collection is None and revision is None
        if plain and not (details or default_revisions_only):
            keep = qc_passes(rows["qc"].cat.codes.to_numpy(), qc, ignore_qc_not_set)
            return sorted(set(rows["rel_path"].to_numpy()[keep].tolist()))
        if default_revisions_only:
            rows = self._last_before(rows, None)
        rows = self._filter(rows, filename, collection, revision, qc, ignore_qc_not_set)
        if details:
            return self._details(rows, keep_eid_index or eid is None)
        return sorted(set(rows["rel_path"].tolist()))

    def list_collections(
        self,
        eid: Any = None,
        filename: str | Iterable[str] | Mapping[str, Any] | None = None,
        collection: str | Iterable[str] | None = None,
        revision: str | Iterable[str] | None = None,
        details: bool = False,
        query_type: str | None = None,
    ) -> list[str] | dict[str, pd.DataFrame]:
        """Return the sorted collections ('' for none) holding matching datasets.

        With ``details``, a dict of collection → matching dataset rows.
        """
        return self._list_part(
            "collection", eid, filename, collection, revision, details, query_type
        )

    def list_revisions(
        self,
        eid: Any = None,
        filename: str | Iterable[str] | Mapping[str, Any] | None = None,
        collection: str | Iterable[str] | None = None,
        revision: str | Iterable[str] | None = None,
        details: bool = False,
        query_type: str | None = None,
    ) -> list[str] | dict[str, pd.DataFrame]:
        """Return the sorted revisions ('' for none) of matching datasets.

        With ``details``, a dict of revision → matching dataset rows.
        """
        return self._list_part("revision", eid, filename, collection, revision, details, query_type)

    def _list_part(
        self,
        part: str,
        eid: Any,
        filename: Any,
        collection: Any,
        revision: Any,
        details: bool,
        query_type: str | None,
    ) -> list[str] | dict[str, pd.DataFrame]:
        source = self._source(query_type)
        rows = self._rows(source, eid)
        if rows is None:
            rows = source.datasets(None).iloc[0:0]
        rows = self._filter(rows, filename, collection, revision)
        values = rows[part].astype(str)
        if not details:
            return sorted(set(values.tolist()))
        keep_eid = eid is None
        return {
            key: self._details(group, keep_eid)
            for key, group in rows.groupby(values.to_numpy(), sort=True)
        }

    # -- loading --------------------------------------------------------------------------------

    def _dataset_query(self, dataset: Any, collection: Any, revision: Any) -> tuple:
        """Normalise load_dataset's arguments: (filename, collection, revision, exact revision)."""
        if isinstance(dataset, Mapping):
            parts = dict(dataset)
            collection = parts.pop("collection", collection)
            revision = parts.pop("revision", revision)
            return parts, collection, revision, False
        if not isinstance(dataset, str):
            raise TypeError(f"A dataset is a name, relative path or dict of parts, not {dataset!r}")
        if "/" in dataset:
            if collection is not None or revision is not None:
                raise ValueError(
                    "collection and revision must be None when the dataset is a relative path"
                )
            coll, rev, name = split_rel_path(dataset)
            return name, coll, rev, True
        if self.wildcards and len(dataset.split(".")) == 2:
            dataset += ".*"
        return dataset, collection, revision, False

    def _find_one(
        self, rows: pd.DataFrame, dataset: Any, collection: Any, revision: Any
    ) -> pd.DataFrame:
        """The single row a dataset query designates (0 rows if none); raise if ambiguous."""
        name, coll, rev, exact = self._dataset_query(dataset, collection, revision)
        if exact:
            rows = self._filter(
                rows, name, _escape(coll, self.wildcards), _escape(rev, self.wildcards)
            )
        else:
            rows = self._last_before(self._filter(rows, name, coll), rev)
        collections = sorted(set(rows["collection"].astype(str)))
        if len(collections) > 1:
            raise ALFMultipleCollectionsFound(
                f"{dataset!r} is in several collections: {collections}; pass collection="
            )
        if len(rows) > 1:
            raise ALFMultipleObjectsFound(
                f"{dataset!r} matches several datasets: {rows['rel_path'].tolist()}"
            )
        return rows

    def load_dataset(
        self,
        eid: Any,
        dataset: str | Mapping[str, Any],
        collection: str | None = None,
        revision: str | None = None,
        query_type: str | None = None,
        download_only: bool = False,
        check_hash: bool = False,
    ) -> Any:
        """Load one dataset of a session, by name, relative path or dict of ALF parts.

        ``object.attribute`` matches any extension. Without ``revision`` the default revision is
        loaded, otherwise the last revision on or before it. ``download_only`` returns the path.
        """
        source = self._source(query_type)
        found = self._eid(eid, source)
        rows = self._find_one(source.datasets(found), dataset, collection, revision)
        if rows.empty:
            raise ALFObjectNotFound(f"Dataset {dataset!r} not found in session {eid}")
        (path,) = source.files(rows, check_hash)
        if path is None:
            raise ALFObjectNotFound(f"Dataset {rows['rel_path'].iloc[0]!r} is not on disk")
        return path if download_only else load_file_content(path)

    def load_datasets(
        self,
        eid: Any,
        datasets: Iterable[str] | Iterable[Mapping[str, Any]] | pd.DataFrame,
        collections: str | Iterable[str | None] | None = None,
        revisions: str | Iterable[str | None] | None = None,
        query_type: str | None = None,
        assert_present: bool = True,
        download_only: bool = False,
        check_hash: bool = False,
    ) -> tuple[list[Any], list[dict | None]]:
        """Load several datasets of a session; return (data list, record list) aligned with input.

        ``collections``/``revisions`` apply to every dataset (a str) or one each (a list).
        Missing datasets raise ``ALFObjectNotFound`` naming them, or with ``assert_present=False``
        give None in both lists. Relative paths (or a ``list_datasets(details=True)`` frame)
        designate exact files and exclude ``collections``/``revisions``.
        """
        source = self._source(query_type)
        if isinstance(datasets, str):
            raise TypeError("datasets must be a list of names, not a single str")
        if isinstance(datasets, pd.DataFrame):
            datasets = datasets["rel_path"].tolist()
        datasets = list(datasets)
        found = self._eid(eid, source)
        session_rows = source.datasets(found)
        colls = _per_dataset(collections, len(datasets), "collections")
        revs = _per_dataset(revisions, len(datasets), "revisions")
        slices = [
            self._find_one(session_rows, d, c, r)
            for d, c, r in zip(datasets, colls, revs, strict=True)
        ]
        missing = [str(d) for d, s in zip(datasets, slices, strict=True) if s.empty]
        if missing and assert_present:
            raise ALFObjectNotFound(f"Not in {source.where} for session {eid}: {missing}")
        present = [s for s in slices if not s.empty]
        rows = pd.concat(present) if present else session_rows.iloc[0:0]
        files = iter(source.files(rows, check_hash) if len(rows) else [])
        records = iter(self._details(rows, True).reset_index().to_dict("records"))
        paths = [None if s.empty else next(files) for s in slices]
        recs = [None if s.empty else next(records) for s in slices]
        absent = [r["rel_path"] for p, r in zip(paths, recs, strict=True) if r and p is None]
        if absent and assert_present:
            raise ALFObjectNotFound(f"Not on disk: {absent}")
        if download_only:
            return paths, recs
        return [load_file_content(p) for p in paths], recs

    def load_object(
        self,
        eid: Any,
        obj: str,
        collection: str | None = None,
        revision: str | None = None,
        query_type: str | None = None,
        download_only: bool = False,
        check_hash: bool = False,
        **parts: Any,
    ) -> AlfBunch | list[Path]:
        """Load all attributes of an ALF object of a session into an ``AlfBunch``.

        ``parts`` filter further (``attribute``, ``namespace``, ``timescale``, ``extra``,
        ``extension``). Each dataset's revision is its default, or the last one on or before
        ``revision``. Raises ``ALFMultipleCollectionsFound``/``ALFMultipleObjectsFound`` naming
        the candidates when the object is not unique; ``download_only`` returns the paths.
        """
        source = self._source(query_type)
        found = self._eid(eid, source)
        rows = self._filter(source.datasets(found), {"object": obj, **parts}, collection)
        rows = self._last_before(rows, revision)
        if rows.empty:
            raise ALFObjectNotFound(f"Object {obj!r} not found in session {eid}")
        objects = sorted({name_parts(n)[1] for n in rows["name"].astype(str)})
        if len(objects) > 1:
            raise ALFMultipleObjectsFound(f"{obj!r} matches several objects: {objects}")
        collections = sorted(set(rows["collection"].astype(str)))
        if len(collections) > 1:
            raise ALFMultipleCollectionsFound(
                f"Object {obj!r} is in several collections: {collections}; pass collection="
            )
        files = [f for f in source.files(rows, check_hash) if f is not None]
        if not files:
            raise ALFObjectNotFound(f"Object {obj!r} files are not on disk")
        return files if download_only else read_object(files)

    # -- older tutorial calls ---------------------------------------------------------------

    def list(
        self,
        eid: Any = None,
        keyword: str = "dataset-types",
        details: bool = False,
        query_type: str | None = None,
    ) -> list[str] | pd.DataFrame:
        """Older ONE listing: a session's dataset types, or all ``keyword`` values if no eid.

        ``keyword`` is one of 'dataset-types', 'subjects', 'labs', 'users' (users only from an
        Alyx). With an eid and ``details``, the session's dataset rows with a ``dataset_type``
        column (and the download URL, ``data_url``, from an Alyx).
        """
        source = self._source(query_type)
        key = keyword.replace("_", "-").casefold().rstrip("s") + "s"
        if key not in ("dataset-types", "subjects", "labs", "users"):
            raise ValueError(
                f"Unknown keyword {keyword!r}: use 'dataset-types', 'subjects', 'labs' or 'users'"
            )
        if eid is None:
            return source.values(key)
        if key != "dataset-types":
            raise ValueError(f"With a session, list only lists dataset types, not {keyword!r}")
        rows = self._rows(source, eid)
        if rows is None:
            rows = source.datasets(None).iloc[0:0]
        types = _dataset_types(rows)
        if not details:
            return sorted(set(types))
        extra = {"dataset_type": types}
        if "data_url" in rows.columns:
            extra["data_url"] = rows["data_url"].tolist()
        return self._details(rows, False).assign(**extra).sort_values("rel_path")

    def load(
        self,
        eid: Any,
        dataset_types: str | Iterable[str] | None = None,
        dclass_output: bool = False,
        download_only: bool = False,
        collection: str | None = None,
        revision: str | None = None,
        check_hash: bool = False,
        query_type: str | None = None,
    ) -> list[Any] | SessionDataInfo:
        """Older ONE loading by dataset type: one position per type asked, in order.

        A type is ``object.attribute`` with or without the files' namespace
        (``_spikeglx_sync.times`` or ``sync.times``; from an Alyx, also its own type names).
        Each position holds what matches its type: the data of the one dataset; a list of every
        match's data when several match (one per collection and file name, e.g. ``spikes.times``
        of each probe, sorted by relative path); an empty list when none does. Each dataset is
        its default revision, or the last on or before ``revision``; ``collection`` is a
        pattern. Without types, every type of the session. ``dclass_output`` returns a
        ``SessionDataInfo`` whose ``dataset_id``, ``local_path``, ``url`` (the download URL, from
        an Alyx) and ``data`` hold, per position, the same way: one value, a list, or an empty
        list.
        """
        source = self._source(query_type)
        found = self._eid(eid, source)
        rows = self._last_before(self._filter(source.datasets(found), None, collection), revision)
        if dataset_types is None:
            types = sorted(set(_dataset_types(rows)))
        else:
            types = _listify(dataset_types)
        matches = [rows[_of_type(rows, t)].sort_values("rel_path") for t in types]
        present = [m for m in matches if len(m)]
        loaded = iter(source.files(pd.concat(present), check_hash) if present else [])
        info = SessionDataInfo()
        for dtype, match in zip(types, matches, strict=True):
            paths = [next(loaded) for _ in range(len(match))]
            urls = match["data_url"].tolist() if "data_url" in match else [None] * len(match)
            data = paths if download_only else [load_file_content(p) for p in paths]
            info.dataset_type.append(dtype)
            info.eid.append(found)
            for values, column in zip(
                (match["id"].tolist(), paths, urls, data),
                (info.dataset_id, info.local_path, info.url, info.data),
                strict=True,
            ):
                column.append(values[0] if len(values) == 1 else values)
        return info if dclass_output else info.data


def ONE(*, mode: str = "remote", **kwargs: Any) -> One:
    """ONE-api's factory, for scripts that call ``ONE(...)``: a `One` in ``mode``, 'remote' by
    default as in ONE-api (``ONE()`` connects to the Alyx of the environment or of ONE-api's
    settings; ``ONE(cache_dir=..., mode='local')`` reads cache tables)."""
    return One(mode=mode, **kwargs)


def _dataset_types(rows: pd.DataFrame) -> list[str]:
    """Each row's dataset type: the source's, else the one its file name implies."""
    if "dataset_type" in rows.columns:
        return rows["dataset_type"].astype(str).tolist()
    return [dataset_type(split_rel_path(r)[2]) for r in rows["rel_path"]]


def _of_type(rows: pd.DataFrame, dtype: str) -> np.ndarray:
    """Mask of the rows of a dataset type: by file name, or by the source's type name."""
    mask = category_mask(rows["name"], lambda name: is_of_type(name, dtype))
    if "dataset_type" in rows.columns:
        types = rows["dataset_type"].to_numpy()
        mask |= np.fromiter(
            (isinstance(t, str) and same_type(dtype, t) for t in types), bool, len(types)
        )
    return mask


def _escape(value: str | None, wildcards: bool) -> str | None:
    """A pattern matching exactly ``value``."""
    if value is None:
        return None
    return re.sub(r"([*?\[])", r"[\1]", value) if wildcards else re.escape(value)


def _per_dataset(value: Any, n: int, name: str) -> list[Any]:
    if value is None or isinstance(value, str):
        return [value] * n
    value = list(value)
    if len(value) != n:
        raise ValueError(f"{name} has {len(value)} entries for {n} datasets")
    return value
