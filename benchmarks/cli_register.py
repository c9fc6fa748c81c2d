"""``one-flows register`` on the sample data as people run it: the whole command, three ways.

``one-flows sample DIR`` writes the sample sessions (not timed), then ``one-flows register DIR``
registers them into ONE cache tables in DIR, with no Prefect server configured, so the time is
the whole process: the interpreter, the imports and the boot of Prefect's embedded API.

- first run: on a fresh ``PREFECT_HOME``, where Prefect creates its database. Target: < 20 s.
- second run: a new sample tree, on the ``PREFECT_HOME`` of the first run.
- no-op: the command again on the registered tree, where no flag is left. Target: ≤ 2 s.

Beside each is the library's time for the same work, in a process of its own: finding, claiming
and registering the flagged sessions into cache tables (``prefect_flow.library``), or finding
that no flagged session is ready (`ready_flags`). ONE-api has no such command. Every sample
session must end in the tables.
"""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from benchmarks.core import (
    REPO,
    BenchmarkError,
    Context,
    Figure,
    Measurement,
    Target,
    best_of,
    measure_call,
    measure_commands,
    timed,
)

NAME = "cli_register"
SIZES = {"sessions_per_subject": (2, 1)}


def _command() -> str:
    beside = Path(sys.executable).parent / "one-flows"
    found = str(beside) if beside.exists() else shutil.which("one-flows")
    if found is None:
        raise BenchmarkError("the one-flows command is not installed (pip install -e .)")
    return found


def ready_flags(root: str) -> dict:
    """Find the flagged sessions under ``root`` that are ready to register."""
    from one_flows.flags import find_flags, is_quiet

    seconds, ready = timed(lambda: [f for f in find_flags(root) if is_quiet(f.session_path, 0)])
    return {"seconds": seconds, "ready": len(ready)}


def _registered(root: Path, sessions: int, who: str) -> None:
    registered = len(pd.read_parquet(root / "sessions.pqt"))
    if registered != sessions:
        raise BenchmarkError(f"{who} put {registered} of {sessions} sessions in the tables")


def run(ctx: Context) -> list[Figure]:
    """Time the register command on sample trees, and the library on the same work."""
    sizes = ctx.sizes(NAME, SIZES)
    command = _command()
    # A home of its own: ONE-api parameter files left by other benchmarks would make the command
    # register into their (stopped) Alyx test server instead of cache tables.
    home = ctx.folder("cli-home")
    env = {**ctx.env, "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    counter = itertools.count()

    def sample() -> tuple[Path, int, dict[str, str]]:
        """A new sample tree, and an environment with a cold digest cache of its own."""
        i = next(counter)
        root = ctx.folder(f"cli-sample-{i}")
        shutil.rmtree(root)
        per_subject = str(sizes["sessions_per_subject"])
        wrote = subprocess.run(
            [command, "sample", str(root), "--sessions-per-subject", per_subject],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        sessions = int(re.search(r"Wrote (\d+) sessions", wrote).group(1))
        return root, sessions, {"ONE_FLOWS_CACHE_DIR": str(home / ".cache" / f"one_flows-{i}")}

    def register(label: str, prefect_home: Path) -> Measurement:
        root, sessions, own = sample()
        m = measure_commands(
            ctx,
            label,
            [[command, "register", str(root)]],
            env={**env, **own, "PREFECT_HOME": str(prefect_home)},
        )
        _registered(root, sessions, "one-flows register")
        m.details.update(sessions=sessions, root=str(root), prefect_home=str(prefect_home))
        return m

    def library() -> Measurement:
        root, sessions, own = sample()
        label = "library (flags + RegistrationClient)"
        m = measure_call(ctx, label, "benchmarks.prefect_flow:library", env=own, root=str(root))
        _registered(root, sessions, "the library")
        return m

    first = best_of(
        ctx.repeats,
        lambda: register("one-flows register", ctx.folder(f"cli-prefect-home-{next(counter)}")),
    )
    second = best_of(
        ctx.repeats, lambda: register("one-flows register", Path(first.details["prefect_home"]))
    )
    registered = second.details["root"]
    noop = best_of(
        ctx.repeats,
        lambda: measure_commands(
            ctx,
            "one-flows register",
            [[command, "register", registered]],
            env={**env, "PREFECT_HOME": first.details["prefect_home"]},
        ),
    )
    if "Nothing to register" not in noop.details["stdout"][0]:
        raise BenchmarkError(f"the no-op run did not say so: {noop.details['stdout'][0][-500:]}")
    lib = best_of(ctx.repeats, library)
    lib_noop = best_of(
        ctx.repeats,
        lambda: measure_call(
            ctx, "library: find the ready flags", f"{__name__}:ready_flags", root=registered
        ),
    )
    n = first.details["sessions"]
    return [
        Figure(
            NAME,
            f"one-flows register of {n} sample sessions, first run on a fresh PREFECT_HOME"
            " (whole process)",
            first,
            lib,
            Target("< 20 s", max_value=20.0),
        ),
        Figure(
            NAME,
            f"the same, second run ({n} new sample sessions, the same PREFECT_HOME)",
            second,
            lib,
        ),
        Figure(
            NAME,
            "one-flows register with nothing to register (no flag left), whole process",
            noop,
            lib_noop,
            Target("≤ 2 s", max_value=2.0),
        ),
    ]
