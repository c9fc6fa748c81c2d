"""The table source: sessions and datasets from ONE cache tables, files from the folder beside them.

``TableSource(cache_dir)`` reads ``sessions.pqt`` and ``datasets.pqt`` in ``cache_dir`` (or takes
any ``CacheTables``) and finds each dataset's file at ``cache_dir/<lab>/Subjects/<subject>/<date>/
<NNN>/<rel_path>`` (no ``<lab>/Subjects`` when the lab is empty), where both ONE-api and one-flows
keep them. It only reads: tables and files are never modified.

Search semantics are ONE-api's local ones: subject, lab, projects and task protocol are regular
expressions found anywhere in the field (plain substrings with ``wildcards=False``), a list means
any of them; ``datasets`` are regular expressions that must each fully match the file name of an
existing dataset of the session, ``dataset_types`` ``object.attribute`` names (with or without
the files' namespace: ``_spikeglx_sync.times`` or ``sync.times``) that must all be present. The
tables hold no users: a search or listing of users raises `NotInSource`, rather than answer
empty.
"""

from __future__ import annotations

import os
import re
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from one_flows.alf import get_session_path, session_path_parts
from one_flows.cache import QC, QC_LEVELS, CacheTables, load_tables
from one_flows.hashing import md5

from .errors import ALFMultipleObjectsFound, DatasetHashMismatch, NotInSource
from .source import Source, dataset_rows, dataset_type, is_of_type

__all__ = ["TableSource", "qc_passes"]


def _listify(value: str | Iterable[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _listify_any(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple, set, np.ndarray)) else [value]


def qc_passes(codes: np.ndarray, qc: QC | int | str, ignore_qc_not_set: bool) -> np.ndarray:
    """Mask of QC codes (positions in QC_LEVELS, -1 if missing) at or below ``qc``."""
    level = QC_LEVELS.index(QC.validate(qc).name)
    mask = (codes >= 0) & (codes <= level)
    if ignore_qc_not_set:
        mask &= codes != QC_LEVELS.index(QC.NOT_SET.name)
    return mask


def category_mask(column: pd.Series, keep: Callable[[str], bool]) -> np.ndarray:
    """Evaluate ``keep`` once per category of a categorical column; return the row mask."""
    ok = np.fromiter(map(keep, column.cat.categories), dtype=bool, count=len(column.cat.categories))
    codes = column.cat.codes.to_numpy()
    return ok[codes] if len(ok) else np.zeros(len(codes), dtype=bool)


def validate_date_range(date_range: Any) -> tuple[pd.Timestamp, pd.Timestamp]:
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


class TableSource(Source):
    """Sessions and datasets of ONE cache tables, files under ``cache_dir``.

    ``tables_dir`` is where the tables are, when not in ``cache_dir`` (ONE-api's
    ``tables_dir``); ``tables`` replaces them (another source may supply them). With
    ``wildcards`` (default) search patterns are regular expressions, otherwise substrings.
    """

    mode = "local"
    search_terms = (
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
    aliases: Mapping[str, str] = {
        "lab": "laboratory",
        "dataset": "datasets",
        "dataset_type": "dataset_types",
        "date": "date_range",
    }
    refused_terms = ("users", "location")

    def __init__(
        self,
        cache_dir: str | os.PathLike,
        *,
        tables: CacheTables | None = None,
        wildcards: bool = True,
        tables_dir: str | os.PathLike | None = None,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.tables_dir = self.cache_dir if tables_dir is None else Path(tables_dir)
        self.where = f"the cache tables in {self.tables_dir}"
        self.wildcards = wildcards
        self._given = tables
        self._loaded = False

    def __repr__(self) -> str:
        return f"TableSource({str(self.cache_dir)!r}, {len(self._table()[0])} sessions)"

    def reload(self) -> None:
        """Read the tables of ``tables_dir`` again at the next query (a writer changed them)."""
        self._loaded = False

    def has_tables(self) -> bool:
        """Whether there are tables to query: given, or a sessions table in ``tables_dir``."""
        return self._given is not None or (self.tables_dir / "sessions.pqt").is_file()

    def _table(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        if not self._loaded:
            tables = self._given
            if tables is None:
                tables = load_tables(self.tables_dir, datasets_index=False)
            self._set_tables(tables)
            self._loaded = True
        return self._sessions, self._datasets

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
        self._datasets = dataset_rows(tables.datasets)
        self._qc_codes = self._datasets["qc"].cat.codes.to_numpy()
        self._rows_of = _rows_by_session(self._datasets["eid"])
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

    # -- sessions ---------------------------------------------------------------------------

    def search(self, terms: dict[str, Any], details: bool) -> tuple[list[str], list[dict] | None]:
        sessions, _ = self._table()
        refused = [t for t in terms if t in self.refused_terms]
        if refused:
            raise NotInSource(
                f"The cache tables in {self.tables_dir} hold no {', '.join(refused)}: search an "
                "Alyx database for these (One(base_url=...))"
            )
        mask = np.ones(len(sessions), dtype=bool)
        for key in ("subject", "laboratory", "projects", "task_protocol"):
            if key in terms:
                codes, values = self._session_text["lab" if key == "laboratory" else key]
                query = "|".join(_listify(terms[key]))
                if self.wildcards:
                    regex = re.compile(query)
                    found = [regex.search(v) is not None for v in values]
                else:
                    found = [query in v for v in values]
                mask &= np.array(found, dtype=bool)[codes]
        dates = self._session_dates
        if "date_range" in terms:
            start, end = validate_date_range(terms["date_range"])
            mask &= (dates >= start.to_datetime64()) & (dates <= end.to_datetime64())
        if "number" in terms:
            numbers = [int(n) for n in _listify_any(terms["number"])]
            mask &= np.isin(self._session_numbers, numbers)
        dataset_terms = {"datasets", "dataset_types", "dataset_qc_lte"} & terms.keys()
        if dataset_terms and mask.any():
            mask &= sessions.index.isin(list(self._sessions_with(terms)))
        rows = np.flatnonzero(mask)
        subjects = self._session_text["subject"][0]
        # Newest first; a missing date (NaT, the smallest int64) comes last.
        keys = (self._session_numbers[rows], subjects[rows], dates[rows].view(np.int64))
        found_sessions = sessions.iloc[rows[np.lexsort(keys)[::-1]]]
        eids = found_sessions.index.tolist()
        if not details:
            return eids, None
        return eids, found_sessions.reset_index().to_dict("records")

    def _sessions_with(self, terms: dict[str, Any]) -> set[str]:
        """Sessions having all the datasets / dataset types asked for, at the QC asked for."""
        d = self._datasets
        level = terms.get("dataset_qc_lte", QC.FAIL)
        usable = np.array(d["exists"], dtype=bool) & qc_passes(self._qc_codes, level, False)
        masks = []
        for pattern in _listify(terms.get("datasets", [])):
            regex = re.compile(pattern)
            masks.append(category_mask(d["name"], lambda n, r=regex: r.fullmatch(n) is not None))
        for dtype in _listify(terms.get("dataset_types", [])):
            masks.append(category_mask(d["name"], lambda n, t=dtype: is_of_type(n, t)))
        if not masks:
            masks.append(np.ones(len(d), dtype=bool))
        eids: set[str] | None = None
        for mask in masks:
            found = set(d["eid"].to_numpy()[mask & usable])
            eids = found if eids is None else eids & found
        return eids or set()

    def to_eid(self, id: Any) -> str | None:
        sessions, _ = self._table()
        if isinstance(id, uuid.UUID):
            return str(id) if str(id) in sessions.index else None
        if isinstance(id, str) and id in sessions.index:
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

    def session_path(self, eid: str) -> Path | None:
        sessions, _ = self._table()
        if eid not in sessions.index:
            return None
        rec = sessions.loc[eid]
        lab = rec["lab"] if isinstance(rec["lab"], str) else ""
        parts = [lab, "Subjects"] if lab else []
        return self.cache_dir.joinpath(
            *parts, rec["subject"], str(rec["date"]), f"{rec['number']:03d}"
        )

    def details(self, eid: str, full: bool) -> pd.Series | pd.DataFrame:
        """The session's table row; with ``full`` its dataset rows joined with it."""
        sessions, _ = self._table()
        record = sessions.loc[eid]
        if not full:
            return record
        rows = self.datasets(eid)
        columns = ["eid", "id", *[c for c in rows.columns if c in _DETAIL_COLUMNS]]
        return rows[columns].set_index(["eid", "id"]).join(sessions.loc[[eid]], on="eid")

    def values(self, keyword: str) -> list[str]:
        sessions, datasets = self._table()
        if keyword == "subjects":
            return sorted(sessions["subject"].unique().tolist())
        if keyword == "labs":
            return sorted(set(sessions["lab"].dropna()) - {""})
        if keyword == "dataset-types":
            return sorted({dataset_type(n) for n in datasets["name"].cat.categories})
        raise NotInSource(
            f"The cache tables in {self.tables_dir} hold no {keyword}: list them from an Alyx "
            "database (One(base_url=...))"
        )

    # -- datasets ---------------------------------------------------------------------------

    def datasets(self, eid: str | None) -> pd.DataFrame:
        _, datasets = self._table()
        if eid is None:
            return datasets
        return datasets.iloc[self._rows_of.get(eid, slice(0, 0))]

    def knows(self, eid: str) -> bool:
        return eid in self._table()[0].index

    def files(self, rows: pd.DataFrame, check_hash: bool) -> list[Path | None]:
        """Local path of each row's file, None when missing; warn on size mismatch.

        Raises DatasetHashMismatch when ``check_hash`` and a file's md5 differs from its row's.
        """
        folders = {eid: self.session_path(eid) for eid in rows["eid"].unique()}
        files: list[Path | None] = []
        for eid, rel_path, size, digest in zip(
            rows["eid"], rows["rel_path"], rows["file_size"], rows["hash"], strict=True
        ):
            folder = folders[eid]
            path = None if folder is None else folder / rel_path
            try:
                actual = path.stat().st_size if path is not None else None
            except FileNotFoundError:
                actual = None
            if actual is None:
                files.append(None)
                continue
            if not pd.isna(size) and int(size) != actual:
                warnings.warn(f"{path} is {actual} bytes; the table says {int(size)}", stacklevel=5)
            if check_hash and isinstance(digest, str) and digest and md5(path) != digest:
                raise DatasetHashMismatch(f"{path} md5 differs from the table's {digest}")
            files.append(path)
        return files


_DETAIL_COLUMNS = ("rel_path", "file_size", "hash", "exists", "qc", "default_revision")
