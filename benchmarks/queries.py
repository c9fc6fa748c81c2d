"""Queries on a large cache: our ``one_flows.one.One`` against ONE-api's local ``One``.

Each side opens the tables it built itself in the cache_tables benchmark (same tree), in a
fresh process: loading the tables (constructing ``One``), then ``search`` and ``list_datasets``
(the median of several calls) and ``load_object`` of the four tiny files of a ``trials`` object.
Targets: loading, search and list_datasets ≤ 0.5 × ONE-api per call; load_object ≤ 0.05 ×.
Both sides must give the same answers.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import cache_tables, data
from benchmarks.core import (
    BenchmarkError,
    Context,
    Figure,
    Measurement,
    Target,
    measure_call,
    timed,
)

NAME = "queries"
SIZES = {"calls": (20, 5), "load_object_calls": (5, 2)}


def _median_seconds(calls: int, function: Callable[[], Any]) -> tuple[float, Any]:
    runs = [timed(function) for _ in range(calls)]
    return statistics.median(s for s, _ in runs), runs[0][1]


def _queries(one: Any, query: dict, calls: int, object_calls: int) -> dict:
    """Time the same queries on either side's ``One``; return per-call seconds and answers."""
    [eid] = one.search(subject=query["subject"], date=query["date"], number=query["number"])
    search_s, found = _median_seconds(
        calls,
        lambda: one.search(
            lab=query["lab"], subject=query["subject"], date_range=query["date_range"]
        ),
    )
    list_s, datasets = _median_seconds(calls, lambda: one.list_datasets(eid))
    load_s, trials = _median_seconds(
        object_calls, lambda: one.load_object(eid, "trials", collection="alf")
    )
    return {
        "search_seconds": search_s,
        "list_datasets_seconds": list_s,
        "load_object_seconds": load_s,
        "sessions_found": len(found),
        "datasets_listed": len(datasets),
        "attributes_loaded": ",".join(sorted(trials)),
    }


def ours(cache_dir: str, query: dict, calls: int, object_calls: int) -> dict:
    """Load the tables with one_flows' One, then query them."""
    from one_flows.one import One

    seconds, one = timed(lambda: One(cache_dir))
    return {"seconds": seconds, **_queries(one, query, calls, object_calls)}


def one_api(cache_dir: str, query: dict, calls: int, object_calls: int) -> dict:
    """Load the tables with ONE-api's local One, then query them."""
    import logging
    import warnings

    from one.api import One

    # ONE warns and logs once per file loaded (no default revision, md5 mismatch with the
    # empty hash column): silenced so that the terminal is not flooded, not to save time.
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    seconds, one = timed(lambda: One(cache_dir=cache_dir, mode="local"))
    return {"seconds": seconds, **_queries(one, query, calls, object_calls)}


def _cache_dir(ctx: Context, side: str, tables: Path, root: Path) -> Path:
    """A folder with ``side``'s tables and the data tree, as a local ONE cache lays them out."""
    folder = ctx.folder(f"cache-{side}")
    for name in ("sessions.pqt", "datasets.pqt"):
        if not (folder / name).exists():
            os.symlink(tables / name, folder / name)
    for lab in data.LABS:
        if not (folder / lab).exists():
            os.symlink(root / lab, folder / lab)
    return folder


def run(ctx: Context) -> list[Figure]:
    """Measure both sides' queries on the cache_tables benchmark's tables."""
    sizes = ctx.sizes(NAME, SIZES)
    cache_sizes = ctx.sizes(cache_tables.NAME, cache_tables.SIZES)
    n, per_session = cache_sizes["sessions"], cache_sizes["datasets_per_session"]
    built = cache_tables.tables(ctx, n, per_session)
    subjects = data.subjects_for(n)
    lab, _, subject, date, number = data.session_rel_path(0, subjects).split("/")
    query = {
        "lab": lab,
        "subject": subject,
        "date": date,
        "number": int(number),
        "date_range": [date, (data.FIRST_DATE.replace(year=data.FIRST_DATE.year + 1)).isoformat()],
    }
    args = {"query": query, "calls": sizes["calls"], "object_calls": sizes["load_object_calls"]}
    sides: dict[str, Measurement] = {}
    for side, label in (("ours", "one_flows One"), ("one_api", "ONE-api local One")):
        cache_dir = _cache_dir(ctx, side, built["ours" if side == "ours" else "one"], built["root"])
        sides[side] = measure_call(
            ctx, label, f"{__name__}:{side}", cache_dir=str(cache_dir), **args
        )
    answers = ("sessions_found", "datasets_listed", "attributes_loaded")
    mine, theirs = sides["ours"], sides["one_api"]
    if any(mine.details[k] != theirs.details[k] for k in answers):
        raise BenchmarkError(
            f"queries disagree: one_flows {mine.details}, ONE-api {theirs.details}"
        )
    on = f"on {n * per_session:,} datasets"
    return [
        Figure(NAME, f"load the tables {on}", mine, theirs, Target("≤ 0.5 × ONE-api", 0.5)),
        Figure(
            NAME,
            f"search (lab, subject, date range) {on}, per call",
            mine,
            theirs,
            Target("≤ 0.5 × ONE-api", 0.5),
            key="search_seconds",
        ),
        Figure(
            NAME,
            f"list_datasets of a session {on}, per call",
            mine,
            theirs,
            Target("≤ 0.5 × ONE-api", 0.5),
            key="list_datasets_seconds",
        ),
        Figure(
            NAME,
            f"load_object of 4 tiny files {on}, per call",
            mine,
            theirs,
            Target("≤ 0.05 × ONE-api", 0.05),
            key="load_object_seconds",
        ),
    ]
