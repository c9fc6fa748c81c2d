"""What loading gives back: an ALF object's attributes (`AlfBunch`), the older tutorial's
`SessionDataInfo`, and the reading of an object's files into a bunch."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from one_flows.alf import filename_parts
from one_flows.loaders import load_file_content

__all__ = ["AlfBunch", "SessionDataInfo", "name_parts", "read_object"]


@lru_cache(maxsize=65536)
def name_parts(name: str) -> tuple[str, ...]:
    """ALF parts of a file name (namespace, object, attribute, timescale, extra, extension), '' for
    absent parts."""
    return tuple(p or "" for p in filename_parts(name, assert_valid=False))


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


def read_object(files: list[Path]) -> AlfBunch:
    """Read an object's files into a bunch keyed by attribute(_timescale)(.extra)."""
    out = AlfBunch()
    metadata: dict[str, Any] = {}
    for path in files:
        _, _, attribute, timescale, extra, extension = name_parts(path.name)
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
