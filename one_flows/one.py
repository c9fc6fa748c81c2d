"""Search, list and load sessions and datasets described by ONE cache tables.

``One(cache_dir)`` answers ONE-api's local-mode queries (``search``, ``list_datasets``,
``list_collections``, ``list_revisions``, ``list_subjects``, ``load_object``, ``load_dataset``,
``load_datasets``) and the older tutorial calls (``list``, ``load``) from the tables in
``cache_dir`` or from any ``CacheTables`` passed as ``tables=`` (so another source, such as an
Alyx database, can supply them). It only reads: tables are never modified.

Matching follows ONE-api: with ``wildcards=True`` (default) filename, collection and revision
filters are shell globs (``*``, ``?``, ``[...]``), otherwise regular expressions; either way a
pattern must match the whole part, a list of patterns means any of them, None means anything and
an empty string means "absent" (no collection, no revision). Search filters on subject, lab,
projects and task protocol are regular expressions matched anywhere in the field.

Deliberate differences from ONE-api's local ``One``:

- Session ids are returned as strings (ONE 3 returns ``uuid.UUID``); both are accepted.
- Files are not md5-hashed on load unless ``check_hash=True``, and a mismatch then raises
  ``DatasetHashMismatch`` (ONE hashes every file on every load and only logs a mismatch).
- Filename patterns are matched against the file name, collection patterns against the
  collection: a glob such as ``*wheel*`` never matches a folder name, and ``alf/*`` never
  matches the revision folder of ``alf/#rev#/...`` (ONE's can). In a list of filename patterns
  every pattern counts (ONE anchors only the first after the collection), and ``revision=''``
  excludes revised datasets even when a filename is given (ONE then ignores it).
- ``list_datasets(None)``, ``list_collections`` and ``list_revisions`` return sorted lists.
- ``search(dataset_qc_lte=...)`` without ``datasets`` returns sessions having any dataset at or
  below that QC (ONE returns none), and ``search`` records include the session ``id``.
- Unknown sessions give empty listings and ``ALFObjectNotFound`` on load.
"""

from __future__ import annotations

import fnmatch
import os
import re
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from one_flows.alf import ALFError, filename_parts, get_session_path, session_path_parts
from one_flows.cache import QC, QC_LEVELS, QC_TYPE, CacheTables, load_tables
from one_flows.hashing import md5
from one_flows.loaders import load_file_content

__all__ = [
    "ALFMultipleCollectionsFound",
    "ALFMultipleObjectsFound",
    "ALFMultipleRevisionsFound",
    "ALFObjectNotFound",
    "AlfBunch",
    "DatasetHashMismatch",
    "One",
    "SessionDataInfo",
]

_FILE_PARTS = ("namespace", "object", "attribute", "timescale", "extra", "extension")
_DATASET_COLUMNS = ["rel_path", "file_size", "hash", "exists", "qc"]


class ALFObjectNotFound(ALFError):
    """No dataset, object or session matches the query."""


class ALFMultipleObjectsFound(ALFError):
    """The query matches several datasets or objects where one was expected."""


class ALFMultipleCollectionsFound(ALFError):
    """The query matches datasets in several collections where one was expected."""


class ALFMultipleRevisionsFound(ALFError):
    """The query matches several revisions where one was expected."""


class DatasetHashMismatch(ALFError):
    """A file's md5 differs from the one recorded in the datasets table."""


class AlfBunch(dict):
    """A dict of an ALF object's attributes, also readable as attributes (``bunch.times``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __dir__(self) -> Iterable[str]:
        return [*super().__dir__(), *self.keys()]

    @property
    def check_dimensions(self) -> int:
        """0 when all array attributes have the same first dimension, else 1 (ALF's rule).

        Compressed (2, 2) timestamps are exempt.
        """
        lengths = {
            v.shape[0]
            for k, v in self.items()
            if isinstance(v, (np.ndarray, pd.DataFrame))
            and v.ndim
            and not (k.startswith("timestamps") and v.shape == (2, 2))
        }
        return 0 if len(lengths) <= 1 else 1

    def to_df(self) -> pd.DataFrame:
        """Return the array attributes as columns; a 2-D attribute x becomes x_0, x_1, ..."""
        if self.check_dimensions:
            raise ValueError("Attributes have different lengths: cannot make a DataFrame")
        columns: dict[str, Any] = {}
        for key, value in self.items():
            if isinstance(value, np.ndarray) and value.ndim == 1:
                columns[key] = value
            elif isinstance(value, np.ndarray) and value.ndim == 2:
                columns.update({f"{key}_{i}": value[:, i] for i in range(value.shape[1])})
        return pd.DataFrame(columns)


@dataclass
class SessionDataInfo:
    """Aligned lists describing what ``One.load(..., dclass_output=True)`` loaded."""

    dataset_type: list[str] = field(default_factory=list)
    dataset_id: list[str | None] = field(default_factory=list)
    local_path: list[Path | None] = field(default_factory=list)
    eid: list[str] = field(default_factory=list)
    url: list[str | None] = field(default_factory=list)
    data: list[Any] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.dataset_type)


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


@lru_cache(maxsize=65536)
def _name_parts(name: str) -> tuple[str, ...]:
    """ALF parts of a file name, '' for absent parts."""
    return tuple(p or "" for p in filename_parts(name, assert_valid=False))


def _split_rel_path(rel_path: str) -> tuple[str, str, str]:
    """Split ``collection/#revision#/name`` into (collection, revision, name)."""
    folder, _, name = rel_path.rpartition("/")
    collection, _, last = folder.rpartition("/")
    if len(last) > 1 and last[0] == "#" and last[-1] == "#":
        return collection, last[1:-1], name
    return folder, "", name


def _validate_date_range(date_range: Any) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Return the inclusive (start, end) of a date, or of a list of one or two dates/None."""
    if isinstance(date_range, str) or not isinstance(date_range, Iterable):
        start = pd.Timestamp(date_range)
        return start, start + pd.Timedelta(days=1) - pd.Timedelta(milliseconds=1)
    bounds = list(date_range)
    if len(bounds) == 1:
        bounds.append(None)
    if len(bounds) != 2:
        raise ValueError(f"date_range must be a date or a list of 1 or 2 dates, got {date_range!r}")
    start = pd.Timestamp(bounds[0]) if bounds[0] is not None else pd.Timestamp.min
    end = pd.Timestamp(bounds[1]) if bounds[1] is not None else pd.Timestamp.max
    return start, end


class One:
    """Queries over ONE cache tables; see the module documentation for semantics."""

    _search_terms = (
        "dataset_qc_lte",
        "dataset_types",
        "datasets",
        "date_range",
        "laboratory",
        "number",
        "projects",
        "subject",
        "task_protocol",
    )
    _aliases: Mapping[str, str] = {
        "lab": "laboratory",
        "dataset": "datasets",
        "dataset_type": "dataset_types",
        "date": "date_range",
    }

    def __init__(
        self,
        cache_dir: str | os.PathLike,
        *,
        tables: CacheTables | None = None,
        wildcards: bool = True,
    ) -> None:
        """Query the tables in ``cache_dir`` (or ``tables``); files are read from ``cache_dir``."""
        self.cache_dir = Path(cache_dir)
        self.wildcards = wildcards
        if tables is None:
            tables = load_tables(self.cache_dir, datasets_index=False)
        self._set_tables(tables)

    def __repr__(self) -> str:
        return f"One({str(self.cache_dir)!r}, {len(self._sessions)} sessions)"

    def _set_tables(self, tables: CacheTables) -> None:
        sessions = tables.sessions.copy()
        sessions.index = sessions.index.astype("str")
        for column in ("lab", "task_protocol", "projects"):
            if column not in sessions.columns:
                sessions[column] = ""
        sessions["number"] = sessions["number"].astype(int)
        self._sessions = sessions
        # Searches test each distinct value of a text column once, and compare plain arrays.
        self._session_text = {
            column: pd.factorize(sessions[column].fillna("").astype(str), sort=True)
            for column in ("lab", "subject", "projects", "task_protocol")
        }
        self._session_dates = pd.to_datetime(sessions["date"]).to_numpy()
        self._session_numbers = sessions["number"].to_numpy()
        dsets = tables.datasets
        if isinstance(dsets.index, pd.MultiIndex):
            dsets = dsets.reset_index()
        else:
            dsets = dsets.copy(deep=False)
        for column in ("eid", "id"):
            if not isinstance(dsets[column].dtype, pd.StringDtype):
                dsets[column] = dsets[column].astype("str")
        codes, uniques = pd.factorize(dsets["rel_path"])
        split = [_split_rel_path(r) for r in uniques]
        for i, column in enumerate(("collection", "revision", "name")):
            values = [s[i] for s in split]
            categories = sorted(set(values))
            where = {c: k for k, c in enumerate(categories)}
            part_codes = np.array([where[v] for v in values], dtype=np.int64)
            dsets[column] = pd.Categorical.from_codes(part_codes[codes], categories=categories)
        if dsets["qc"].dtype != QC_TYPE:
            dsets["qc"] = dsets["qc"].astype(QC_TYPE)
        self._datasets = dsets
        # Plain arrays answer the common listing without building frames.
        self._rel_paths = dsets["rel_path"].to_numpy(dtype=object)
        self._qc_codes = dsets["qc"].cat.codes.to_numpy()
        self._rows_of = _rows_by_session(dsets["eid"])
        self._by_path = {
            (lab or "", subj, str(date), int(num)): eid
            for eid, lab, subj, date, num in zip(
                sessions.index,
                sessions["lab"].fillna(""),
                sessions["subject"],
                sessions["date"],
                sessions["number"],
                strict=True,
            )
        }
        self._by_subject_path: dict[tuple[str, str, int], list[str]] = {}
        for (_, subj, date, num), eid in self._by_path.items():
            self._by_subject_path.setdefault((subj, date, num), []).append(eid)

    # -- sessions --------------------------------------------------------------------------------

    def search_terms(self, query_type: str | None = None) -> tuple[str, ...]:
        """Return the keyword arguments ``search`` accepts (prefixes of them also work)."""
        self._check_query_type(query_type)
        return self._search_terms

    @staticmethod
    def _check_query_type(query_type: str | None) -> None:
        if query_type not in (None, "local"):
            raise ValueError(f"query_type {query_type!r}: these tables only answer local queries")

    def _complete(self, term: str) -> str:
        term = term.casefold()
        if term in self._search_terms:
            return term
        if term in self._aliases:
            return self._aliases[term]
        matches = [t for t in self._search_terms if t.startswith(term)]
        if len(matches) != 1:
            problem = "Ambiguous" if matches else "Invalid"
            raise ValueError(
                f'{problem} search term "{term}": use one of {", ".join(self._search_terms)}'
            )
        return matches[0]

    def to_eid(self, id: Any) -> str | None:
        """Return the session id of a UUID, id string, session path or (lab/)subject/date/number.

        Returns None when the session is not in the tables. Raises ValueError for input that is
        neither an id nor a session path.
        """
        if isinstance(id, uuid.UUID):
            return str(id) if str(id) in self._sessions.index else None
        if isinstance(id, str) and id in self._sessions.index:
            return id
        if isinstance(id, Mapping):
            parts = (id.get("lab") or "", id["subject"], str(id["date"]), int(id["number"]))
            return self._by_path.get(parts)
        if isinstance(id, (str, os.PathLike)):
            path = get_session_path(id)
            if path is not None:
                lab, subject, date, number = session_path_parts(path, assert_valid=True)
                if lab:
                    return self._by_path.get((lab, subject, date, int(number)))
                matches = self._by_subject_path.get((subject, date, int(number)), [])
                if len(matches) > 1:
                    raise ALFMultipleObjectsFound(
                        f"Session {path} exists in several labs; give lab/Subjects/... : {matches}"
                    )
                return matches[0] if matches else None
            text = str(id)
            try:
                return self.to_eid(uuid.UUID(text[-36:]))  # ids may end an Alyx URL
            except ValueError:
                pass
        raise ValueError(f"Cannot read a session id or session path from {id!r}")

    def _eid(self, id: Any) -> str:
        eid = self.to_eid(id)
        if eid is None:
            raise ALFObjectNotFound(f"Session {id} is not in the cache tables")
        return eid

    def eid2path(self, eid: Any) -> Path | None:
        """Return the local folder of a session, or None if it is not in the tables."""
        found = self.to_eid(eid)
        if found is None:
            return None
        rec = self._sessions.loc[found]
        lab = rec["lab"] if isinstance(rec["lab"], str) else ""
        parts = [lab, "Subjects"] if lab else []
        return self.cache_dir.joinpath(
            *parts, rec["subject"], str(rec["date"]), f"{rec['number']:03d}"
        )

    def path2eid(self, path: str | os.PathLike) -> str | None:
        """Return the id of the session a path is in, or None."""
        return self.to_eid(path) if get_session_path(path) is not None else None

    def get_details(self, eid: Any, full: bool = False) -> pd.Series | pd.DataFrame:
        """Return a session's record, or with ``full`` its datasets joined with the record."""
        found = self._eid(eid)
        record = self._sessions.loc[found]
        if not full:
            return record
        datasets = self.list_datasets(found, details=True, keep_eid_index=True)
        return datasets.join(self._sessions.loc[[found]], on="eid")

    def list_subjects(self) -> list[str]:
        """Return the sorted names of all subjects."""
        return sorted(self._sessions["subject"].unique().tolist())

    def search(
        self, details: bool = False, query_type: str | None = None, **kwargs: Any
    ) -> list[str] | tuple[list[str], list[dict]]:
        """Return the ids of sessions matching all criteria, newest first.

        Criteria (prefixes accepted, e.g. ``subj=``, ``date=``, ``lab=``): ``subject``,
        ``laboratory``, ``projects``, ``task_protocol`` (regular expressions found anywhere in the
        field; a list means any of them), ``date_range`` (a date, or a list of one or two dates
        or None, inclusive), ``number`` (one or several), ``datasets`` (regular expressions that
        must each fully match the file name of an existing dataset of the session),
        ``dataset_types`` (``object.attribute`` names that must all be present) and
        ``dataset_qc_lte`` (QC at or below which those datasets must be). With ``details``, also
        return the session records. Results are sorted by date, subject then number, descending.
        """
        self._check_query_type(query_type)
        queries = {self._complete(k): v for k, v in kwargs.items()}
        mask = np.ones(len(self._sessions), dtype=bool)
        for key in ("subject", "laboratory", "projects", "task_protocol"):
            if key in queries:
                codes, values = self._session_text["lab" if key == "laboratory" else key]
                query = "|".join(_listify(queries[key]))
                if self.wildcards:
                    regex = re.compile(query)
                    found = [regex.search(v) is not None for v in values]
                else:
                    found = [query in v for v in values]
                mask &= np.array(found, dtype=bool)[codes]
        dates = self._session_dates
        if "date_range" in queries:
            start, end = _validate_date_range(queries["date_range"])
            mask &= (dates >= start.to_datetime64()) & (dates <= end.to_datetime64())
        if "number" in queries:
            numbers = [int(n) for n in _listify_any(queries["number"])]
            mask &= np.isin(self._session_numbers, numbers)
        dataset_terms = {"datasets", "dataset_types", "dataset_qc_lte"} & queries.keys()
        if dataset_terms and mask.any():
            mask &= self._sessions.index.isin(list(self._sessions_with(queries)))
        rows = np.flatnonzero(mask)
        subjects = self._session_text["subject"][0]
        # Newest first; a missing date (NaT, the smallest int64) comes last.
        keys = (self._session_numbers[rows], subjects[rows], dates[rows].view(np.int64))
        sessions = self._sessions.iloc[rows[np.lexsort(keys)[::-1]]]
        eids = sessions.index.tolist()
        if not details:
            return eids
        return eids, sessions.reset_index().to_dict("records")

    def _sessions_with(self, queries: dict[str, Any]) -> set[str]:
        """Sessions having all the datasets / dataset types asked for, at the QC asked for."""
        d = self._datasets
        level = queries.get("dataset_qc_lte", QC.FAIL)
        usable = np.array(d["exists"], dtype=bool) & _qc_passes(self._qc_codes, level, False)
        masks = []
        for pattern in _listify(queries.get("datasets", [])):
            regex = re.compile(pattern)
            masks.append(self._mask(d["name"], lambda n, r=regex: r.fullmatch(n) is not None))
        for dtype in _listify(queries.get("dataset_types", [])):
            masks.append(self._mask(d["name"], lambda n, t=dtype: _dataset_type(n) == t))
        if not masks:
            masks.append(np.ones(len(d), dtype=bool))
        eids: set[str] | None = None
        for mask in masks:
            found = set(d["eid"].to_numpy()[mask & usable])
            eids = found if eids is None else eids & found
        return eids or set()

    @staticmethod
    def _mask(column: pd.Series, keep: Callable[[str], bool]) -> np.ndarray:
        """Evaluate ``keep`` once per category of a categorical column; return the row mask."""
        ok = np.fromiter(
            map(keep, column.cat.categories), dtype=bool, count=len(column.cat.categories)
        )
        codes = column.cat.codes.to_numpy()
        return ok[codes] if len(ok) else np.zeros(len(codes), dtype=bool)

    # -- datasets -------------------------------------------------------------------------------

    def _session_rows(self, eid: str | None) -> pd.DataFrame:
        if eid is None:
            return self._datasets
        return self._datasets.iloc[self._rows_of.get(eid, slice(0, 0))]

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
        mask = _qc_passes(datasets["qc"].cat.codes.to_numpy(), qc, ignore_qc_not_set)
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
                mask &= self._mask(
                    datasets["name"],
                    lambda n: all(r.fullmatch(_name_parts(n)[i]) for i, r in checks),
                )
        elif filename is not None:
            regex = _pattern(filename, self.wildcards)
            has_folder = any("/" in f for f in _listify(filename))
            column = datasets["rel_path"] if has_folder else datasets["name"]
            if has_folder:
                mask &= column.map(lambda p: regex.fullmatch(p) is not None).to_numpy(dtype=bool)
            else:
                mask &= self._mask(column, lambda n: regex.fullmatch(n) is not None)
        for column, value in (("collection", collection), ("revision", revision)):
            if value is not None:
                regex = _pattern(value, self.wildcards)
                mask &= self._mask(datasets[column], lambda c, r=regex: r.fullmatch(c) is not None)
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

    def _details(self, rows: pd.DataFrame, keep_eid_index: bool) -> pd.DataFrame:
        columns = [*_DATASET_COLUMNS]
        if "default_revision" in rows.columns:
            columns.append("default_revision")
        index = ["eid", "id"] if keep_eid_index else ["id"]
        return rows[[*index, *columns]].set_index(index)

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
        self._check_query_type(query_type)
        found = None if eid is None else self.to_eid(eid)
        if eid is not None and found is None:
            return self._details(self._datasets.iloc[0:0], keep_eid_index) if details else []
        plain = filename is None and collection is None and revision is None
        if plain and not (details or default_revisions_only):
            rows = slice(None) if found is None else self._rows_of.get(found, slice(0, 0))
            keep = _qc_passes(self._qc_codes[rows], qc, ignore_qc_not_set)
            return sorted(set(self._rel_paths[rows][keep].tolist()))
        rows = self._session_rows(found)
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
        self._check_query_type(query_type)
        found = None if eid is None else self.to_eid(eid)
        rows = self._session_rows(found) if eid is None or found else self._datasets.iloc[0:0]
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

    def _paths(self, rows: pd.DataFrame) -> list[Path]:
        folders = {eid: self.eid2path(eid) for eid in rows["eid"].unique()}
        return [folders[e] / r for e, r in zip(rows["eid"], rows["rel_path"], strict=True)]

    def _check_files(self, rows: pd.DataFrame, check_hash: bool) -> list[Path | None]:
        """Local path of each row's file, None when missing; warn on size mismatch."""
        files: list[Path | None] = []
        for path, size, digest in zip(
            self._paths(rows), rows["file_size"], rows["hash"], strict=True
        ):
            try:
                actual = path.stat().st_size
            except FileNotFoundError:
                files.append(None)
                continue
            if not pd.isna(size) and int(size) != actual:
                warnings.warn(f"{path} is {actual} bytes; the table says {int(size)}", stacklevel=4)
            if check_hash and isinstance(digest, str) and digest and md5(path) != digest:
                raise DatasetHashMismatch(f"{path} md5 differs from the table's {digest}")
            files.append(path)
        return files

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
            coll, rev, name = _split_rel_path(dataset)
            return name, coll, rev, True
        if self.wildcards and len(dataset.split(".")) == 2:
            dataset += ".*"
        return dataset, collection, revision, False

    def _find_one(self, eid: str, dataset: Any, collection: Any, revision: Any) -> pd.DataFrame:
        """The single row a dataset query designates (0 rows if none); raise if ambiguous."""
        name, coll, rev, exact = self._dataset_query(dataset, collection, revision)
        rows = self._session_rows(eid)
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
        self._check_query_type(query_type)
        rows = self._find_one(self._eid(eid), dataset, collection, revision)
        if rows.empty:
            raise ALFObjectNotFound(f"Dataset {dataset!r} not found in session {eid}")
        (path,) = self._check_files(rows, check_hash)
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
        self._check_query_type(query_type)
        if isinstance(datasets, str):
            raise TypeError("datasets must be a list of names, not a single str")
        if isinstance(datasets, pd.DataFrame):
            datasets = datasets["rel_path"].tolist()
        datasets = list(datasets)
        found = self._eid(eid)
        colls = _per_dataset(collections, len(datasets), "collections")
        revs = _per_dataset(revisions, len(datasets), "revisions")
        slices = [
            self._find_one(found, d, c, r) for d, c, r in zip(datasets, colls, revs, strict=True)
        ]
        missing = [str(d) for d, s in zip(datasets, slices, strict=True) if s.empty]
        if missing and assert_present:
            raise ALFObjectNotFound(f"Not in the cache tables for session {eid}: {missing}")
        present = [s for s in slices if not s.empty]
        rows = pd.concat(present) if present else self._datasets.iloc[0:0]
        files = iter(self._check_files(rows, check_hash))
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
        self._check_query_type(query_type)
        found = self._eid(eid)
        rows = self._filter(self._session_rows(found), {"object": obj, **parts}, collection)
        rows = self._last_before(rows, revision)
        if rows.empty:
            raise ALFObjectNotFound(f"Object {obj!r} not found in session {eid}")
        objects = sorted({_name_parts(n)[1] for n in rows["name"].astype(str)})
        if len(objects) > 1:
            raise ALFMultipleObjectsFound(f"{obj!r} matches several objects: {objects}")
        collections = sorted(set(rows["collection"].astype(str)))
        if len(collections) > 1:
            raise ALFMultipleCollectionsFound(
                f"Object {obj!r} is in several collections: {collections}; pass collection="
            )
        files = [f for f in self._check_files(rows, check_hash) if f is not None]
        if not files:
            raise ALFObjectNotFound(f"Object {obj!r} files are not on disk")
        return files if download_only else _read_object(files)

    # -- older tutorial calls ---------------------------------------------------------------

    def list(
        self, eid: Any = None, keyword: str = "dataset-types", details: bool = False
    ) -> list[str] | pd.DataFrame:
        """Older ONE listing: a session's dataset types, or all ``keyword`` values if no eid.

        ``keyword`` is one of 'dataset-types', 'subjects', 'labs', 'users' (the tables hold no
        users: always empty). With an eid and ``details``, the session's dataset rows with a
        ``dataset_type`` column.
        """
        key = keyword.replace("_", "-").casefold()
        if eid is not None:
            if key not in ("dataset-types", "dataset-type"):
                raise ValueError(f"With a session, list only lists dataset types, not {keyword!r}")
            rows = self.list_datasets(eid, details=True)
            if details:
                return rows.assign(
                    dataset_type=[_dataset_type(_split_rel_path(r)[2]) for r in rows["rel_path"]]
                )
            return sorted({_dataset_type(_split_rel_path(r)[2]) for r in rows["rel_path"]})
        if key in ("dataset-types", "dataset-type"):
            return sorted({_dataset_type(n) for n in self._datasets["name"].cat.categories})
        if key in ("subjects", "subject"):
            return self.list_subjects()
        if key in ("labs", "lab"):
            return sorted(set(self._sessions["lab"].dropna()) - {""})
        if key in ("users", "user"):
            return []
        raise ValueError(
            f"Unknown keyword {keyword!r}: use 'dataset-types', 'subjects', 'labs' or 'users'"
        )

    def load(
        self,
        eid: Any,
        dataset_types: str | Iterable[str] | None = None,
        dclass_output: bool = False,
        download_only: bool = False,
        collection: str | None = None,
        revision: str | None = None,
        check_hash: bool = False,
    ) -> list[Any] | SessionDataInfo:
        """Older ONE loading by dataset type (``object.attribute``), one entry per type asked.

        A type with no dataset gives None (so outputs keep their order). Without types, all the
        session's types are loaded. ``dclass_output`` returns a ``SessionDataInfo``.
        """
        found = self._eid(eid)
        types = self.list(found) if dataset_types is None else _listify(dataset_types)
        info = SessionDataInfo()
        for dtype in types:
            obj, _, attribute = dtype.partition(".")
            query = {"object": obj, "attribute": attribute} if attribute else {"object": obj}
            rows = self._find_one(found, query, collection, revision)
            path = self._check_files(rows, check_hash)[0] if len(rows) else None
            info.dataset_type.append(dtype)
            info.dataset_id.append(rows["id"].iloc[0] if len(rows) else None)
            info.local_path.append(path)
            info.eid.append(found)
            info.url.append(None)
            info.data.append(path if download_only else load_file_content(path))
        return info if dclass_output else info.data


def _rows_by_session(eids: pd.Series) -> dict[str, slice | np.ndarray]:
    """The rows of each session: a slice when they are contiguous (as in our tables)."""
    codes, uniques = pd.factorize(eids)
    if len(codes) == 0:
        return {}
    if (np.diff(codes) >= 0).all():  # codes number sessions by first appearance
        starts = np.flatnonzero(np.diff(codes, prepend=-1))
        stops = [*starts[1:].tolist(), len(codes)]
        return {e: slice(a, b) for e, a, b in zip(uniques, starts.tolist(), stops, strict=True)}
    groups = eids.groupby(codes, sort=False).indices
    return {uniques[k]: rows for k, rows in groups.items()}


def _qc_passes(codes: np.ndarray, qc: QC | int | str, ignore_qc_not_set: bool) -> np.ndarray:
    """Mask of QC codes (positions in QC_LEVELS, -1 if missing) at or below ``qc``."""
    level = QC_LEVELS.index(QC.validate(qc).name)
    mask = (codes >= 0) & (codes <= level)
    if ignore_qc_not_set:
        mask &= codes != QC_LEVELS.index(QC.NOT_SET.name)
    return mask


def _listify_any(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple, set, np.ndarray)) else [value]


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


def _dataset_type(name: str) -> str:
    parts = _name_parts(name)
    return f"{parts[1]}.{parts[2]}"


def _read_object(files: list[Path]) -> AlfBunch:
    """Read an object's files into a bunch keyed by attribute(_timescale)(.extra)."""
    out = AlfBunch()
    metadata: dict[str, Any] = {}
    for path in files:
        _, _, attribute, timescale, extra, extension = _name_parts(path.name)
        key = "_".join(filter(None, [attribute, timescale]))
        extras = extra.split(".") if extra else []
        if extension == "json" and "metadata" in extras:
            metadata[key] = load_file_content(path)
            continue
        out[".".join(filter(None, [key, extra]))] = load_file_content(path)
    for key, meta in metadata.items():
        meta = dict(meta) if isinstance(meta, Mapping) else meta
        if isinstance(meta, dict) and "columns" in meta and key in out:
            data = out.pop(key)
            out.update({name: data[:, i] for i, name in enumerate(meta.pop("columns"))})
        if meta:
            out[f"{key}metadata"] = meta
    table_key = next((k for k in out if re.match(r"^table([_.]|$)", k)), None)
    if table_key is not None and isinstance(out[table_key], pd.DataFrame):
        table = out.pop(table_key)
        suffix = table_key[len("table") :]
        columns = {
            c: (c[:-2] + suffix + c[-2:] if re.match(r".+?_[01]$", c) else c + suffix)
            for c in table.columns
        }
        data = {columns[c]: table[c].to_numpy() for c in table.columns}
        for first in sorted(k for k in data if re.match(r".+?_0$", k)):
            second = first[:-1] + "1"
            if second in data:
                data[first[:-2]] = np.c_[data.pop(first), data.pop(second)]
        out.update(data)
    _expand_timestamps(out)
    return out


def _expand_timestamps(out: AlfBunch) -> None:
    """Interpolate (2, 2) timestamp arrays, ALF's compressed form, to one time per sample."""
    others = [
        v.shape[0]
        for k, v in out.items()
        if "timestamps" not in k and isinstance(v, np.ndarray) and v.ndim
    ]
    if not others or len(set(others)) != 1:
        return
    for key in [k for k in out if "timestamps" in k]:
        ts = out[key]
        if isinstance(ts, np.ndarray) and ts.shape == (2, 2) and others[0] != 2:
            out[key] = np.interp(np.arange(others[0]), ts[:, 0], ts[:, 1])
