"""The two tables: their schemas, in pandas and in arrow, and reading and saving them whole."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from one_flows.cache.errors import NotACacheTable
from one_flows.cache.files import DATASETS_FILE, SESSIONS_FILE, write_parquet_atomic
from one_flows.cache.lock import changing

__all__ = [
    "DATASETS_COLUMNS",
    "QC",
    "QC_LEVELS",
    "QC_TYPE",
    "SESSIONS_COLUMNS",
    "CacheTables",
    "load_tables",
    "save_tables",
]


class QC(IntEnum):
    """Dataset QC outcomes with Alyx's numeric values; the tables store their names."""

    NOT_SET = 0
    PASS = 10
    WARNING = 30
    FAIL = 40
    CRITICAL = 50

    @classmethod
    def validate(cls, value: QC | int | str) -> QC:
        """Return the QC member for a member, its numeric value or its (case-insensitive) name."""
        if isinstance(value, QC):
            return value
        if isinstance(value, str):
            if value.isdigit():
                value = int(value)
            elif value.upper() in cls.__members__:
                return cls[value.upper()]
            else:
                raise ValueError(f"{value!r} is not a QC outcome; use one of {QC_LEVELS}")
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a QC outcome; use one of {QC_LEVELS}") from None


QC_LEVELS = tuple(q.name for q in sorted(QC))
QC_TYPE = pd.CategoricalDtype(categories=list(QC_LEVELS), ordered=True)
"""The dtype of the ``qc`` column: QC names ordered from best (NOT_SET) to worst (CRITICAL)."""

SESSIONS_COLUMNS = ("lab", "subject", "date", "number", "task_protocol", "projects")
DATASETS_COLUMNS = ("rel_path", "file_size", "hash", "exists", "qc")


@dataclass
class CacheTables:
    """The two cache tables, indexed as ONE-api indexes them, and their parquet metadata."""

    sessions: pd.DataFrame
    datasets: pd.DataFrame
    metadata: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> CacheTables:
        """Return tables with no rows and the right columns and dtypes."""
        return cls(empty_sessions(), _empty_datasets())


def empty_sessions() -> pd.DataFrame:
    """The sessions table with no rows."""
    frame = pd.DataFrame(
        {
            "id": pd.Series([], dtype="str"),
            "lab": pd.Series([], dtype="str"),
            "subject": pd.Series([], dtype="str"),
            "date": pd.Series([], dtype=object),
            "number": pd.Series([], dtype=np.uint16),
            "task_protocol": pd.Series([], dtype="str"),
            "projects": pd.Series([], dtype="str"),
        }
    )
    return frame.set_index("id")


def _empty_datasets() -> pd.DataFrame:
    empty = np.zeros(0, dtype=np.int64)
    return _datasets_frame([], [], [], empty, [], np.zeros(0, dtype=np.int8)).set_index(
        ["eid", "id"]
    )


def _datasets_frame(
    eids: Sequence[str],
    ids: Sequence[str],
    rel_paths: Sequence[str],
    sizes: np.ndarray,
    hashes: Sequence[str],
    qc_codes: np.ndarray,
) -> pd.DataFrame:
    """The datasets table as a flat frame (eid and id as columns); every file exists."""
    return pd.DataFrame(
        {
            "eid": pd.array(eids, dtype="str"),
            "id": pd.array(ids, dtype="str"),
            "rel_path": pd.array(rel_paths, dtype="str"),
            "file_size": pd.array(sizes, dtype="UInt64"),
            "hash": pd.array(hashes, dtype="str"),
            "exists": np.ones(len(ids), dtype=bool),
            "qc": pd.Categorical.from_codes(qc_codes, dtype=QC_TYPE),
        }
    )


# The datasets table in arrow, as the build and update make it and write it


def qc_codes(qc: pa.ChunkedArray) -> np.ndarray:
    """Positions in QC_LEVELS of a column of QC names (-1 where missing or unknown)."""
    parts = [np.zeros(0, dtype=np.int8)]
    for chunk in qc.chunks:
        encoded = chunk if pa.types.is_dictionary(chunk.type) else chunk.dictionary_encode()
        names = encoded.dictionary.to_pylist()
        # Each dictionary entry's level, and -1 (the last entry) for missing values
        levels = [QC_LEVELS.index(v) if v in QC_LEVELS else -1 for v in names] + [-1]
        indices = pc.fill_null(encoded.indices, len(names)).to_numpy()
        parts.append(np.asarray(levels, dtype=np.int8)[indices])
    return np.concatenate(parts)


def _qc_array(codes: np.ndarray) -> pa.DictionaryArray:
    indices = pa.array(codes, pa.int8(), mask=codes < 0)
    return pa.DictionaryArray.from_arrays(
        indices, pa.array(QC_LEVELS, pa.large_string()), ordered=True
    )


def datasets_table(
    eids: Sequence[str],
    ids: Sequence[str],
    rel_paths: Sequence[str],
    sizes: np.ndarray,
    hashes: np.ndarray,
    qc_codes: np.ndarray,
) -> pa.Table:
    """The datasets table in the arrow schema pandas gives it; every file exists."""
    columns = {
        "rel_path": pa.array(rel_paths, pa.large_string()),
        "file_size": pa.array(sizes, pa.uint64()),
        "hash": pa.array(hashes, pa.large_string()),
        "exists": pa.array(np.ones(len(sizes), dtype=bool)),
        "qc": _qc_array(qc_codes),
        "eid": pa.array(eids, pa.large_string()),
        "id": pa.array(ids, pa.large_string()),
    }
    return pa.table(columns, schema=_datasets_schema())


def conform(table: pa.Table) -> pa.Table:
    """A datasets table as `datasets_table` makes it, in its schema with full QC levels."""
    schema = _datasets_schema()
    columns = [
        _qc_array(qc_codes(table.column(f.name)))
        if f.name == "qc"
        else table.column(f.name).cast(f.type)
        for f in schema
    ]
    return pa.table(columns, schema=schema)


@functools.cache
def _datasets_schema() -> pa.Schema:
    return pa.Schema.from_pandas(_empty_datasets(), preserve_index=True)


# Reading and saving


def save_tables(tables: CacheTables, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write both tables atomically into ``out_dir``; return (sessions path, datasets path).

    The tables are written under `lock_tables`; to change the tables on disk without losing
    another writer's change, read them under that lock too.
    """
    out_dir = Path(out_dir)
    meta = tables.metadata
    with changing(out_dir):
        fn_dsets = write_parquet_atomic(
            tables.datasets, out_dir / DATASETS_FILE, meta.get("datasets", {})
        )
        fn_ses = write_parquet_atomic(
            tables.sessions, out_dir / SESSIONS_FILE, meta.get("sessions", {})
        )
    return fn_ses, fn_dsets


def _read_table(path: Path) -> tuple[pd.DataFrame, list[str], dict]:
    """A table with its ids as str columns, the names of those columns, and its one_metadata."""
    table = pq.ParquetFile(path).read()
    schema_meta = dict(table.schema.metadata or {})
    raw = schema_meta.get(b"one_metadata")
    meta = json.loads(raw) if raw else {}
    if b"pandas" in schema_meta:
        # The index stays columns: a MultiIndex of 500,000 ids takes longer than reading them.
        pandas_meta = json.loads(schema_meta[b"pandas"])
        pandas_meta["index_columns"] = []
        schema_meta[b"pandas"] = json.dumps(pandas_meta).encode()
        table = table.replace_schema_metadata(schema_meta)
    frame = table.to_pandas()
    index = sorted(c for c in frame.columns if c in ("id", "eid"))
    if not index:
        raise NotACacheTable(f"{path} has no 'id' column or index: not a ONE cache table")
    for column in index:
        if not isinstance(frame[column].dtype, pd.StringDtype):
            frame[column] = frame[column].astype("str")
    if "project" in frame.columns and "projects" not in frame.columns:
        frame = frame.rename(columns={"project": "projects"})
    return frame, index, meta


def load_tables(cache_dir: str | os.PathLike, *, datasets_index: bool = True) -> CacheTables:
    """Read ``sessions.pqt`` and ``datasets.pqt`` from ``cache_dir`` (ours or ONE-api's).

    Ids are returned as strings. A missing table is returned empty; a datasets table without a
    ``qc`` column (older ONE versions) gets ``NOT_SET`` everywhere. ``datasets_index=False``
    leaves ``eid`` and ``id`` as columns of the datasets table (much faster on large tables).
    """
    cache_dir = Path(cache_dir)
    tables = CacheTables.empty()
    for name in ("sessions", "datasets"):
        path = cache_dir / f"{name}.pqt"
        if not path.exists():
            continue
        frame, meta = load_table(path, name, index=datasets_index or name == "sessions")
        setattr(tables, name, frame)
        tables.metadata[name] = meta
    return tables


def load_table(path: Path, name: str, index: bool = True) -> tuple[pd.DataFrame, dict]:
    """One table (``name`` is sessions or datasets) with str ids, and its ``one_metadata``."""
    frame, id_columns, meta = _read_table(path)
    if index:
        frame = frame.set_index(id_columns)
    if name == "datasets" and "qc" not in frame.columns:
        frame["qc"] = pd.Categorical.from_codes(np.zeros(len(frame), dtype=np.int8), QC_TYPE)
    elif name == "datasets":
        # Parquet keeps only the categories in use: an empty table would come back with none.
        frame["qc"] = frame["qc"].astype(QC_TYPE)
    return frame, meta
