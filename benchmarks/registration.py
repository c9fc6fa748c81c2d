"""Registration of a tree of sessions into the Alyx test server, against ONE-api.

The tree: ``sessions`` sessions of one subject, each with ``files_per_session`` registrable files
of mixed sizes (two large, eight of 1 MiB, the rest 4 KiB). Each side registers it into its own
fresh, seeded ``AlyxTestServer`` (run by the harness process), from a fresh process: our
``RegistrationClient.register_sessions`` against ONE-api's ``RegistrationClient.register_session``
session after session, as an ONE-api script does. Targets: ≤ 0.1 × ONE-api's time; no more HTTP
requests per session than ONE-api (counted by the server, client login included). Then ours
registers the unchanged tree again with its digest cache warm: ≥ 50 × faster than its first run.
Both sides must register every file.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

from benchmarks import data
from benchmarks.core import (
    MIB,
    BenchmarkError,
    Context,
    Figure,
    Measurement,
    Target,
    measure_call,
    set_old_mtimes,
    timed,
)
from one_flows.testing import AlyxTestServer

NAME = "registration"
SIZES = {"sessions": (50, 2), "files_per_session": (40, 10), "large_mib": (32, 1)}
SUBJECT = "algernon"  # seeded in the test server, in lab cortexlab
MEDIUM_FILES = 8


def ours(url: str, username: str, password: str, sessions: list[str], digest_cache: str) -> dict:
    """Register the sessions with one_flows' RegistrationClient."""
    from one_flows.alyx import AlyxClient
    from one_flows.registration import Outcome, RegistrationClient

    def register() -> list:
        with AlyxClient(url, username=username, password=password) as alyx:
            client = RegistrationClient(alyx, digest_cache=digest_cache)
            try:
                return client.register_sessions(sessions)
            finally:
                client.close()

    seconds, reports = timed(register)
    failed = [(r.session_path, r.error) for r in reports if r.error is not None]
    if failed:
        raise BenchmarkError(f"registration failed: {failed[:3]}")
    counts = [r.counts for r in reports]
    return {
        "seconds": seconds,
        "created": sum(c[Outcome.CREATED] for c in counts),
        "unchanged": sum(c[Outcome.UNCHANGED] for c in counts),
    }


def one_api(url: str, username: str, password: str, sessions: list[str], cache_dir: str) -> dict:
    """Register the sessions with ONE-api's RegistrationClient, one after the other."""
    from one.api import ONE
    from one.registration import RegistrationClient

    def register() -> int:
        one = ONE(
            base_url=url,
            username=username,
            password=password,
            silent=True,
            cache_dir=cache_dir,
            cache_rest=None,
        )
        client = RegistrationClient(one)
        return sum(len(client.register_session(s)[1]) for s in sessions)

    seconds, created = timed(register)
    return {"seconds": seconds, "created": created}


def _size(j: int, large: int) -> int:
    if j < 2:
        return large
    return MIB if j < 2 + MEDIUM_FILES else 4096


def make_tree(
    ctx: Context, sessions: int, files: int, large_mib: int, folder: str = "registration-tree"
) -> list[Path]:
    """Write the sessions' files of random bytes, dated an hour back; return the sessions."""
    root = ctx.folder(folder)
    rel = [
        f"cortexlab/Subjects/{SUBJECT}/{data.FIRST_DATE + datetime.timedelta(days=i)}/001"
        for i in range(sessions)
    ]
    data.write_sessions(
        root, rel, data.probe_datasets(files), lambda j, _r: os.urandom(_size(j, large_mib * MIB))
    )
    set_old_mtimes(root)
    return [root / r for r in rel]


def _register_on(
    ctx: Context, server: AlyxTestServer, label: str, side: str, sessions: list[Path], **extra: str
) -> Measurement:
    before = server.request_count()
    m = measure_call(
        ctx,
        label,
        f"{__name__}:{side}",
        url=server.url,
        username=server.username,
        password=server.password,
        sessions=[str(s) for s in sessions],
        **extra,
    )
    m.details["requests_per_session"] = (server.request_count() - before) / len(sessions)
    return m


def run(ctx: Context) -> list[Figure]:
    """Register the tree with both sides, then again with ours; return the figures."""
    sizes = ctx.sizes(NAME, SIZES)
    n, files = sizes["sessions"], sizes["files_per_session"]
    sessions = make_tree(ctx, n, files, sizes["large_mib"])
    digests = str(ctx.folder("registration-digests") / "digests.sqlite")
    with AlyxTestServer() as server:
        server.start()
        first = _register_on(
            ctx, server, "one_flows (cold digest cache)", "ours", sessions, digest_cache=digests
        )
        again = _register_on(
            ctx, server, "one_flows (warm digest cache)", "ours", sessions, digest_cache=digests
        )
    with AlyxTestServer() as server:
        server.start()
        peer = _register_on(
            ctx,
            server,
            "ONE-api RegistrationClient",
            "one_api",
            sessions,
            cache_dir=str(ctx.folder("registration-one-cache")),
        )
    expected = n * files
    if first.details["created"] != expected or peer.details["created"] != expected:
        raise BenchmarkError(
            f"{expected} files to register: one_flows created {first.details['created']}, "
            f"ONE-api {peer.details['created']}"
        )
    if again.details["unchanged"] != expected:
        raise BenchmarkError(f"re-registration left {again.details} of {expected} unchanged")
    work = f"register {n} sessions × {files} files (mixed sizes)"
    return [
        Figure(NAME, work, first, peer, Target("≤ 0.1 × ONE-api", 0.1)),
        Figure(
            NAME,
            work,
            first,
            peer,
            Target("≤ 1.0 × ONE-api's requests per session", 1.0),
            key="requests_per_session",
            unit="requests/session",
        ),
        Figure(
            NAME,
            f"re-register the unchanged tree, vs the first run ({n} sessions)",
            again,
            first,
            Target("≤ 0.02 × the first run (≥ 50 × faster)", 0.02),
        ),
    ]
