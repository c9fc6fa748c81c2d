"""Registration of a tree of sessions into the Alyx test server, against ONE-api.

The tree: ``sessions`` sessions of one subject, each with ``files_per_session`` registrable files
of mixed sizes (two large, eight of 1 MiB, the rest 4 KiB). Each side registers it into its own
fresh, seeded ``AlyxTestServer`` (run by the harness process), from a fresh process: our
``RegistrationClient.register_sessions`` against ONE-api's ``RegistrationClient.register_session``
session after session, as an ONE-api script does. Targets: ≤ 0.1 × ONE-api's time; no more HTTP
requests per session than ONE-api (counted by the server, client login included). Then ours
registers the unchanged tree again with its digest cache warm: ≥ 50 × faster than its first run.
Both sides must register every file.

The test server answers in a millisecond; a real Alyx does not. Both sides register the tree
again, each into a fresh server with the latency model of a real Alyx 3.6 (`REALISTIC`: 4
workers, reads 38 ms, a session created in 40 ms, ``POST /register-file`` 45 ms + 33.5 ms per
file). ONE-api's time is mostly its hashing (iblutil's md5 allocates a 256 MiB buffer for each
file), so it runs once more hashing nothing (``max_md5_size=1``): its requests alone. Beside ours
is the floor the model sets (`floor`): the least time its 4 workers need to serve the fewest
requests that can register the tree.
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
    computed,
    measure_call,
    set_old_mtimes,
    timed,
)
from one_flows.testing import AlyxTestServer, LatencyModel

NAME = "registration"
SIZES = {"sessions": (50, 2), "files_per_session": (40, 10), "large_mib": (32, 1)}
SUBJECT = "algernon"  # seeded in the test server, in lab cortexlab
MEDIUM_FILES = 8
REALISTIC = "alyx-3.6"
"""The latency preset of the realistic server: Alyx 3.6 on PostgreSQL, gunicorn's 4 workers."""


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


def one_api(
    url: str,
    username: str,
    password: str,
    sessions: list[str],
    cache_dir: str,
    max_md5_size: int | None = None,
) -> dict:
    """Register the sessions with ONE-api's RegistrationClient, one after the other.

    With ``max_md5_size=1`` it hashes nothing: its requests alone.
    """
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

        def one_session(session: str) -> int:
            if max_md5_size is None:
                return len(client.register_session(session)[1])
            # What register_session does, with the option it does not pass on.
            client.register_session(session, file_list=False)
            files = list(client.find_files(session))
            return len(client.register_files(files, max_md5_size=max_md5_size))

        return sum(one_session(s) for s in sessions)

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


def floor(model: LatencyModel, sessions: int, files: int) -> Measurement:
    """The least time a server of ``model`` needs to register ``sessions`` new sessions.

    The fewest requests that can do it: one login, then per session one creation and one
    ``POST /register-file`` naming its ``files`` files, served by the model's workers.
    """
    per_session = [("POST", "/sessions", 0), ("POST", "/register-file", files)]
    seconds = model.floor([("POST", "/auth-token", 0), *per_session * sessions])
    return computed(f"floor of the latency model ({model.workers} workers)", seconds)


def _register_on(
    ctx: Context, server: AlyxTestServer, label: str, side: str, sessions: list[Path], **extra: str
) -> Measurement:
    before = server.request_count()
    server.workers.reset()
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
    m.details["server_seconds"] = sum(r.cost for r in server.workers.served)
    m.details["server_waits"] = sum(r.queued for r in server.workers.served)
    return m


def _check(expected: int, ours: Measurement, peer: Measurement) -> None:
    if ours.details["created"] != expected or peer.details["created"] != expected:
        raise BenchmarkError(
            f"{expected} files to register: one_flows created {ours.details['created']}, "
            f"ONE-api {peer.details['created']}"
        )


def run(ctx: Context) -> list[Figure]:
    """Register the tree with both sides, then again with ours; then both on a realistic server."""
    sizes = ctx.sizes(NAME, SIZES)
    n, files = sizes["sessions"], sizes["files_per_session"]
    sessions = make_tree(ctx, n, files, sizes["large_mib"])
    digests = str(ctx.folder("registration-digests") / "digests.sqlite")
    with AlyxTestServer() as server:
        first = _register_on(
            ctx, server, "one_flows (cold digest cache)", "ours", sessions, digest_cache=digests
        )
        again = _register_on(
            ctx, server, "one_flows (warm digest cache)", "ours", sessions, digest_cache=digests
        )
    with AlyxTestServer() as server:
        peer = _register_on(
            ctx,
            server,
            "ONE-api RegistrationClient",
            "one_api",
            sessions,
            cache_dir=str(ctx.folder("registration-one-cache")),
        )
    model = LatencyModel.preset(REALISTIC)
    with AlyxTestServer(latency=model) as server:
        slow = _register_on(
            ctx,
            server,
            "one_flows (cold digest cache)",
            "ours",
            sessions,
            digest_cache=str(ctx.folder("registration-digests-realistic") / "digests.sqlite"),
        )
    with AlyxTestServer(latency=model) as server:
        slow_peer = _register_on(
            ctx,
            server,
            "ONE-api RegistrationClient",
            "one_api",
            sessions,
            cache_dir=str(ctx.folder("registration-one-cache-realistic")),
        )
    with AlyxTestServer(latency=model) as server:
        requests_only = _register_on(
            ctx,
            server,
            "ONE-api RegistrationClient, no md5 (max_md5_size=1)",
            "one_api",
            sessions,
            cache_dir=str(ctx.folder("registration-one-cache-no-md5")),
            max_md5_size=1,
        )
    expected = n * files
    _check(expected, first, peer)
    _check(expected, slow, slow_peer)
    _check(expected, slow, requests_only)
    if again.details["unchanged"] != expected:
        raise BenchmarkError(f"re-registration left {again.details} of {expected} unchanged")
    work = f"register {n} sessions × {files} files (mixed sizes)"
    realistic = f"{work}, on an Alyx with real costs ({REALISTIC}: 4 workers, 45 ms + 33.5 ms/file)"
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
        Figure(NAME, realistic, slow, slow_peer),
        Figure(
            NAME,
            "the same, vs ONE-api's requests alone (it hashes nothing, ours hashes every file)",
            slow,
            requests_only,
        ),
        Figure(
            NAME,
            f"the same on the realistic server, vs the floor its latency model sets ({n} sessions)",
            slow,
            floor(model, n, files),
        ),
    ]
