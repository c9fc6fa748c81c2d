"""Cache tables: building them, and updating them after new sessions, against ONE-api.

Both sides index the same tree of tiny ALF files, without hashing (ONE-api's default):
``one_flows.cache.make_parquet_db`` against ONE-api's ``one.alf.cache.make_parquet_db`` for a
full build (target: ≤ 0.1 × its time, < 600 MiB RSS), then ``update_tables`` after new sessions
are added, against our own full build (target: ≤ 0.02 ×), in the two modes users get: the
default (changed sessions found by their folders' mtimes) and ``sessions=`` (the sessions a flow
registered). Both builds must find the same
sessions and datasets. The tables stay in the run's scratch folder for the queries benchmark.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from benchmarks import data
from benchmarks.core import BenchmarkError, Context, Figure, Target, best_of, measure_call, timed

NAME = "cache_tables"
SIZES = {"sessions": (10_000, 200), "datasets_per_session": (50, 50), "new_sessions": (10, 10)}


def ours_build(root: str, out: str) -> dict:
    """one_flows.cache.make_parquet_db of ``root`` into ``out``."""
    from one_flows.cache import load_tables, make_parquet_db

    seconds, _ = timed(lambda: make_parquet_db(root, out))
    tables = load_tables(out)
    return {"seconds": seconds, "sessions": len(tables.sessions), "datasets": len(tables.datasets)}


def one_api_build(root: str, out: str) -> dict:
    """ONE-api's one.alf.cache.make_parquet_db of ``root`` into ``out``."""
    import pandas as pd
    from one.alf.cache import make_parquet_db

    seconds, (sessions_path, datasets_path) = timed(lambda: make_parquet_db(root, out_dir=out))
    return {
        "seconds": seconds,
        "sessions": len(pd.read_parquet(sessions_path)),
        "datasets": len(pd.read_parquet(datasets_path)),
    }


def ours_update(root: str, out: str, sessions: list[str] | None = None) -> dict:
    """one_flows.cache.update_tables of the tables in ``out`` from ``root``: by folder mtimes
    (``rescan="changed"``), or only the given sessions as a registration flow passes them."""
    from one_flows.cache import update_tables

    seconds, summary = timed(lambda: update_tables(root, out, sessions=sessions, rescan="changed"))
    return {
        "seconds": seconds,
        "sessions_added": summary.sessions_added,
        "datasets_added": summary.datasets_added,
    }


def tables(ctx: Context, sessions: int, datasets: int) -> dict[str, Path]:
    """The tree and both sides' tables of it: built by this benchmark, else built now."""
    key = ("tables", sessions, datasets)
    if key not in ctx.shared:
        run(ctx)
    return ctx.shared[key]


def _same(what: str, ours: dict, peer: dict, keys: tuple[str, ...]) -> None:
    if any(ours[k] != peer[k] for k in keys):
        raise BenchmarkError(f"{what}: one_flows found {ours}, ONE-api {peer}")


def run(ctx: Context) -> list[Figure]:
    """Measure a full build on both sides and our incremental update; return the figures."""
    sizes = ctx.sizes(NAME, SIZES)
    n, per_session, new = sizes["sessions"], sizes["datasets_per_session"], sizes["new_sessions"]
    root = data.query_tree(ctx, n, per_session)
    out_ours, out_one = ctx.folder("tables-ours"), ctx.folder("tables-one")
    work = f"cache build, {n:,} sessions / {n * per_session:,} datasets"

    def build(label: str, function: str, out: Path) -> object:
        return best_of(
            ctx.repeats,
            lambda: measure_call(
                ctx, label, f"{__name__}:{function}", root=str(root), out=str(out)
            ),
        )

    ours = build("one_flows make_parquet_db", "ours_build", out_ours)
    peer = build("ONE-api make_parquet_db", "one_api_build", out_one)
    _same(work, ours.details, peer.details, ("sessions", "datasets"))

    # New sessions under a subject of their own, removed afterwards so that the tree and both
    # sides' tables describe the same sessions again for the queries benchmark.
    subjects = data.subjects_for(n)
    added = [data.session_rel_path(i, subjects).replace("SUBJ", "NEWS") for i in range(new)]
    payload = data.tiny_npy()
    data.write_sessions(root, added, data.query_datasets(per_session), lambda _j, _r: payload)
    expected = {"sessions_added": new, "datasets_added": new * per_session}
    updates = {}
    for label, sessions in (("folder mtimes", None), ("sessions=", added)):
        if sessions is not None:
            data.write_sessions(
                root, added, data.query_datasets(per_session), lambda _j, _r: payload
            )
        updates[label] = measure_call(
            ctx,
            f"one_flows update_tables ({label})",
            f"{__name__}:ours_update",
            root=str(root),
            out=str(out_ours),
            sessions=sessions,
        )
        if updates[label].details != expected:
            raise BenchmarkError(f"update_tables ({label}) reported {updates[label].details}")
        for lab in data.LABS:
            for subject in (root / lab / "Subjects").glob("NEWS*"):
                shutil.rmtree(subject)
        measure_call(
            ctx,
            "restore",
            f"{__name__}:ours_update",
            root=str(root),
            out=str(out_ours),
            sessions=sessions,
        )

    ctx.shared[("tables", n, per_session)] = {"root": root, "ours": out_ours, "one": out_one}
    return [
        Figure(NAME, work, ours, peer, Target("≤ 0.1 × ONE-api, < 600 MiB RSS", 0.1, None, 600)),
        *(
            Figure(
                NAME,
                f"incremental update ({label}), {new} new sessions, vs our full build",
                update,
                ours,
                Target("≤ 0.02 × a full build", 0.02),
            )
            for label, update in updates.items()
        ),
    ]
