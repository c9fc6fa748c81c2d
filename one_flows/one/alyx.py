"""The Alyx source: sessions and datasets from an Alyx database, files from its data repositories.

``AlyxSource(alyx, cache_dir)`` answers the query API with REST requests, sent as ONE-api 3's
remote mode sends them: ``search`` is one ``GET /sessions`` with the terms as Alyx's session
filters (never a download of every session); a session's datasets, its full details and its
loads share one ``GET /sessions/<id>`` (its ``data_dataset_session_related``, the datasets with
an existing file record), kept for ``rest_cache_seconds``. Files are downloaded from each file
record's ``data_url`` (the repository's URL, dataset UUID in the name) by a `Downloader` into
``cache_dir/<lab>/Subjects/<subject>/<date>/<NNN>/<rel_path>``, ONE-api's layout; a file already
there with the registered size is not fetched again. After a download the session and its
datasets are merged into the ONE cache tables of ``cache_dir``, so that our local `One` and
ONE-api's local mode find them there without a network.

How Alyx filters (measured on Alyx 3.6, see ``tests/contract``): ``subject`` and ``lab`` match
whole names, case aside; ``projects`` and ``task_protocol`` substrings; ``users``,
``dataset_types`` and ``datasets`` (exact file names, with a file on the server) must all be
there; lists are sent comma-joined. A dataset type that is not one of the database's is sent as
the database's type it names with or without a namespace (``sync.times`` as
``_spikeglx_sync.times``; `one_flows.one.source.same_type`).
"""

from __future__ import annotations

import datetime
import logging
import os
import re
import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
import pandas as pd

from one_flows.alf import get_session_path, session_path_parts
from one_flows.alyx import AlyxClient, AlyxNotFound
from one_flows.cache import CacheTables, load_tables, lock_tables, save_tables
from one_flows.cache.files import table_metadata
from one_flows.hashing import md5

from .download import Downloader, FileTransfer
from .errors import ALFMultipleObjectsFound, ALFObjectNotFound
from .source import Source, dataset_rows, same_type
from .tables import validate_date_range

__all__ = ["SEARCH_TERMS", "AlyxSource"]

logger = logging.getLogger("one_flows.one")

SEARCH_TERMS = (
    "atlas_acronym",
    "atlas_id",
    "atlas_name",
    "auto_datetime",
    "dataset_qc_lte",
    "dataset_types",
    "datasets",
    "date_range",
    "django",
    "end_time",
    "extended_qc",
    "histology",
    "id",
    "json",
    "laboratory",
    "location",
    "n_correct_trials",
    "n_trials",
    "name",
    "narrative",
    "nickname",
    "number",
    "parent_session",
    "performance_gte",
    "performance_lte",
    "procedures",
    "project",
    "projects",
    "qc",
    "start_time",
    "subject",
    "tag",
    "task_protocol",
    "type",
    "users",
)
"""ONE-api's remote search terms: Alyx 3.6's ``/sessions`` filters, ``lab`` as ``laboratory``."""

_VALUES = {
    "dataset-types": ("/dataset-types", "name"),
    "users": ("/users", "username"),
    "subjects": ("/subjects", "nickname"),
    "labs": ("/labs", "name"),
}
_SESSION_COLUMNS = ("lab", "subject", "date", "number", "task_protocol", "projects")


class AlyxSource(Source):
    """Sessions and datasets of an Alyx database; files downloaded into ``cache_dir``.

    Parameters
    ----------
    alyx : AlyxClient
        The client of the database.
    cache_dir : str or os.PathLike
        The local cache: downloaded files and the cache tables describing them.
    downloader : Downloader or None
        Fetches the files (a default one without auth when None).
    rest_cache_seconds : float
        How long a session's details are reused (0: ask every time).
    on_saved : Callable[[], None] or None
        Called after the cache tables of ``cache_dir`` were written.
    """

    mode = "remote"
    search_terms = SEARCH_TERMS
    aliases: Mapping[str, str] = {
        "lab": "laboratory",
        "dataset": "datasets",
        "dataset_type": "dataset_types",
        "date": "date_range",
    }

    def __init__(
        self,
        alyx: AlyxClient,
        cache_dir: str | os.PathLike,
        *,
        downloader: Downloader | None = None,
        rest_cache_seconds: float = 300.0,
        on_saved: Callable[[], None] | None = None,
    ) -> None:
        self.alyx = alyx
        self.cache_dir = Path(cache_dir)
        self.where = f"the database {alyx.base_url}"
        self.downloader = downloader or Downloader()
        self.rest_cache_seconds = rest_cache_seconds
        self._on_saved = on_saved
        self._records: dict[str, dict[str, Any]] = {}
        self._details: dict[str, tuple[float, dict[str, Any]]] = {}
        self._rows: dict[str, pd.DataFrame] = {}
        self._type_names: list[str] | None = None

    def __repr__(self) -> str:
        return f"AlyxSource({self.alyx.base_url!r}, {str(self.cache_dir)!r})"

    # -- sessions ---------------------------------------------------------------------------

    def search(self, terms: dict[str, Any], details: bool) -> tuple[list[str], list[dict] | None]:
        params: dict[str, Any] = {}
        for key, value in sorted(terms.items()):
            if key == "date_range":
                start, end = validate_date_range(value)
                params[key] = [start.date().isoformat(), end.date().isoformat()]
            elif key == "laboratory":
                params["lab"] = value
            elif key == "dataset_qc_lte":
                params[key] = value.name if hasattr(value, "name") else value
            elif key == "dataset_types":
                names = [value] if isinstance(value, str) else list(value)
                params[key] = [self._type_name(name) for name in names]
            else:
                params[key] = value
        records = self.alyx.list_all("/sessions", params)
        for record in records:
            record["date"] = datetime.date.fromisoformat(record["start_time"][:10])
            self._records[record["id"]] = record
        eids = [r["id"] for r in records]
        return eids, (records if details else None)

    def _type_name(self, asked: str) -> str:
        """The database's name of a dataset type asked with or without a namespace (see
        `same_type`); the database's types are read at the first search by type."""
        if self._type_names is None:
            self._type_names = self.values("dataset-types")
        if asked in self._type_names:
            return asked
        found = [name for name in self._type_names if same_type(asked, name)]
        if len(found) > 1:
            raise ALFMultipleObjectsFound(
                f"Dataset type {asked!r} names several types of {self.where}: {found}"
            )
        return found[0] if found else asked

    def to_eid(self, id: Any) -> str | None:
        if isinstance(id, uuid.UUID):
            return str(id)
        if isinstance(id, str):
            try:
                return str(uuid.UUID(id[-36:]))  # an id, or an Alyx URL ending with one
            except ValueError:
                pass
        if isinstance(id, Mapping):
            key = (id.get("lab") or "", id["subject"], str(id["date"]), int(id["number"]))
        elif isinstance(id, (str, os.PathLike)) and get_session_path(id) is not None:
            lab, subject, date, number = session_path_parts(get_session_path(id), assert_valid=True)
            key = (lab or "", subject, date, int(number))
        else:
            raise ValueError(f"Cannot read a session id or session path from {id!r}")
        lab, subject, date, number = key
        terms = {"subject": subject, "date_range": date, "number": number}
        if lab:
            terms["laboratory"] = lab
        eids, _ = self.search(terms, False)
        if len(eids) > 1:
            raise ALFMultipleObjectsFound(
                f"Session {subject}/{date}/{number:03d} exists in several labs; give "
                f"lab/Subjects/... : {eids}"
            )
        return eids[0] if eids else None

    def _record(self, eid: str) -> dict[str, Any] | None:
        """The session's short record (from an earlier answer, else ``GET /sessions?id=``)."""
        if eid not in self._records:
            found = self.alyx.list_all("/sessions", {"id": eid})
            if not found:
                return None
            found[0]["date"] = datetime.date.fromisoformat(found[0]["start_time"][:10])
            self._records[eid] = found[0]
        return self._records[eid]

    def session_path(self, eid: str) -> Path | None:
        record = self._record(eid)
        if record is None:
            return None
        lab = record.get("lab") or ""
        parts = [lab, "Subjects"] if lab else []
        return self.cache_dir.joinpath(
            *parts, record["subject"], record["start_time"][:10], f"{record['number'] or 0:03d}"
        )

    def knows(self, eid: str) -> bool:
        return True

    def details(self, eid: str, full: bool) -> dict[str, Any]:
        """ONE-api's remote answer: the full session record with ``full``, else its summary
        (``subject, start_time, number, lab, projects, url, task_protocol, local_path, date``)."""
        record = self._detail(eid) if full else self._record(eid)
        if record is None:
            raise ALFObjectNotFound(f"Session {eid} is not in {self.where}")
        if full:
            return dict(record)
        keys = ("subject", "start_time", "number", "lab", "projects", "url", "task_protocol")
        summary = {k: record[k] for k in keys if k in record}
        summary["projects"] = ",".join(record.get("projects") or [])
        summary["date"] = record["date"]
        summary["local_path"] = self.session_path(eid)
        return summary

    def _detail(self, eid: str) -> dict[str, Any] | None:
        """``GET /sessions/<id>`` (None for an unknown session), reused for
        ``rest_cache_seconds``."""
        now = time.monotonic()
        cached = self._details.get(eid)
        if cached is None or now - cached[0] > self.rest_cache_seconds:
            try:
                detail = self.alyx.get(f"/sessions/{eid}")
            except AlyxNotFound:
                return None
            self._details[eid] = (now, detail)
            self._rows.pop(eid, None)
            self._records[eid] = {
                **{k: detail.get(k) for k in ("id", "subject", "start_time", "number", "lab")},
                **{k: detail.get(k) for k in ("projects", "url", "task_protocol")},
                "date": datetime.date.fromisoformat(detail["start_time"][:10]),
            }
            cached = self._details[eid]
        return cached[1]

    def values(self, keyword: str) -> list[str]:
        path, key = _VALUES[keyword]
        return sorted(str(r[key]) for r in self.alyx.list_all(path))

    # -- datasets ---------------------------------------------------------------------------

    def datasets(self, eid: str | None) -> pd.DataFrame:
        if eid is None:
            warnings.warn(
                f"An Alyx lists datasets by session: give a session to list from {self.where}",
                stacklevel=4,
            )
            return dataset_rows(_datasets_frame(eid or "", []))
        detail = self._detail(eid)
        if detail is None:
            return dataset_rows(_datasets_frame(eid, []))
        if eid not in self._rows:
            self._rows[eid] = dataset_rows(
                _datasets_frame(eid, detail.get("data_dataset_session_related") or [])
            )
        return self._rows[eid]

    def files(self, rows: pd.DataFrame, check_hash: bool) -> list[Path | None]:
        """Each row's file in the cache, downloaded from its ``data_url`` when missing or when
        its size (with ``check_hash``, its md5) is not the registered one."""
        folders = {eid: self.session_path(eid) for eid in rows["eid"].unique()}
        if "data_url" in rows.columns:
            urls = rows["data_url"].tolist()
        else:  # rows of another source (the cache tables): the URLs are in the session's rows
            known = {}
            for eid in folders:
                theirs = self.datasets(eid)
                known.update(zip(theirs["id"], theirs["data_url"], strict=True))
            urls = [known.get(i) for i in rows["id"]]
        paths: list[Path | None] = []
        transfers = []
        for eid, rel_path, size, digest, url in zip(
            rows["eid"], rows["rel_path"], rows["file_size"], rows["hash"], urls, strict=True
        ):
            folder = folders[eid]
            if folder is None or not isinstance(url, str):
                paths.append(None)
                continue
            path = folder / rel_path
            size = None if pd.isna(size) else int(size)
            digest = digest if isinstance(digest, str) and digest else None
            paths.append(path)
            if _cached(path, size, digest if check_hash else None):
                continue
            path.unlink(missing_ok=True)
            transfers.append(FileTransfer(url, path, size, digest))
        if transfers:
            self.downloader.download(transfers)
            self._save(sorted({str(e) for e in rows["eid"]}))
        return paths

    # -- the local cache tables -------------------------------------------------------------

    def _save(self, eids: list[str]) -> None:
        """Merge these sessions and all their datasets into the cache tables of ``cache_dir``."""
        sessions = pd.DataFrame(
            [self._session_row(e) for e in eids], columns=["id", *_SESSION_COLUMNS]
        ).set_index("id")
        sessions["number"] = sessions["number"].astype(np.uint16)
        datasets = pd.concat([self.datasets(e) for e in eids])
        columns = ["eid", "id", "rel_path", "file_size", "hash", "exists", "qc", "default_revision"]
        datasets = datasets[columns].set_index(["eid", "id"])
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with lock_tables(self.cache_dir):
            tables = load_tables(self.cache_dir)
            old_sessions = tables.sessions.drop(index=eids, errors="ignore")
            old_datasets = tables.datasets[~tables.datasets.index.isin(eids, level="eid")]
            merged = CacheTables(
                pd.concat([old_sessions, sessions]),
                pd.concat([old_datasets, datasets]) if len(old_datasets) else datasets,
                {name: table_metadata(self.alyx.base_url) for name in ("sessions", "datasets")},
            )
            save_tables(merged, self.cache_dir)
        if self._on_saved is not None:
            self._on_saved()

    def _session_row(self, eid: str) -> dict[str, Any]:
        record = self._record(eid) or {}
        return {
            "id": eid,
            "lab": record.get("lab") or "",
            "subject": record.get("subject"),
            "date": record.get("date"),
            "number": record.get("number") or 0,
            "task_protocol": record.get("task_protocol") or "",
            "projects": ",".join(record.get("projects") or []),
        }


def _cached(path: Path, size: int | None, digest: str | None) -> bool:
    """Whether the file is there with the registered size (and md5, when given)."""
    try:
        actual = path.stat().st_size
    except FileNotFoundError:
        return False
    if size is not None and actual != size:
        return False
    return digest is None or md5(path) == digest


_IN_SESSION = re.compile(
    r"/[^/]+/\d{4}-\d{2}-\d{2}/\d{1,3}/(?P<rel>.+?)"
    r"(?:\.[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?"
    r"(?P<ext>\.[^./]+)?$"
)


def _rel_path(data_url: str | None, collection: str, name: str) -> str:
    """A dataset's path in its session, read from its download URL (the part after
    ``subject/date/number``, without the UUID) as ONE-api reads it."""
    if data_url:
        found = _IN_SESSION.search(unquote(urlsplit(data_url, allow_fragments=False).path))
        if found:
            return found["rel"] + (found["ext"] or "")
    return f"{collection}/{name}" if collection else name


def _datasets_frame(eid: str, related: list[dict[str, Any]]) -> pd.DataFrame:
    """ONE's datasets-table rows (plus ``data_url``, ``dataset_type``) of a session's
    ``data_dataset_session_related``."""
    return pd.DataFrame(
        {
            "eid": pd.array([eid] * len(related), dtype="str"),
            "id": pd.array([d["id"] for d in related], dtype="str"),
            "rel_path": [_rel_path(d.get("data_url"), d["collection"], d["name"]) for d in related],
            "file_size": pd.array([d.get("file_size") for d in related], dtype="UInt64"),
            "hash": [d.get("hash") or "" for d in related],
            "exists": np.ones(len(related), dtype=bool),
            "qc": [d.get("qc") or "NOT_SET" for d in related],
            "default_revision": np.array(
                [str(d.get("default_revision")) == "True" for d in related], dtype=bool
            ),
            "data_url": [d.get("data_url") for d in related],
            "dataset_type": [d.get("dataset_type") for d in related],
        }
    )
