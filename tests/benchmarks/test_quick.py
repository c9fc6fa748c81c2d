"""The harness end to end: ``python -m benchmarks --quick`` runs every benchmark and records it.

No timing is asserted: CI runs this to keep the harness working, not to judge speed.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import BENCHMARKS
from benchmarks.core import REPO


def _harness(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "HOME": str(home), "PREFECT_HOME": str(home / ".prefect")}
    env.pop("PREFECT_API_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    tmp_path = tmp_path_factory.mktemp("bench")
    out = tmp_path / "results.json"
    proc = _harness(tmp_path, "--quick", "--out", str(out), "--dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    return proc.stdout, json.loads(out.read_text())


def test_quick_run_prints_a_table_of_every_benchmark(quick_run: tuple[str, dict]) -> None:
    stdout, _ = quick_run
    assert "one-flows benchmarks" in stdout
    for name in BENCHMARKS:
        assert f"│ {name}" in stdout, name


def test_quick_run_records_every_benchmark_with_numbers(quick_run: tuple[str, dict]) -> None:
    _, results = quick_run
    figures = results["figures"]
    assert {f["benchmark"] for f in figures} == set(BENCHMARKS)
    for figure in figures:
        sides = [figure["ours"]] + ([figure["peer"]] if figure["peer"] else [])
        for side in sides:
            for field in ("value", "seconds", "process_seconds", "peak_rss_mib"):
                assert _is_number(side[field]), (figure["work"], side["label"], field)
            assert side["peak_rss_mib"] > 0 or side["details"].get("computed")
        if figure["peer"]:
            assert figure["ratio"] == pytest.approx(
                figure["ours"]["value"] / figure["peer"]["value"]
            )
        if figure["target"]:
            assert isinstance(figure["met"], bool)
            assert ("met" if figure["met"] else "MISSED") in figure["verdict"]
    assert results["quick"] is True
    assert _is_number(results["machine"]["cpus"])


def test_quick_run_uses_the_quick_sizes_of_every_benchmark(quick_run: tuple[str, dict]) -> None:
    _, results = quick_run
    expected = {
        f"{name}.{key}": quick
        for name in BENCHMARKS
        for key, (_, quick) in importlib.import_module(f"benchmarks.{name}").SIZES.items()
    }
    assert results["sizes"] == expected


def test_every_target_of_the_issue_has_a_figure(quick_run: tuple[str, dict]) -> None:
    _, results = quick_run
    targets = {(f["benchmark"], f["target"]["text"]) for f in results["figures"] if f["target"]}
    by_benchmark = {name: sum(1 for b, _ in targets if b == name) for name in BENCHMARKS}
    assert by_benchmark == {
        "hashing": 2,
        "cache_tables": 2,
        "queries": 2,  # table loading, search and list_datasets share one target text
        "flags": 1,
        "registration": 3,
        "prefect_flow": 1,
        "cli_register": 2,  # first run < 20 s, no-op ≤ 2 s
        "remote": 3,  # ≤ 0.5 × ONE-api (search, list, cold, warm), 3 × sequential, no request
    }


def test_an_unknown_size_is_refused_before_anything_runs(tmp_path: Path) -> None:
    proc = _harness(tmp_path, "--quick", "--sizes", "hashing.nope=3")
    assert proc.returncode == 2
    assert "hashing.nope" in proc.stderr
    assert "hashing.large_mib" in proc.stderr
    assert not list(tmp_path.glob("*.json"))


def test_a_malformed_size_is_refused(tmp_path: Path) -> None:
    proc = _harness(tmp_path, "--quick", "--sizes", "large_mib=big")
    assert proc.returncode == 2
    assert "NAME.KEY=INTEGER" in proc.stderr
