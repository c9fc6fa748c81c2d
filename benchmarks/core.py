"""What every benchmark shares: the run context, measuring a process, and result records.

A `Measurement` is one side (ours or a peer) of a piece of work, run in its own fresh process
(see `benchmarks._measure`): its time, its peak resident memory and any other numbers it
reports. A `Figure` sets ours beside a peer, with the ratio ours/peer and, when the issue sets
one, the `Target` that ratio must reach.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MIB = 1 << 20
GIB = 1 << 30
REPO = Path(__file__).resolve().parent.parent


class BenchmarkError(RuntimeError):
    """A measured process failed, or the sides of a comparison did not do the same work."""


@dataclass
class Context:
    """One harness run: where data goes, which sizes, how many repeats, the processes' env."""

    scratch: Path
    quick: bool
    repeats: int
    overrides: dict[str, int] = field(default_factory=dict)
    used_sizes: dict[str, int] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)

    def sizes(self, benchmark: str, declared: Mapping[str, tuple[int, int]]) -> dict[str, int]:
        """A benchmark's data sizes: each --sizes override, else its default or quick value.

        ``declared`` maps each size's name to (default, quick).
        """
        resolved = {}
        for name, (default, quick) in declared.items():
            key = f"{benchmark}.{name}"
            resolved[name] = self.overrides.get(key, quick if self.quick else default)
            self.used_sizes[key] = resolved[name]
        return resolved

    def folder(self, name: str) -> Path:
        """A folder under the scratch space, created if needed."""
        path = self.scratch / name
        path.mkdir(parents=True, exist_ok=True)
        return path


def make_context(
    scratch: Path, *, quick: bool, repeats: int, overrides: Mapping[str, int]
) -> Context:
    """A context whose processes run with HOME, caches and Prefect's home inside ``scratch``.

    Peers (ONE-api, Prefect) write parameter files under HOME: they must not touch the user's.
    """
    home = scratch / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "ONE_FLOWS_CACHE_DIR": str(home / ".cache" / "one_flows"),
        "PREFECT_HOME": str(home / ".prefect"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    env.pop("PREFECT_API_URL", None)
    return Context(
        scratch=scratch, quick=quick, repeats=repeats, overrides=dict(overrides), env=env
    )


@dataclass
class Measurement:
    """One side of a piece of work, measured in its own process.

    ``seconds`` is the work's time (the function's own timing for Python work, which leaves out
    interpreter start and imports unless it says otherwise; the whole process for commands);
    ``process_seconds`` the process's wall time; ``peak_rss_mib`` its peak resident memory.
    ``cpu_seconds`` is the CPU time of the process and the children it waited for (e.g. the
    embedded Prefect API of ``one-flows register``), which other processes on a busy machine
    stretch less than the wall time.
    """

    label: str
    seconds: float
    peak_rss_mib: float
    process_seconds: float
    details: dict[str, Any] = field(default_factory=dict)
    cpu_seconds: float = 0.0

    def value(self, key: str) -> float:
        """``seconds``, or the numeric detail called ``key``."""
        return self.seconds if key == "seconds" else float(self.details[key])

    @property
    def computed(self) -> bool:
        """Whether this side was computed (see `computed`) rather than measured."""
        return bool(self.details.get("computed"))

    @property
    def memory(self) -> str:
        """Its peak RSS for a table, e.g. "140 MiB"; "computed" for a computed side."""
        return "computed" if self.computed else f"{self.peak_rss_mib:.0f} MiB"


def computed(label: str, seconds: float) -> Measurement:
    """A side that is computed, not measured (a bound such as a latency model's floor)."""
    return Measurement(label, seconds, 0.0, 0.0, {"computed": True})


def _launch(ctx: Context, args: list[str], env: Mapping[str, str] | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        report_path = Path(tmp) / "report.json"
        subprocess.run(
            [sys.executable, "-m", "benchmarks._measure", str(report_path), *args],
            env={**ctx.env, **(env or {})},
            cwd=REPO,
            check=True,
        )
        report = json.loads(report_path.read_text())
    if "error" in report:
        raise BenchmarkError(report["error"])
    return report


def measure_call(
    ctx: Context,
    label: str,
    function: str,
    *,
    env: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> Measurement:
    """Run ``function`` ("module:name") with JSON-able ``kwargs`` in a fresh process.

    The function returns a dict: ``seconds`` (optional, else the call's time) and other
    details, kept in ``Measurement.details``.
    """
    report = _launch(ctx, ["--call", function, json.dumps(kwargs)], env)
    details = report["result"]
    seconds = details.pop("seconds")
    return Measurement(
        label,
        seconds,
        report["peak_rss_mib"],
        report["process_seconds"],
        details,
        report["cpu_seconds"],
    )


def measure_commands(
    ctx: Context, label: str, commands: list[list[str]], *, env: Mapping[str, str] | None = None
) -> Measurement:
    """Run external commands at once in a fresh process; ``details["stdout"]`` has their output.

    The peak RSS is that of the largest command.
    """
    report = _launch(ctx, ["--commands", json.dumps(commands)], env)
    wall = report["process_seconds"]
    details = {"stdout": report["stdout"]}
    return Measurement(label, wall, report["peak_rss_mib"], wall, details, report["cpu_seconds"])


def best_of(repeats: int, measure: Callable[[], Measurement]) -> Measurement:
    """Measure ``repeats`` times; keep the fastest run, with the largest peak RSS of all runs."""
    runs = [measure() for _ in range(max(1, repeats))]
    best = min(runs, key=lambda m: m.seconds)
    best.peak_rss_mib = max(m.peak_rss_mib for m in runs)
    return best


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    """Call ``function``; return (seconds it took, its result)."""
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


@dataclass(frozen=True)
class Target:
    """A figure to reach, as the issue states it.

    ``max_ratio`` bounds ours/peer; ``max_value`` bounds ours alone (when there is no peer);
    ``max_rss_mib`` bounds our peak RSS.
    """

    text: str
    max_ratio: float | None = None
    max_value: float | None = None
    max_rss_mib: float | None = None


@dataclass
class Figure:
    """Ours beside a peer for one piece of work; ``key`` picks the quantity compared."""

    benchmark: str
    work: str
    ours: Measurement
    peer: Measurement | None = None
    target: Target | None = None
    key: str = "seconds"
    unit: str = "s"

    @property
    def ratio(self) -> float | None:
        """ours/peer of the compared quantity (below 1: ours is smaller, i.e. faster)."""
        if self.peer is None:
            return None
        peer = self.peer.value(self.key)
        return self.ours.value(self.key) / peer if peer else math.inf

    @property
    def met(self) -> bool | None:
        """Whether the target is reached; None when there is no target."""
        if self.target is None:
            return None
        checks = []
        if self.target.max_ratio is not None:
            checks.append(self.ratio is not None and self.ratio <= self.target.max_ratio)
        if self.target.max_value is not None:
            checks.append(self.ours.value(self.key) <= self.target.max_value)
        if self.target.max_rss_mib is not None:
            checks.append(self.ours.peak_rss_mib < self.target.max_rss_mib)
        return all(checks)

    @property
    def verdict(self) -> str:
        """E.g. "ours/peer s = 0.07, target ≤ 0.1 × → met"."""
        parts = []
        if self.ratio is not None:
            parts.append(f"ours/peer {self.unit} = {self.ratio:.3g}")
        if self.target is not None:
            parts.append(f"target {self.target.text} → {'met' if self.met else 'MISSED'}")
        return ", ".join(parts) or "no target"

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "work": self.work,
            "unit": self.unit,
            "key": self.key,
            "ours": _measurement_json(self.ours, self.key),
            "peer": None if self.peer is None else _measurement_json(self.peer, self.key),
            "ratio": self.ratio,
            "target": None if self.target is None else asdict(self.target),
            "met": self.met,
            "verdict": self.verdict,
        }


def _measurement_json(m: Measurement, key: str) -> dict[str, Any]:
    details = {k: v for k, v in m.details.items() if isinstance(v, int | float | str | bool)}
    return {
        "label": m.label,
        "value": m.value(key),
        "seconds": m.seconds,
        "process_seconds": m.process_seconds,
        "cpu_seconds": m.cpu_seconds,
        "peak_rss_mib": m.peak_rss_mib,
        "details": details,
    }


def set_old_mtimes(root: Path, age_seconds: float = 3600.0) -> None:
    """Date every file under ``root`` ``age_seconds`` back.

    Digest caches do not record files modified within the last seconds (a same-size rewrite
    could go unseen), so freshly generated data would never be cached.
    """
    when = time.time() - age_seconds
    for folder, _, files in os.walk(root):
        for name in files:
            os.utime(os.path.join(folder, name), (when, when))
