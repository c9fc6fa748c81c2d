"""Read the content of one data file, chosen by its extension, as ONE-api does.

=================  ==============================================================
extension          returns
=================  ==============================================================
``.npy``           numpy array; a single-column (n, 1) array is flattened to (n,)
``.npz``           the array when the archive holds only ``arr_0``, else the archive
``.json``          the decoded JSON value
``.jsonable``      a list of the JSON values of each line
``.csv``           pandas DataFrame (a single column becomes a Series)
``.ssv``           same, space separated
``.tsv``/``.htsv`` same, tab separated
``.pqt``           pandas DataFrame (``.parquet`` too)
``.yml``/``.yaml`` the decoded YAML value
anything else      the file's ``pathlib.Path``: it is not read
=================  ==============================================================

An empty file gives None. Differences from ONE-api's ``load_file_content``: ``.npy`` files are
loaded without pickle support unless asked (``allow_pickle=True``), as pickles can run code;
``mmap=True`` memory-maps ``.npy`` files instead of reading them; malformed JSON raises instead
of logging and returning None.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["LOADERS", "load_file_content"]


def _flat(array: np.ndarray) -> np.ndarray:
    return array.ravel() if array.ndim == 2 and array.shape[1] == 1 else array


def _npy(path: Path, mmap: bool, allow_pickle: bool) -> Any:
    return _flat(np.load(path, mmap_mode="r" if mmap else None, allow_pickle=allow_pickle))


def _npz(path: Path, mmap: bool, allow_pickle: bool) -> Any:
    archive = np.load(path, allow_pickle=allow_pickle)
    return archive["arr_0"] if archive.files == ["arr_0"] else archive


def _json(path: Path, mmap: bool, allow_pickle: bool) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _jsonable(path: Path, mmap: bool, allow_pickle: bool) -> Any:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _table(sep: str) -> Callable[[Path, bool, bool], Any]:
    def read(path: Path, mmap: bool, allow_pickle: bool) -> Any:
        return pd.read_csv(path, sep=sep).squeeze("columns")

    return read


def _parquet(path: Path, mmap: bool, allow_pickle: bool) -> Any:
    return pd.read_parquet(path)


def _yaml(path: Path, mmap: bool, allow_pickle: bool) -> Any:
    import yaml  # PyYAML comes with Prefect; only needed for these files

    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


LOADERS: dict[str, Callable[[Path, bool, bool], Any]] = {
    ".npy": _npy,
    ".npz": _npz,
    ".json": _json,
    ".jsonable": _jsonable,
    ".csv": _table(","),
    ".ssv": _table(" "),
    ".tsv": _table("\t"),
    ".htsv": _table("\t"),
    ".pqt": _parquet,
    ".parquet": _parquet,
    ".yml": _yaml,
    ".yaml": _yaml,
}
"""Extension (lowercase, with the dot) → reader(path, mmap, allow_pickle)."""


def load_file_content(
    path: str | os.PathLike | None, *, mmap: bool = False, allow_pickle: bool = False
) -> Any:
    """Return the content of the file at ``path`` according to its extension (see module doc).

    None gives None. ``mmap`` memory-maps ``.npy`` arrays read-only. Raises FileNotFoundError
    for a missing file.
    """
    if path is None:
        return None
    path = Path(path)
    if path.stat().st_size == 0:
        return None
    reader = LOADERS.get(path.suffix.lower())
    if reader is None:
        return path
    return reader(path, mmap, allow_pickle)
