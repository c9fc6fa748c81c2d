"""Appending rows to parquet files: the result is a parquet file any reader reads as the old rows
followed by the new ones, and the footer codec loses nothing."""

import datetime
import io

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from one_flows._parquet_append import ParquetAppendError, _encode_struct, _Reader, append, footer


def _table(start: int, n: int) -> pa.Table:
    """A table of many column kinds, ``n`` rows from ``start``; nulls and repeats included."""
    rows = range(start, start + n)
    return pa.table(
        {
            "i": pa.array(rows, pa.int64()),
            "u16": pa.array([r % 7 for r in rows], pa.uint16()),
            "f": pa.array([None if r % 5 == 0 else r / 3 for r in rows], pa.float64()),
            "s": pa.array([f"row-{r % 11}" for r in rows], pa.large_string()),
            "unique": pa.array([f"{r:032x}" for r in rows], pa.large_string()),
            "b": pa.array([r % 2 == 0 for r in rows], pa.bool_()),
            "d": pa.array([datetime.date(2020, 1, 1 + r % 28) for r in rows], pa.date32()),
            "cat": pa.DictionaryArray.from_arrays(
                pa.array([r % 3 if r % 4 else None for r in rows], pa.int8()),
                pa.array(["A", "B", "C"], pa.large_string()),
                ordered=True,
            ),
            "lst": pa.array([[r, r + 1] if r % 3 else [] for r in rows], pa.list_(pa.int32())),
        }
    )


def _bytes(table: pa.Table, **options) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, **options)
    return sink.getvalue()


def _written_at_once(tables: list[pa.Table]) -> pa.Table:
    """The tables concatenated, as a reader gets them back from one file (the round trip
    changes some types, e.g. dictionaries of large strings come back as of strings)."""
    return pq.read_table(io.BytesIO(_bytes(pa.concat_tables(tables))))


def _append(old: bytes, new: bytes) -> bytes:
    out = io.BytesIO()
    append(io.BytesIO(old), new, out)
    return out.getvalue()


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"compression": "none", "use_dictionary": False},
        {"compression": "zstd", "write_statistics": False},
        {"write_page_index": True, "row_group_size": 7},
        {"use_dictionary": ["s", "cat"], "data_page_size": 64},
    ],
)
def test_footers_decode_and_encode_to_the_same_bytes(options):
    footer_bytes, _ = footer(io.BytesIO(_bytes(_table(0, 50), **options)))
    assert _encode_struct(_Reader(footer_bytes).struct()) == footer_bytes


@pytest.mark.parametrize(
    "options", [{}, {"write_page_index": True, "row_group_size": 7}, {"compression": "none"}]
)
def test_appended_rows_follow_the_old_ones_for_pyarrow_and_pandas(options):
    first, second, third = _table(0, 40), _table(40, 13), _table(53, 1)
    data = _bytes(first, **options)
    for more in (second, third):
        data = _append(data, _bytes(more, **options))
    expected = _written_at_once([first, second, third])
    read = pq.read_table(io.BytesIO(data))
    assert read.equals(expected)
    meta = pq.read_metadata(io.BytesIO(data))
    assert meta.num_rows == 54
    groups = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sum(groups) == 54 and groups[-1] == 1
    pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(data)), expected.to_pandas())
    # Column by column and row group by row group, as readers that skip do.
    last = pq.ParquetFile(io.BytesIO(data)).read_row_group(meta.num_row_groups - 1)
    assert last.equals(_written_at_once([third]))
    assert (
        pq.read_table(io.BytesIO(data), columns=["unique"])
        .column(0)
        .equals(expected.column("unique"))
    )


def test_the_new_files_metadata_replaces_the_old():
    old = _table(0, 5).replace_schema_metadata({"version": "1"})
    new = _table(5, 5).replace_schema_metadata({"version": "2"})
    read = pq.read_table(io.BytesIO(_append(_bytes(old), _bytes(new))))
    assert read.schema.metadata[b"version"] == b"2"


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=30), min_size=1, max_size=5),
    row_group_size=st.integers(min_value=1, max_value=40),
)
def test_any_sequence_of_appends_reads_back_as_the_concatenation(sizes, row_group_size):
    tables, start = [], 0
    for n in sizes:
        tables.append(_table(start, n))
        start += n
    data = _bytes(_table(0, 0).slice(0, 0), row_group_size=row_group_size)
    for table in tables:
        data = _append(data, _bytes(table, row_group_size=row_group_size))
    assert pq.read_table(io.BytesIO(data)).equals(_written_at_once(tables))


def test_another_schema_is_refused():
    other = _table(0, 3).drop_columns(["lst"])
    with pytest.raises(ParquetAppendError, match="another parquet schema"):
        _append(_bytes(_table(0, 3)), _bytes(other))
    renamed = _table(0, 3).rename_columns([*_table(0, 3).column_names[:-1], "other"])
    with pytest.raises(ParquetAppendError, match="another parquet schema"):
        _append(_bytes(_table(0, 3)), _bytes(renamed))


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "too short"),
        (b"PAR1" + b"\0" * 20, "no PAR1 at its end"),
        (b"PAR1" + b"\0" * 4 + b"\xff\xff\x00\x00PAR1", "bad footer length"),
    ],
)
def test_files_that_are_not_parquet_are_refused(data, message):
    with pytest.raises(ParquetAppendError, match=message):
        _append(data, _bytes(_table(0, 1)))
    with pytest.raises(ParquetAppendError, match=message):
        _append(_bytes(_table(0, 1)), data)
