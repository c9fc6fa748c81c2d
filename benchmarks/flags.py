"""Flag scanning: ``one_flows.flags.find_flags`` against ``find ROOT -name create_me.flag``.

The tree: ``sessions`` session folders of ``files_per_session`` files each, one of which is a
``create_me.flag``; the directory entries are read once first, so every side lists from the
kernel's cache. Target: ≤ 1.0 × find's time. Also against ``Path.glob('**/create_me.flag')``,
what ONE-api's ``create_sessions`` does. Every side must find every flag.
"""

from __future__ import annotations

from benchmarks import data
from benchmarks.core import (
    BenchmarkError,
    Context,
    Figure,
    Measurement,
    Target,
    best_of,
    measure_call,
    measure_commands,
)

NAME = "flags"
SIZES = {"sessions": (2_000, 50), "files_per_session": (100, 20)}
FLAG = "create_me.flag"


def ours(root: str) -> dict:
    """Count the pending create_me.flag files found by one_flows.flags.find_flags."""
    from one_flows.flags import find_flags

    return {"flags": sum(1 for _ in find_flags(root, names=[FLAG]))}


def path_glob(root: str) -> dict:
    """Count create_me.flag files found by Path.glob, as ONE-api's create_sessions looks."""
    from pathlib import Path

    return {"flags": sum(1 for _ in Path(root).glob(f"**/{FLAG}"))}


def _flags(m: Measurement) -> int:
    if "flags" in m.details:
        return m.details["flags"]
    return sum(len(out.splitlines()) for out in m.details["stdout"])


def run(ctx: Context) -> list[Figure]:
    """Scan the tree with each side; return the figures."""
    sizes = ctx.sizes(NAME, SIZES)
    n, per_session = sizes["sessions"], sizes["files_per_session"]
    root = ctx.folder("flags-tree")
    subjects = data.subjects_for(n)
    rel_paths = [*data.query_datasets(per_session - 1), FLAG]
    payload = data.tiny_npy()
    data.write_sessions(
        root,
        [data.session_rel_path(i, subjects) for i in range(n)],
        rel_paths,
        lambda _j, rel: b"" if rel == FLAG else payload,
    )
    find = ["find", str(root), "-name", FLAG]
    measure_commands(ctx, "warm-up", [find])
    peer = best_of(ctx.repeats, lambda: measure_commands(ctx, f"find -name {FLAG}", [find]))
    mine = best_of(
        ctx.repeats,
        lambda: measure_call(ctx, "one_flows find_flags", f"{__name__}:ours", root=str(root)),
    )
    glob = best_of(
        ctx.repeats,
        lambda: measure_call(ctx, "Path.glob (ONE-api)", f"{__name__}:path_glob", root=str(root)),
    )
    for m in (peer, mine, glob):
        if _flags(m) != n:
            raise BenchmarkError(f"{m.label} found {_flags(m)} of the {n} flags")
    work = f"find {n:,} flags among {n * per_session:,} files"
    return [
        Figure(NAME, work, mine, peer, Target("≤ 1.0 × find", 1.0)),
        Figure(NAME, work, mine, glob),
    ]
