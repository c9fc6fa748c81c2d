"""Benchmark md5 hashing: one_flows.hashing against coreutils md5sum and ONE-api's hashing.

Two workloads, on random files in a temporary folder whose page cache is warmed first:
- one large file (2 GiB; 64 MiB with --quick);
- many files (400 x 16 MiB; 20 x 1 MiB with --quick): ours with 2 threads, one md5sum process,
  two md5sum processes splitting the list, ONE-api (iblutil.io.hashfile.md5) file after file.

Every measurement is a separate process: its wall time and peak resident memory are recorded, the
best of ``repeats`` runs is kept, and all tools must print the same digests. Peak memory comes from
GNU time (/usr/bin/time): it forks the measured command from its own small process, whereas a child
exec'ed straight from this script would inherit this script's memory high-water mark. The
ratio column is the peer's time over ours (above 1: we are faster). ``run(quick)`` returns the
results as a dict; the script prints them as a table.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIB = 1 << 20
GNU_TIME = "/usr/bin/time"

OURS_ONE_FILE = "from one_flows.hashing import md5; import sys; print(md5(sys.argv[1]))"
OURS_MANY_FILES = (
    "from one_flows.hashing import hash_files; import sys; "
    "print('\\n'.join(r.md5 for r in hash_files(sys.argv[1:], workers=2)))"
)
ONE_API = (
    "from iblutil.io.hashfile import md5; import sys; "
    "print('\\n'.join(md5(p, progress_bar=False) for p in sys.argv[1:]))"
)


def _write_random_files(folder: Path, count: int, size: int, prefix: str) -> list[Path]:
    paths = []
    for i in range(count):
        path = folder / f"{prefix}{i:04d}.bin"
        with path.open("wb") as f:
            for offset in range(0, size, 64 * MIB):
                f.write(os.urandom(min(64 * MIB, size - offset)))
        paths.append(path)
    return paths


def _warm_page_cache(paths: list[Path]) -> None:
    buffer = bytearray(8 * MIB)
    for path in paths:
        with path.open("rb", buffering=0) as f:
            while f.readinto(buffer):
                pass


def _digests(output: bytes) -> list[str]:
    """The first word of each output line: md5sum prints 'digest  path', Python tools 'digest'."""
    return [line.split()[0] for line in output.decode().splitlines()]


def _measure(commands: list[list[str]], scratch: Path) -> tuple[float, float, list[str]]:
    """Run commands concurrently; return wall seconds, largest peak RSS in MiB, their digests."""
    reports = [scratch / f"rss{i}.txt" for i in range(len(commands))]
    start = time.perf_counter()
    procs = [
        subprocess.Popen([GNU_TIME, "-f", "%M", "-o", str(report), *cmd], stdout=subprocess.PIPE)
        for cmd, report in zip(commands, reports, strict=True)
    ]
    outputs = [proc.communicate()[0] for proc in procs]
    seconds = time.perf_counter() - start
    for cmd, proc in zip(commands, procs, strict=True):
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed with exit code {proc.returncode}")
    peak_kib = max(int(report.read_text().split()[-1]) for report in reports)
    return seconds, peak_kib / 1024, [d for out in outputs for d in _digests(out)]


def _compare(
    scenario: str, tools: dict[str, list[list[str]]], repeats: int, scratch: Path
) -> dict[str, dict]:
    """Measure each tool (the first is ours) ``repeats`` times; keep the fastest run."""
    results: dict[str, dict] = {}
    reference: list[str] | None = None
    for tool, commands in tools.items():
        runs = [_measure(commands, scratch) for _ in range(repeats)]
        seconds = min(r[0] for r in runs)
        peak = max(r[1] for r in runs)
        digests = runs[0][2]
        if reference is None:
            reference = digests
        elif digests != reference:
            raise RuntimeError(f"{scenario}: {tool} disagrees with one_flows on the digests")
        results[tool] = {"seconds": seconds, "peak_rss_mib": peak}
    ours = next(iter(results.values()))["seconds"]
    for entry in results.values():
        entry["ratio_vs_ours"] = entry["seconds"] / ours
    return results


def _startup_seconds(python: str, repeats: int) -> float:
    """Seconds to start Python and import one_flows.hashing: part of every Python tool's time."""
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([python, "-c", "import one_flows.hashing"], check=True)
        runs.append(time.perf_counter() - start)
    return min(runs)


def run(quick: bool = False, folder: str | None = None) -> dict:
    """Run both workloads and return {scenario: {tool: {seconds, peak_rss_mib, ratio_vs_ours}}}."""
    large_size = 64 * MIB if quick else 2048 * MIB
    count, size = (20, MIB) if quick else (400, 16 * MIB)
    repeats = 3 if quick else 2
    if not os.access(GNU_TIME, os.X_OK):
        raise RuntimeError(f"{GNU_TIME} (GNU time) is needed to measure peak memory")
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="bench-hashing-", dir=folder) as tmp:
        [large] = _write_random_files(Path(tmp), 1, large_size, "large")
        many = [str(p) for p in _write_random_files(Path(tmp), count, size, "small")]
        _warm_page_cache([large, *map(Path, many)])
        half = len(many) // 2
        large_label = f"1 file x {large_size // MIB} MiB"
        many_label = f"{count} files x {size // MIB} MiB"
        return {
            "config": {
                "quick": quick,
                "large_mib": large_size // MIB,
                "files": count,
                "file_mib": size // MIB,
                "cpus": os.cpu_count(),
                "python_startup_seconds": _startup_seconds(python, repeats),
            },
            large_label: _compare(
                large_label,
                {
                    "one_flows md5": [[python, "-c", OURS_ONE_FILE, str(large)]],
                    "md5sum": [["md5sum", str(large)]],
                    "ONE-api hashfile.md5": [[python, "-c", ONE_API, str(large)]],
                },
                repeats,
                Path(tmp),
            ),
            many_label: _compare(
                many_label,
                {
                    "one_flows hash_files (2 threads)": [[python, "-c", OURS_MANY_FILES, *many]],
                    "md5sum sequential": [["md5sum", *many]],
                    "md5sum x2 processes": [["md5sum", *many[:half]], ["md5sum", *many[half:]]],
                    "ONE-api hashfile.md5 sequential": [[python, "-c", ONE_API, *many]],
                },
                repeats,
                Path(tmp),
            ),
        }


def print_table(results: dict) -> None:
    """Print the results of ``run`` as a fixed-width table."""
    print(f"config: {results['config']}")
    print(f"{'workload':<22} {'tool':<34} {'seconds':>8} {'peak RSS MiB':>13} {'peer/ours':>10}")
    for scenario, tools in results.items():
        if scenario == "config":
            continue
        for tool, r in tools.items():
            print(
                f"{scenario:<22} {tool:<34} {r['seconds']:>8.3f} {r['peak_rss_mib']:>13.1f}"
                f" {r['ratio_vs_ours']:>10.2f}"
            )


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small files, for a smoke run")
    parser.add_argument("--dir", help="where to write the temporary files (default: system temp)")
    args = parser.parse_args()
    results = run(args.quick, args.dir)
    print_table(results)
    return results


if __name__ == "__main__":
    main()
