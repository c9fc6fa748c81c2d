"""md5 hashing: one_flows.hashing against coreutils md5sum and ONE-api's hashing (iblutil).

Two workloads, on random files whose page cache is warmed first:
- one large file: ``md5`` against ``md5sum`` (target: at least its throughput, in flat memory),
  and against ONE-api's ``iblutil.io.hashfile.md5``;
- many files: ``hash_files`` in two threads against one ``md5sum`` over all of them (target:
  1.9 × its throughput on 2 cores), against two ``md5sum`` processes splitting the list, and
  against ONE-api's hashing file after file.
Every tool must print the same digests.
"""

from __future__ import annotations

import os
from pathlib import Path

from benchmarks.core import (
    MIB,
    BenchmarkError,
    Context,
    Figure,
    Measurement,
    Target,
    best_of,
    measure_call,
    measure_commands,
)

NAME = "hashing"
HASH_WORKERS = 2
SIZES = {"large_mib": (2048, 64), "files": (400, 20), "file_mib": (16, 1)}


def ours_md5(paths: list[str]) -> dict:
    """one_flows.hashing.md5 of each file, one after the other."""
    from one_flows.hashing import md5

    return {"digests": [md5(p) for p in paths]}


def ours_hash_files(paths: list[str], workers: int) -> dict:
    """one_flows.hashing.hash_files over all files in ``workers`` threads."""
    from one_flows.hashing import hash_files

    return {"digests": [r.md5 for r in hash_files(paths, workers=workers)]}


def one_api_md5(paths: list[str]) -> dict:
    """ONE-api's hashing (iblutil.io.hashfile.md5) of each file, one after the other."""
    from iblutil.io.hashfile import md5

    return {"digests": [md5(p, progress_bar=False) for p in paths]}


def write_random_files(folder: Path, count: int, size: int, prefix: str) -> list[Path]:
    """Write ``count`` files of ``size`` random bytes; return their paths."""
    paths = []
    for i in range(count):
        path = folder / f"{prefix}{i:04d}.bin"
        with path.open("wb") as f:
            for offset in range(0, size, 64 * MIB):
                f.write(os.urandom(min(64 * MIB, size - offset)))
        paths.append(path)
    return paths


def warm_page_cache(paths: list[Path]) -> None:
    """Read every file once so that every tool reads from memory, not disk."""
    buffer = bytearray(8 * MIB)
    for path in paths:
        with path.open("rb", buffering=0) as f:
            while f.readinto(buffer):
                pass


def _digests(m: Measurement) -> list[str]:
    if "digests" in m.details:
        return m.details["digests"]
    # md5sum prints "digest  path" per line.
    return [line.split()[0] for out in m.details["stdout"] for line in out.splitlines()]


def _same_digests(work: str, measurements: list[Measurement]) -> None:
    reference = _digests(measurements[0])
    for m in measurements[1:]:
        if _digests(m) != reference:
            raise BenchmarkError(f"{work}: {m.label} disagrees with {measurements[0].label}")


def run(ctx: Context) -> list[Figure]:
    """Measure both workloads; return the figures."""
    sizes = ctx.sizes(NAME, SIZES)
    large_mib, count, file_mib = sizes["large_mib"], sizes["files"], sizes["file_mib"]
    folder = ctx.folder("hashing")
    [large] = write_random_files(folder, 1, large_mib * MIB, "large")
    many = write_random_files(folder, count, file_mib * MIB, "small")
    warm_page_cache([large, *many])
    one, paths = [str(large)], [str(p) for p in many]
    half = len(paths) // 2

    def call(label: str, function: str, **kwargs: object) -> Measurement:
        return best_of(
            ctx.repeats, lambda: measure_call(ctx, label, f"{__name__}:{function}", **kwargs)
        )

    def commands(label: str, argvs: list[list[str]]) -> Measurement:
        return best_of(ctx.repeats, lambda: measure_commands(ctx, label, argvs))

    large_work = f"md5 of 1 file × {large_mib} MiB"
    ours_large = call("one_flows md5", "ours_md5", paths=one)
    md5sum_large = commands("md5sum", [["md5sum", *one]])
    one_large = call("ONE-api hashfile.md5", "one_api_md5", paths=one)
    _same_digests(large_work, [ours_large, md5sum_large, one_large])

    many_work = f"md5 of {count} files × {file_mib} MiB"
    ours_many = call(
        f"one_flows hash_files ({HASH_WORKERS} threads)",
        "ours_hash_files",
        paths=paths,
        workers=HASH_WORKERS,
    )
    md5sum_seq = commands("md5sum sequential", [["md5sum", *paths]])
    md5sum_two = commands(
        "md5sum × 2 processes", [["md5sum", *paths[:half]], ["md5sum", *paths[half:]]]
    )
    one_many = call("ONE-api hashfile.md5 sequential", "one_api_md5", paths=paths)
    _same_digests(many_work, [ours_many, md5sum_seq, md5sum_two, one_many])

    for path in [large, *many]:
        path.unlink()
    return [
        Figure(
            NAME,
            large_work,
            ours_large,
            md5sum_large,
            Target("≤ 1.0 × md5sum (≥ its throughput), < 64 MiB RSS", 1.0, max_rss_mib=64),
        ),
        Figure(NAME, large_work, ours_large, one_large),
        Figure(
            NAME,
            many_work,
            ours_many,
            md5sum_seq,
            Target("≤ 0.526 × sequential md5sum (≥ 1.9 × its throughput)", 1 / 1.9),
        ),
        Figure(NAME, many_work, ours_many, md5sum_two),
        Figure(NAME, many_work, ours_many, one_many),
    ]
