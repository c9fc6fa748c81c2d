"""Append rows to a parquet file without decoding or re-encoding the rows already in it.

A parquet file is the magic ``PAR1``, its row groups, its footer, the footer's length (4 bytes,
little-endian) and ``PAR1`` again. The footer is a ``FileMetaData`` structure in the Thrift
compact protocol: the schema, the total number of rows, key-value metadata and, for each row
group, where each of its column chunks starts in the file::

    FileMetaData   1: version  2: schema  3: num_rows  4: row_groups  5: key_value_metadata ...
    RowGroup       1: columns  5: file_offset  7: ordinal ...
    ColumnChunk    2: file_offset  3: meta_data  4: offset_index_offset  6: column_index_offset
    ColumnMetaData 9: data_page_offset  10: index_page_offset  11: dictionary_page_offset
                   14: bloom_filter_offset

`append` writes the old file's bytes up to its footer, then the row groups of a parquet file of
the new rows (written by pyarrow in the same schema), then a footer that lists the old row groups
and the new ones, the new ones' offsets moved to where their bytes now are. Everything else in the
footer (schema, key-value metadata, writer) is the new file's. The result is an ordinary parquet
file: any reader sees the old rows followed by the new ones.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import BinaryIO

from one_flows.errors import OneFlowsError

__all__ = ["ParquetAppendError", "append", "footer"]

MAGIC = b"PAR1"

# Thrift compact protocol type codes
_STOP, _TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = range(
    13
)


class ParquetAppendError(OneFlowsError, ValueError):
    """The rows cannot be appended: not a plain parquet file, or another schema."""


# ------------------------------------------------------------------------------------------------
# Thrift compact protocol: a generic, lossless decoder and encoder
# ------------------------------------------------------------------------------------------------


@dataclass
class _Field:
    id: int
    type: int
    value: object  # int, float, bytes, bool, _Struct, _List, or a map's (types, pairs)


@dataclass
class _Struct:
    fields: list[_Field]

    def get(self, field_id: int) -> _Field | None:
        return next((f for f in self.fields if f.id == field_id), None)


@dataclass
class _List:
    element_type: int
    items: list[object]
    set: bool = False


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        value = self.data[self.pos]
        self.pos += 1
        return value

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def bytes_(self, n: int) -> bytes:
        value = self.data[self.pos : self.pos + n]
        if len(value) != n:
            raise ParquetAppendError("truncated parquet footer")
        self.pos += n
        return value

    def value(self, kind: int) -> object:
        if kind in (_TRUE, _FALSE):  # inside a list: one byte, 1 for true
            return self.byte() == _TRUE
        if kind == _BYTE:
            return struct.unpack("b", self.bytes_(1))[0]
        if kind in (_I16, _I32, _I64):
            return self.zigzag()
        if kind == _DOUBLE:
            return struct.unpack("<d", self.bytes_(8))[0]
        if kind == _BINARY:
            return self.bytes_(self.varint())
        if kind in (_LIST, _SET):
            header = self.byte()
            size, element = header >> 4, header & 0x0F
            if size == 15:
                size = self.varint()
            return _List(element, [self.value(element) for _ in range(size)], kind == _SET)
        if kind == _MAP:
            size = self.varint()
            types = self.byte() if size else 0
            pairs = [(self.value(types >> 4), self.value(types & 0x0F)) for _ in range(size)]
            return (types, pairs)
        if kind == _STRUCT:
            return self.struct()
        raise ParquetAppendError(f"unknown Thrift type {kind} in the parquet footer")

    def struct(self) -> _Struct:
        fields: list[_Field] = []
        last = 0
        while True:
            header = self.byte()
            kind = header & 0x0F
            if kind == _STOP:
                return _Struct(fields)
            delta = header >> 4
            field_id = last + delta if delta else self.zigzag()
            if kind in (_TRUE, _FALSE):
                value: object = kind == _TRUE
            else:
                value = self.value(kind)
            fields.append(_Field(field_id, kind, value))
            last = field_id


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        if n < 0x80:
            out.append(n)
            return bytes(out)
        out.append((n & 0x7F) | 0x80)
        n >>= 7


def _zigzag(n: int) -> bytes:
    return _varint((n << 1) ^ (n >> 63))


def _encode_value(kind: int, value: object) -> bytes:
    if kind in (_TRUE, _FALSE):
        return bytes([_TRUE if value else _FALSE])
    if kind == _BYTE:
        return struct.pack("b", value)
    if kind in (_I16, _I32, _I64):
        return _zigzag(int(value))  # type: ignore[call-overload]
    if kind == _DOUBLE:
        return struct.pack("<d", value)
    if kind == _BINARY:
        assert isinstance(value, bytes)
        return _varint(len(value)) + value
    if kind in (_LIST, _SET):
        assert isinstance(value, _List)
        size = len(value.items)
        header = (
            bytes([(size << 4) | value.element_type])
            if size < 15
            else (bytes([0xF0 | value.element_type]) + _varint(size))
        )
        return header + b"".join(_encode_value(value.element_type, v) for v in value.items)
    if kind == _MAP:
        types, pairs = value  # type: ignore[misc]
        if not pairs:
            return _varint(0)
        body = b"".join(
            _encode_value(types >> 4, k) + _encode_value(types & 0x0F, v) for k, v in pairs
        )
        return _varint(len(pairs)) + bytes([types]) + body
    if kind == _STRUCT:
        assert isinstance(value, _Struct)
        return _encode_struct(value)
    raise ParquetAppendError(f"unknown Thrift type {kind}")


def _encode_struct(s: _Struct) -> bytes:
    out = bytearray()
    last = 0
    for f in s.fields:
        kind = (_TRUE if f.value else _FALSE) if f.type in (_TRUE, _FALSE) else f.type
        delta = f.id - last
        if 0 < delta <= 15:
            out.append((delta << 4) | kind)
        else:
            out.append(kind)
            out += _zigzag(f.id)
        if kind not in (_TRUE, _FALSE):
            out += _encode_value(kind, f.value)
        last = f.id
    out.append(_STOP)
    return bytes(out)


# ------------------------------------------------------------------------------------------------
# Parquet files
# ------------------------------------------------------------------------------------------------

_FILE_SCHEMA, _FILE_NUM_ROWS, _FILE_ROW_GROUPS, _FILE_ENCRYPTION = 2, 3, 4, 8
_GROUP_COLUMNS, _GROUP_FILE_OFFSET, _GROUP_ORDINAL = 1, 5, 7
_CHUNK_FILE_PATH, _CHUNK_FILE_OFFSET, _CHUNK_META = 1, 2, 3
_CHUNK_OFFSETS = (4, 6)  # offset index, column index
_META_OFFSETS = (9, 10, 11, 14)  # data page, index page, dictionary page, bloom filter


def footer(f: BinaryIO) -> tuple[bytes, int]:
    """The footer bytes of the parquet file open in ``f``, and where they start."""
    f.seek(0, 2)
    size = f.tell()
    if size < 12:
        raise ParquetAppendError("not a parquet file: too short")
    f.seek(size - 8)
    tail = f.read(8)
    if tail[4:] != MAGIC:
        raise ParquetAppendError("not a plain parquet file (no PAR1 at its end)")
    length = struct.unpack("<I", tail[:4])[0]
    start = size - 8 - length
    if start < 4:
        raise ParquetAppendError("not a parquet file: bad footer length")
    f.seek(start)
    return f.read(length), start


def _shift(fields: _Struct, ids: tuple[int, ...], delta: int) -> None:
    for f in fields.fields:
        if f.id in ids and isinstance(f.value, int) and f.value > 0:
            f.value += delta


def _moved_row_group(group: _Struct, delta: int, ordinal: int) -> _Struct:
    _shift(group, (_GROUP_FILE_OFFSET,), delta)
    columns = group.get(_GROUP_COLUMNS)
    assert columns is not None and isinstance(columns.value, _List)
    for chunk in columns.value.items:
        assert isinstance(chunk, _Struct)
        if chunk.get(_CHUNK_FILE_PATH) is not None:
            raise ParquetAppendError("column chunks in other files are not supported")
        _shift(chunk, (_CHUNK_FILE_OFFSET, *_CHUNK_OFFSETS), delta)
        meta = chunk.get(_CHUNK_META)
        if meta is not None:
            assert isinstance(meta.value, _Struct)
            _shift(meta.value, _META_OFFSETS, delta)
    ordinal_field = group.get(_GROUP_ORDINAL)
    if ordinal_field is not None:
        ordinal_field.value = ordinal
    return group


def _row_groups(meta: _Struct) -> _List:
    groups = meta.get(_FILE_ROW_GROUPS)
    if groups is None or not isinstance(groups.value, _List):
        raise ParquetAppendError("parquet footer without row groups")
    return groups.value


def append(old: BinaryIO, new: bytes, out: BinaryIO) -> int:
    """Write to ``out`` the parquet file ``old`` followed by the rows of the parquet file ``new``.

    ``new`` must have the same parquet schema as ``old``; its key-value metadata replaces
    ``old``'s. Returns the number of row groups of the result.

    Raises
    ------
    ParquetAppendError
        Either file is not plain (unencrypted, single-file) parquet, or the
        schemas differ.
    """
    old_footer, old_end = footer(old)
    new_footer, new_end = footer(io.BytesIO(new))
    old_meta, new_meta = _Reader(old_footer).struct(), _Reader(new_footer).struct()
    if old_meta.get(_FILE_ENCRYPTION) or new_meta.get(_FILE_ENCRYPTION):
        raise ParquetAppendError("encrypted parquet files are not supported")
    schemas = [m.get(_FILE_SCHEMA) for m in (old_meta, new_meta)]
    if schemas[0] is None or schemas[1] is None or schemas[0].value != schemas[1].value:
        raise ParquetAppendError("the new rows are in another parquet schema")
    old_groups, new_groups = _row_groups(old_meta), _row_groups(new_meta)
    delta = old_end - len(MAGIC)
    merged = list(old_groups.items)
    for group in new_groups.items:
        assert isinstance(group, _Struct)
        merged.append(_moved_row_group(group, delta, len(merged)))
    new_groups.items = merged
    rows = [m.get(_FILE_NUM_ROWS) for m in (old_meta, new_meta)]
    assert rows[0] is not None and rows[1] is not None
    rows[1].value = int(rows[0].value) + int(rows[1].value)  # type: ignore[call-overload]
    encoded = _encode_struct(new_meta)

    old.seek(0)
    _copy(old, out, old_end)
    out.write(new[len(MAGIC) : new_end])
    out.write(encoded)
    out.write(struct.pack("<I", len(encoded)) + MAGIC)
    return len(merged)


def _copy(src: BinaryIO, dst: BinaryIO, length: int) -> None:
    remaining = length
    while remaining:
        chunk = src.read(min(remaining, 1 << 20))
        if not chunk:
            raise ParquetAppendError("the parquet file changed while it was read")
        dst.write(chunk)
        remaining -= len(chunk)
