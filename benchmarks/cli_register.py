"""``one-flows register`` on the sample data, as a new user first runs it: the whole command.

``one-flows sample DIR`` writes the sample sessions (not timed), then ``one-flows register DIR``
registers them into ONE cache tables in DIR, with no Prefect server configured, so the time
includes the interpreter, the imports and the boot of Prefect's embedded API. Target: < 20 s.
There is no peer: ONE-api has no such command. Every sample session must end in the tables.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from benchmarks.core import REPO, BenchmarkError, Context, Figure, Target, best_of, measure_commands

NAME = "cli_register"
SIZES = {"sessions_per_subject": (2, 1)}


def _command() -> str:
    beside = Path(sys.executable).parent / "one-flows"
    found = str(beside) if beside.exists() else shutil.which("one-flows")
    if found is None:
        raise BenchmarkError("the one-flows command is not installed (pip install -e .)")
    return found


def run(ctx: Context) -> list[Figure]:
    """Write the sample tree, then time the register command on it."""
    sizes = ctx.sizes(NAME, SIZES)
    command = _command()
    root = ctx.folder("cli-sample")
    # A home of its own: ONE-api parameter files left by other benchmarks would make the command
    # register into their (stopped) Alyx test server instead of cache tables.
    home = ctx.folder("cli-home")
    env = {**ctx.env, "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    env["ONE_FLOWS_CACHE_DIR"] = str(home / ".cache" / "one_flows")
    env["PREFECT_HOME"] = str(home / ".prefect")

    def register() -> object:
        # A fresh tree each time: a registered session's flag is gone.
        shutil.rmtree(root)
        wrote = subprocess.run(
            [
                command,
                "sample",
                str(root),
                "--sessions-per-subject",
                str(sizes["sessions_per_subject"]),
            ],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        sessions = int(re.search(r"Wrote (\d+) sessions", wrote).group(1))
        m = measure_commands(
            ctx, "one-flows register (embedded API)", [[command, "register", str(root)]], env=env
        )
        registered = len(pd.read_parquet(root / "sessions.pqt"))
        if registered != sessions:
            raise BenchmarkError(
                f"one-flows register put {registered} of {sessions} sessions in the tables"
            )
        m.details["sessions"] = sessions
        return m

    m = best_of(ctx.repeats, register)
    return [
        Figure(
            NAME,
            f"one-flows register of {m.details['sessions']} sample sessions, boot included",
            m,
            target=Target("< 20 s", max_value=20.0),
        )
    ]
