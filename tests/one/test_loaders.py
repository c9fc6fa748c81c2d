"""Loaders return what ONE-api's ``load_file_content`` returns, per extension."""

import json

import numpy as np
import one.alf.io
import pandas as pd
import pytest

from one_flows.loaders import load_file_content

FILES = {
    "a.vector.npy": lambda p: np.save(p, np.arange(5.0)),
    "a.column.npy": lambda p: np.save(p, np.arange(5.0)[:, None]),
    "a.matrix.npy": lambda p: np.save(p, np.ones((3, 2))),
    "a.single.npz": lambda p: np.savez(p, np.arange(3)),
    "a.doc.json": lambda p: p.write_text(json.dumps({"a": [1, 2], "b": None})),
    "a.lines.jsonable": lambda p: p.write_text('{"x": 1}\n{"x": 2}\n'),
    "a.table.csv": lambda p: p.write_text("x,y\n1,2\n3,4\n"),
    "a.column.csv": lambda p: p.write_text("x\n1\n3\n"),
    "a.table.ssv": lambda p: p.write_text("x y\n1 2\n"),
    "a.table.tsv": lambda p: p.write_text("x\ty\n1\t2\n"),
    "a.table.htsv": lambda p: p.write_text("x\ty\n1\t2\n"),
    "a.table.pqt": lambda p: pd.DataFrame({"x": [1.0, 2.0]}).to_parquet(p),
    "a.config.yaml": lambda p: p.write_text("a: 1\nb: [x, y]\n"),
    "a.raw.bin": lambda p: p.write_bytes(b"\x00\x01"),
    "a.empty.npy": lambda p: p.write_bytes(b""),
}


@pytest.mark.parametrize("name", FILES)
def test_content_matches_one_api(tmp_path, name):
    path = tmp_path / name
    FILES[name](path)
    mine, expected = load_file_content(path), one.alf.io.load_file_content(path)
    if isinstance(expected, (pd.DataFrame, pd.Series)):
        pd.testing.assert_frame_equal(pd.DataFrame(mine), pd.DataFrame(expected))
    elif isinstance(expected, np.ndarray):
        np.testing.assert_array_equal(mine, expected)
        assert mine.shape == expected.shape
    elif expected is None:
        assert mine is None
    else:
        assert mine == expected


def test_npy_memory_map(tmp_path):
    path = tmp_path / "spikes.times.npy"
    np.save(path, np.arange(10.0))
    data = load_file_content(path, mmap=True)
    assert isinstance(data, np.memmap) and not data.flags.writeable
    np.testing.assert_array_equal(data, np.arange(10.0))


def test_pickled_npy_needs_consent(tmp_path):
    path = tmp_path / "objects.list.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle"):
        load_file_content(path)
    assert load_file_content(path, allow_pickle=True)[0] == {"a": 1}


def test_missing_file_and_none(tmp_path):
    assert load_file_content(None) is None
    with pytest.raises(FileNotFoundError):
        load_file_content(tmp_path / "nothing.here.npy")
