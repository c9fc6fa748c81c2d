"""Run one measured piece of work in a fresh process and report its wall time and peak RSS.

Usage (the harness calls this; it is not meant for people):

    python -m benchmarks._measure REPORT.json --call MODULE:FUNCTION ARGS_JSON
    python -m benchmarks._measure REPORT.json --commands COMMANDS_JSON

This small launcher starts the work as its child (``--call``: a Python function, run by
``--work`` below; ``--commands``: external commands, all at once), waits for it and reads
``RUSAGE_CHILDREN``. On Linux a new process starts with its parent's memory high-water mark, so
measuring from the harness itself, a large process, would report the harness's peak: this
launcher is small, and the floor of every figure is its ~10 MiB.

``--work`` runs ``FUNCTION(**ARGS)`` and writes its JSON-serialisable dict result; the function
may report its own ``seconds`` (to leave out setup), else the call's wall time is used.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_TAIL = 3000


def _peak_children_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _children_cpu_seconds() -> float:
    """User and system time of the children and their waited-for descendants."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _work(target: str, args_json: str, result_path: str) -> None:
    module_name, _, function_name = target.partition(":")
    function = getattr(importlib.import_module(module_name), function_name)
    args = json.loads(args_json)
    start = time.perf_counter()
    result = function(**args)
    seconds = time.perf_counter() - start
    if not isinstance(result, dict):
        raise TypeError(f"{target} returned {type(result).__name__}, expected a dict")
    result.setdefault("seconds", seconds)
    Path(result_path).write_text(json.dumps(result))


def _launch(commands: list[list[str]], result_path: str | None) -> dict:
    """Run commands concurrently; return wall seconds, peak RSS, outputs and exit codes."""
    start = time.perf_counter()
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for cmd in commands
    ]
    outputs = [proc.communicate() for proc in procs]
    wall = time.perf_counter() - start
    report: dict = {
        "process_seconds": wall,
        "peak_rss_mib": _peak_children_mib(),
        "cpu_seconds": _children_cpu_seconds(),
        "stdout": [out for out, _ in outputs],
    }
    failed = [
        (cmd, proc.returncode, err)
        for cmd, proc, (_, err) in zip(commands, procs, outputs, strict=True)
        if proc.returncode != 0
    ]
    if failed:
        cmd, code, err = failed[0]
        report["error"] = f"{' '.join(cmd)[:200]} exited with {code}:\n{err[-_TAIL:]}"
    elif result_path is not None:
        report["result"] = json.loads(Path(result_path).read_text())
    return report


def main(argv: list[str]) -> None:
    if argv[:1] == ["--work"]:
        _work(*argv[1:4])
        return
    report_path, mode, *rest = argv
    if mode == "--commands":
        report = _launch(json.loads(rest[0]), None)
    elif mode == "--call":
        target, args_json = rest
        with tempfile.TemporaryDirectory(prefix="bench-measure-") as tmp:
            result_path = os.path.join(tmp, "result.json")
            worker = [sys.executable, "-m", "benchmarks._measure", "--work"]
            report = _launch([[*worker, target, args_json, result_path]], result_path)
    else:
        raise SystemExit(f"unknown mode {mode!r}; use --call or --commands")
    Path(report_path).write_text(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1:])
