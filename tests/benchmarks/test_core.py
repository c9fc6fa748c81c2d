"""Measuring a process (peak RSS of that process alone, failures surfaced) and reading targets."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from benchmarks.core import (
    REPO,
    BenchmarkError,
    Context,
    Figure,
    Measurement,
    Target,
    make_context,
    measure_call,
    measure_commands,
)

ALLOC_MIB = 200


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    work = tmp_path / "work"
    work.mkdir()
    (work / "bench_work.py").write_text(
        textwrap.dedent(
            """
            def allocate(mib):
                block = bytearray(mib << 20)
                for i in range(0, len(block), 4096):
                    block[i] = 1
                return {"allocated": len(block) >> 20}

            def timed_inside():
                return {"seconds": 0.25, "note": "mine"}

            def fail():
                raise ValueError("bad input for the benchmark")
            """
        )
    )
    context = make_context(tmp_path / "scratch", quick=True, repeats=1, overrides={})
    context.env["PYTHONPATH"] = f"{work}:{REPO}"
    return context


def test_a_call_reports_its_own_peak_memory(ctx: Context) -> None:
    m = measure_call(ctx, "alloc", "bench_work:allocate", mib=ALLOC_MIB)
    assert m.details == {"allocated": ALLOC_MIB}
    assert m.cpu_seconds > 0
    assert ALLOC_MIB <= m.peak_rss_mib < ALLOC_MIB + 100
    assert 0 < m.seconds <= m.process_seconds


def test_the_measuring_process_memory_does_not_leak_into_figures(ctx: Context) -> None:
    # A child of a large process starts with that process's high-water mark on Linux.
    ballast = bytearray(3 * ALLOC_MIB << 20)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    small = measure_call(ctx, "small", "bench_work:allocate", mib=1)
    command = measure_commands(ctx, "true", [["true"]])
    assert small.peak_rss_mib < ALLOC_MIB
    assert command.peak_rss_mib < ALLOC_MIB
    del ballast


def test_a_function_may_time_itself(ctx: Context) -> None:
    m = measure_call(ctx, "own timing", "bench_work:timed_inside")
    assert m.seconds == 0.25
    assert m.details == {"note": "mine"}


def test_commands_run_at_once_and_report_their_output(ctx: Context) -> None:
    code = "import time, sys; time.sleep(0.5); print(sys.argv[1])"
    m = measure_commands(
        ctx, "two sleepers", [[sys.executable, "-c", code, "a"], [sys.executable, "-c", code, "b"]]
    )
    assert m.details["stdout"] == ["a\n", "b\n"]
    assert m.seconds < 1.0  # concurrent: two sequential half-second sleeps would take longer


def test_failures_raise_with_the_cause(ctx: Context) -> None:
    with pytest.raises(BenchmarkError, match="bad input for the benchmark"):
        measure_call(ctx, "fails", "bench_work:fail")
    with pytest.raises(BenchmarkError, match="exited with 1"):
        measure_commands(ctx, "false", [["false"]])


def _m(seconds: float, rss: float = 10.0, **details: float) -> Measurement:
    return Measurement("side", seconds, rss, seconds, dict(details))


def test_a_ratio_target_is_met_at_or_below_the_bound() -> None:
    target = Target("≤ 0.1 × peer", max_ratio=0.1)
    assert Figure("b", "w", _m(1.0), _m(10.0), target).met is True
    missed = Figure("b", "w", _m(2.0), _m(10.0), target)
    assert missed.met is False
    assert missed.ratio == pytest.approx(0.2)
    assert "MISSED" in missed.verdict


def test_a_memory_bound_can_miss_a_target_whose_ratio_is_met() -> None:
    target = Target("≤ 1.0 × peer, < 64 MiB", max_ratio=1.0, max_rss_mib=64)
    assert Figure("b", "w", _m(1.0, rss=63.0), _m(2.0), target).met is True
    assert Figure("b", "w", _m(1.0, rss=64.0), _m(2.0), target).met is False


def test_a_figure_can_compare_another_quantity() -> None:
    figure = Figure(
        "b",
        "w",
        _m(9.0, requests=4.0),
        _m(1.0, requests=5.0),
        Target("≤ 1.0 × peer's requests", max_ratio=1.0),
        key="requests",
    )
    assert figure.ratio == pytest.approx(0.8)
    assert figure.met is True


def test_an_absolute_target_needs_no_peer() -> None:
    target = Target("< 20 s", max_value=20.0)
    assert Figure("b", "w", _m(19.0), None, target).met is True
    assert Figure("b", "w", _m(21.0), None, target).met is False
    assert Figure("b", "w", _m(21.0)).met is None


def test_a_command_reports_its_cpu_time(ctx: Context) -> None:
    spin = "import time\nstart = time.process_time()\nwhile time.process_time() - start < 0.3: pass"
    m = measure_commands(ctx, "spin", [[sys.executable, "-c", spin]])
    assert m.cpu_seconds >= 0.3
