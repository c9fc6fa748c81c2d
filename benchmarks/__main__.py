"""``python -m benchmarks [--quick] [--only NAME ...] [--sizes NAME.KEY=N ...]``.

Runs the benchmarks, prints a table of figures (ours, the peer, ours/peer, the target) and writes
them as JSON under ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.metadata
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks import BENCHMARKS
from benchmarks.core import REPO, Figure, Measurement, make_context

RESULTS = REPO / "benchmarks" / "results"


def _sizes(values: list[str]) -> dict[str, int]:
    sizes = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or "." not in key or not value.isdigit():
            raise argparse.ArgumentTypeError(f"--sizes takes NAME.KEY=INTEGER, got {item!r}")
        sizes[key] = int(value)
    return sizes


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=(__doc__ or "").splitlines()[2]
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run for CI")
    parser.add_argument(
        "--only", nargs="+", choices=BENCHMARKS, metavar="NAME", help=f"among {BENCHMARKS}"
    )
    parser.add_argument(
        "--sizes",
        nargs="+",
        default=[],
        metavar="NAME.KEY=N",
        help="override a data size, e.g. hashing.large_mib=512 (a run's JSON lists all keys)",
    )
    parser.add_argument("--repeats", type=int, default=1, help="runs of each side; best kept")
    parser.add_argument("--dir", type=Path, help="where to generate data (default: system temp)")
    parser.add_argument("--out", type=Path, help="JSON results file (default: under results/)")
    return parser


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _machine() -> dict[str, Any]:
    pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    return {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "memory_gib": round(pages * page_size / (1 << 30), 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "one_flows": importlib.metadata.version("one-flows"),
        "ONE-api": importlib.metadata.version("ONE-api"),
    }


def _cell(m: Measurement, key_value: str | None = None) -> str:
    main = key_value if key_value is not None else f"{m.seconds:.4g} s"
    return f"{main}\n{m.memory}"


def print_table(figures: list[Figure], console: Console) -> None:
    """Print one row per figure: ours and the peer (value, peak RSS), ratio and verdict."""
    table = Table(title="one-flows benchmarks", show_lines=True)
    for column in ("benchmark", "work", "ours", "peer", "ours/peer", "target → verdict"):
        table.add_column(column, overflow="fold")
    for f in figures:

        def cell(m: Any, f: Figure = f) -> str:
            value = None if f.key == "seconds" else f"{m.value(f.key):.4g} {f.unit}"
            return f"{m.label}\n" + _cell(m, value)

        verdict = "" if f.target is None else f"{f.target.text} → {'met' if f.met else 'MISSED'}"
        style = None if f.met is None else ("green" if f.met else "red")
        table.add_row(
            f.benchmark,
            f.work,
            cell(f.ours),
            "—" if f.peer is None else cell(f.peer),
            "—" if f.ratio is None else f"{f.ratio:.3g}",
            verdict,
            style=style,
        )
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        overrides = _sizes(args.sizes)
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    names = args.only or list(BENCHMARKS)
    modules = {name: importlib.import_module(f"benchmarks.{name}") for name in names}
    known = {f"{name}.{key}" for name, module in modules.items() for key in module.SIZES}
    if unknown := sorted(set(overrides) - known):
        parser.error(
            f"unknown --sizes keys {unknown}; those of the chosen benchmarks: {sorted(known)}"
        )
    console = Console()
    if not console.is_terminal:
        # Piped or captured output would otherwise wrap every cell at 80 columns.
        console = Console(width=150)
    started = datetime.datetime.now().astimezone()
    # Other processes skew every figure: the load before and after the run is recorded.
    machine = _machine()
    figures: list[Figure] = []
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="one-flows-bench-", dir=args.dir) as scratch:
        ctx = make_context(
            Path(scratch), quick=args.quick, repeats=args.repeats, overrides=overrides
        )
        for name, module in modules.items():
            console.print(f"[bold]{name}[/] …")
            start = time.perf_counter()
            figures += module.run(ctx)
            seconds[name] = time.perf_counter() - start
    print_table(figures, console)
    results = {
        "date": started.isoformat(timespec="seconds"),
        "command": shlex.join(
            ["python", "-m", "benchmarks", *(sys.argv[1:] if argv is None else argv)]
        ),
        "quick": args.quick,
        "repeats": args.repeats,
        "machine": machine,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "sizes": ctx.used_sizes,
        "benchmark_seconds": seconds,
        "figures": [f.to_json() for f in figures],
    }
    out = args.out or RESULTS / f"{started:%Y%m%d-%H%M%S}{'-quick' if args.quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    console.print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
