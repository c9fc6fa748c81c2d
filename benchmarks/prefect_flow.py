"""The Prefect flow against calling the library directly, for the same registration work.

The work: register every flagged session of a tree (as registration.py makes it, plus a
``create_me.flag`` per session) into a fresh Alyx test server, with a cold digest cache. The flow
``register-new-sessions`` runs against a running ``PrefectServer`` (started and warmed by a
flow run, not timed); the library side does what the flow does without Prefect: find the flags,
claim them, register the sessions (``RegistrationClient.register_sessions``, 4 at a time like
the flow) and complete the claims. Target: flow ≤ 1.2 × library. The flow is measured again with
Prefect's flow-run heartbeats off, and so is a trivial flow, to show what the heartbeat thread
costs (Prefect joins it at the end of each run, and it sleeps in whole seconds). Separately, the
boot of Prefect's ephemeral server (no server configured): a trivial flow run without a server
against one with a running server. The flow and the library run again against an Alyx test
server with the latency model of a real Alyx (``registration.REALISTIC``), the flow beside the
floor that model sets as well.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

from benchmarks.core import (
    BenchmarkError,
    Context,
    Figure,
    Measurement,
    Target,
    measure_call,
    timed,
)
from benchmarks.registration import REALISTIC, floor, make_tree
from one_flows.testing import AlyxTestServer, LatencyModel
from one_flows.testing.prefect_server import PrefectServer

NAME = "prefect_flow"
SIZES = {"sessions": (20, 2), "files_per_session": (40, 10), "large_mib": (32, 1)}
FLAG = "create_me.flag"
PARALLEL_SESSIONS = 4


def library(root: str, url: str | None = None) -> dict:
    """Find, claim, register and complete the flagged sessions with the library alone.

    Into the Alyx at ``url``, or into ONE cache tables in ``root`` without one.
    """
    from one_flows import flags
    from one_flows.alyx import AlyxClient
    from one_flows.registration import RegistrationClient
    from one_flows.targets import LocalTarget

    def register() -> list:
        claims = [flags.claim(f, "benchmark-library") for f in flags.find_flags(root)]
        with contextlib.ExitStack() as stack:
            target = LocalTarget(root) if url is None else stack.enter_context(AlyxClient(url))
            client = RegistrationClient(target, max_workers=PARALLEL_SESSIONS)
            stack.callback(client.close)
            reports = client.register_sessions([c.flag.session_path for c in claims])
        for claim, report in zip(claims, reports, strict=True):
            if report.ok:
                flags.complete(claim)
        return reports

    seconds, reports = timed(register)
    return {"seconds": seconds, "registered": sum(r.ok for r in reports)}


@contextlib.contextmanager
def _heartbeats(on: bool) -> Iterator[None]:
    """Prefect's flow-run heartbeats as configured (on), or off."""
    if on:
        yield
        return
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def flow(root: str, url: str, heartbeats: bool = True) -> dict:
    """Run the register-new-sessions flow against the configured Prefect server."""
    from flows.register import register_new_sessions

    with _heartbeats(heartbeats):
        seconds, summary = timed(
            lambda: register_new_sessions(
                root=Path(root),
                alyx=url,
                quiet_seconds=0,
                max_parallel_sessions=PARALLEL_SESSIONS,
            )
        )
    return {"seconds": seconds, "registered": len(summary.by_status("registered"))}


def trivial_flow(heartbeats: bool = True) -> dict:
    """Run a flow that does nothing: Prefect's own cost of a flow run."""
    from prefect import flow as prefect_flow

    @prefect_flow(name="benchmark-trivial")
    def nothing() -> int:
        return 0

    with _heartbeats(heartbeats):
        return {"seconds": timed(nothing)[0]}


def warm_up() -> dict:
    """Run a flow with one task, untimed: a started server answers its first runs slowly."""
    from prefect import flow as prefect_flow
    from prefect import task
    from prefect.cache_policies import NO_CACHE

    @task(cache_policy=NO_CACHE)
    def one() -> int:
        return 1

    @prefect_flow(name="benchmark-warm-up")
    def first() -> int:
        return one()

    first()
    return {}


def _register(
    ctx: Context,
    label: str,
    side: str,
    sessions: list[Path],
    env: dict,
    latency: str | None = None,
    **kwargs: bool,
) -> Measurement:
    for session in sessions:
        (session / FLAG).touch()
    root = sessions[0].parents[3]
    with AlyxTestServer(latency=latency) as alyx:
        # Each measurement hashes from a cold digest cache of its own.
        env = {
            **env,
            "ALYX_LOGIN": alyx.username,
            "ALYX_PASSWORD": alyx.password,
            "ONE_FLOWS_CACHE_DIR": str(
                ctx.folder(f"digests-{latency}-" + re.sub(r"\W+", "-", label))
            ),
        }
        m = measure_call(
            ctx, label, f"{__name__}:{side}", env=env, root=str(root), url=alyx.url, **kwargs
        )
    if m.details["registered"] != len(sessions):
        raise BenchmarkError(f"{label} registered {m.details['registered']} of {len(sessions)}")
    return m


def run(ctx: Context) -> list[Figure]:
    """Measure the flow and the library on the same tree, on the fast and the realistic Alyx
    test server, then the ephemeral boot."""
    sizes = ctx.sizes(NAME, SIZES)
    n, files = sizes["sessions"], sizes["files_per_session"]
    sessions = make_tree(ctx, n, files, sizes["large_mib"], folder="prefect-tree")
    with PrefectServer(ctx.folder("prefect-server")) as server:
        env = server.environment
        # A lab's server is long-running: its first answers (lazy imports, new database
        # connections, ~0.4 s) are not charged to the flow measured below.
        measure_call(ctx, "warm-up flow", f"{__name__}:warm_up", env=env)
        lib = _register(ctx, "library (flags + RegistrationClient)", "library", sessions, {})
        run_flow = _register(ctx, "register-new-sessions flow", "flow", sessions, env)
        quiet_flow = _register(ctx, "flow, heartbeats off", "flow", sessions, env, heartbeats=False)
        slow_lib = _register(
            ctx, "library (flags + RegistrationClient)", "library", sessions, {}, REALISTIC
        )
        slow_flow = _register(ctx, "register-new-sessions flow", "flow", sessions, env, REALISTIC)
        served = measure_call(
            ctx, "trivial flow, running server", f"{__name__}:trivial_flow", env=env
        )
        quiet = measure_call(
            ctx,
            "trivial flow, heartbeats off",
            f"{__name__}:trivial_flow",
            env=env,
            heartbeats=False,
        )
    ephemeral = measure_call(
        ctx,
        "trivial flow, ephemeral server",
        f"{__name__}:trivial_flow",
        env={
            "PREFECT_HOME": str(ctx.folder("prefect-ephemeral-home")),
            # Prefect gives up after 20 s; a first boot on a busy machine (migrations) can take
            # longer, and this figure is the time it takes, not whether it beats a limit.
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        },
    )
    work = f"register {n} flagged sessions × {files} files"
    return [
        Figure(NAME, work, run_flow, lib, Target("≤ 1.2 × the library", 1.2)),
        Figure(NAME, f"the same, Prefect's heartbeats off ({n} sessions)", quiet_flow, lib),
        Figure(NAME, f"{work}, on an Alyx with real costs ({REALISTIC})", slow_flow, slow_lib),
        Figure(
            NAME,
            f"the same on the realistic server, vs the floor its latency model sets ({n} sessions)",
            slow_flow,
            floor(LatencyModel.preset(REALISTIC), n, files),
        ),
        Figure(NAME, "Prefect's heartbeats: trivial flow, on vs off", served, quiet),
        Figure(NAME, "ephemeral server boot: trivial flow, vs a running server", ephemeral, served),
    ]
