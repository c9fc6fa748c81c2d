"""``python -m benchmarks.report RESULTS.json``: the figures of a run as a Markdown table.

For BENCHMARKS.md, the committed record of the latest full run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _side(side: dict[str, Any] | None, unit: str) -> str:
    if side is None:
        return "—"
    value = side["value"]
    shown = f"{value:.4g} s" if unit == "s" else f"{value:.3g} {unit}"
    memory = "computed" if side["details"].get("computed") else f"{side['peak_rss_mib']:.0f} MiB"
    return f"{side['label']}: {shown}, {memory}"


def markdown(results: dict[str, Any]) -> str:
    """The run's context and one table row per figure."""
    machine = results["machine"]
    lines = [
        f"- Date: {results['date']}; command: `{results['command']}`",
        f"- Machine: {machine['cpu']}, {machine['cpus']} CPUs, {machine['memory_gib']} GiB,"
        f" {machine['platform']}; Python {machine['python']}, ONE-api {machine['ONE-api']}",
        f"- Load average (1, 5, 15 min) before: {machine['load_average']},"
        f" after: {results['load_average_after']}",
        "- Sizes: " + ", ".join(f"`{k}={v}`" for k, v in results["sizes"].items()),
        "",
        "| benchmark | work | ours (time, peak RSS) | peer (time, peak RSS) | ours/peer | target |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for f in results["figures"]:
        ratio = "—" if f["ratio"] is None else f"{f['ratio']:.3g}"
        target = (
            "—"
            if f["target"] is None
            else f"{f['target']['text']} → **{'met' if f['met'] else 'MISSED'}**"
        )
        lines.append(
            f"| {f['benchmark']} | {f['work']} | {_side(f['ours'], f['unit'])} |"
            f" {_side(f['peer'], f['unit'])} | {ratio} | {target} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m benchmarks.report RESULTS.json")
    print(markdown(json.loads(Path(sys.argv[1]).read_text())))
