"""md5 digests agree with hashlib, coreutils md5sum and ONE-api's hashing at chunk boundaries."""

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from iblutil.io import hashfile

from one_flows.hashing import CHUNK_SIZE, hash_files, md5

SIZES = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 5 * CHUNK_SIZE + 3]


def md5sum(path: Path) -> str:
    out = subprocess.run(["md5sum", str(path)], check=True, capture_output=True, text=True)
    return out.stdout.split()[0]


@pytest.mark.parametrize("size", SIZES)
def test_md5_agrees_with_hashlib_md5sum_and_one_api(make_file, size):
    data = os.urandom(size)
    path = make_file(data)
    expected = hashlib.md5(data).hexdigest()
    assert md5(path) == expected
    assert md5sum(path) == expected
    assert hashfile.md5(path) == expected
    [result] = hash_files([path])
    assert (result.md5, result.size, result.reason) == (expected, size, None)


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=3000), chunk_size=st.integers(min_value=1, max_value=700))
def test_md5_is_independent_of_chunk_size(tmp_path_factory, data, chunk_size):
    path = tmp_path_factory.mktemp("chunks") / "data.bin"
    path.write_bytes(data)
    assert md5(path, chunk_size=chunk_size) == hashlib.md5(data).hexdigest()
    [result] = hash_files([path], chunk_size=chunk_size)
    assert result.md5 == hashlib.md5(data).hexdigest()


def test_md5_follows_symlinks(make_file, tmp_path):
    target = make_file(size=1000)
    link = tmp_path / "link.bin"
    link.symlink_to(target)
    assert md5(link) == md5(target) == hashlib.md5(target.read_bytes()).hexdigest()


def test_md5_accepts_str_paths(make_file):
    path = make_file(b"abc")
    assert md5(str(path)) == hashlib.md5(b"abc").hexdigest()


def test_md5_raises_for_missing_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        md5(tmp_path / "absent.bin")
    with pytest.raises(IsADirectoryError):
        md5(tmp_path)


@pytest.mark.parametrize("chunk_size", [0, -1, 1.5])
def test_md5_rejects_bad_chunk_size(make_file, chunk_size):
    with pytest.raises(ValueError, match="chunk_size"):
        md5(make_file(b"x"), chunk_size=chunk_size)
