"""ONE on an Alyx: our remote ``One`` against ONE-api's remote ``ONE``, on the same test server.

The harness starts an ``AlyxTestServer`` that also serves the files (its data-server role), with
sessions of 22 datasets each (an object of 20 files, ``spikes`` in ``alf/probe00``, and 2 trials
files) registered on it, and a per-request latency injected into every answer, REST and files
alike (``LATENCY_SECONDS``, a delay fault). Each side runs in a fresh process with its own cache
folder and, as a user would, connects, then times (each a median over ``repeats`` calls on
sessions or subjects not asked for before, so that neither side answers from a cache):

- ``search`` with four filters (subject, lab, date range, dataset types);
- ``list_datasets`` of a session;
- ``load_object`` of the 20-file object, cold (nothing cached), then warm (the same call again).

It counts the HTTP requests of each call, and reports the time each call takes beyond the
latency of the requests it sends (no target: where both sides send one request, the latency
bounds the ratio from below).

Ours is also run with one download at a time (``download_workers=1``) as the sequential peer of
the cold load. Targets (issue 15): ours ≤ 0.5 × ONE-api on each, downloads ≥ 3 × faster than
sequential, and a warm load with no request at all.
"""

from __future__ import annotations

import hashlib
import io
import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.core import (
    BenchmarkError,
    Context,
    Figure,
    Measurement,
    Target,
    measure_call,
    timed,
)

NAME = "remote"
SIZES = {"repeats": (5, 2), "file_kib": (256, 16)}
LATENCY_SECONDS = 0.05
OBJECT_FILES = 20
REPOSITORY = "flatiron_cortexlab"


def _session_files(size_kib: int) -> dict[str, bytes]:
    """The files of one session, by relative path: 20 of the spikes object and 2 trials ones."""
    files = {}
    n = size_kib * 1024 // 8
    for i in range(OBJECT_FILES):
        files[f"alf/probe00/spikes.attr{i:02d}.npy"] = _npy(np.full(n, float(i)))
    files["alf/_ibl_trials.intervals.npy"] = _npy(np.ones((50, 2)))
    files["alf/_ibl_trials.probabilityLeft.npy"] = _npy(np.full(50, 0.5))
    return files


def _npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


def _publish(server: Any, root: Path, sessions: int, size_kib: int) -> list[dict[str, str]]:
    """Write and register ``sessions`` sessions (one subject each) on ``server``."""
    from one_flows.alyx import AlyxClient

    for i in range(OBJECT_FILES):
        server.add_dataset_type(f"spikes.attr{i:02d}")
    files = _session_files(size_kib)
    made = []
    with AlyxClient(server.url, username=server.username, password=server.password) as alyx:
        for s in range(sessions):
            subject, date = f"bench{s:03d}", f"2026-03-{1 + s % 28:02d}"
            server.add_subject(subject)
            session = alyx.post(
                "/sessions",
                {
                    "subject": subject,
                    "lab": "cortexlab",
                    "number": 1,
                    "users": ["test_user"],
                    "start_time": f"{date}T10:00:00",
                    "task_protocol": "bench",
                },
            )
            folder = root / "cortexlab" / "Subjects" / subject / date / "001"
            for rel, content in files.items():
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                (folder / rel).write_bytes(content)
            alyx.post(
                "/register-file",
                {
                    "created_by": "test_user",
                    "path": f"{subject}/{date}/001",
                    "filenames": list(files),
                    "hashes": [hashlib.md5(c).hexdigest() for c in files.values()],
                    "filesizes": [len(c) for c in files.values()],
                    "name": REPOSITORY,
                    "exists": True,
                    "labs": "cortexlab",
                },
            )
            made.append({"eid": session["id"], "subject": subject, "date": date})
    return made


def _count_requests() -> Callable[[], int]:
    """Count the HTTP requests this process sends from now on (requests' and urllib's)."""
    import urllib.request

    import requests.adapters

    sent = [0]
    send, open_ = requests.adapters.HTTPAdapter.send, urllib.request.OpenerDirector.open

    def counted_send(self: Any, *args: Any, **kwargs: Any) -> Any:
        sent[0] += 1
        return send(self, *args, **kwargs)

    def counted_open(self: Any, *args: Any, **kwargs: Any) -> Any:
        sent[0] += 1
        return open_(self, *args, **kwargs)

    requests.adapters.HTTPAdapter.send = counted_send
    urllib.request.OpenerDirector.open = counted_open
    return lambda: sent[0]


def _median(function: Callable[[Any], Any], items: list[Any]) -> tuple[float, Any]:
    runs = [timed(lambda item=item: function(item)) for item in items]
    return statistics.median(s for s, _ in runs), runs[-1][1]


def _scenario(one: Any, plan: dict[str, Any], sent: Callable[[], int]) -> dict[str, Any]:
    """The timed calls, the same for both sides, with the requests each sends."""
    sessions = plan["sessions"]
    r = plan["repeats"]
    result: dict[str, Any] = {}

    def measure(key: str, call: Callable[[Any], Any], items: list[Any]) -> Any:
        before = sent()
        result[f"{key}_seconds"], answer = _median(call, items)
        result[f"{key}_requests"] = (sent() - before) / len(items)
        return answer

    found = measure(
        "search",
        lambda s: one.search(
            subject=s["subject"],
            lab="cortexlab",
            date_range=[s["date"], s["date"]],
            dataset_types=["spikes.attr00", "trials.intervals"],
        ),
        sessions[:r],
    )
    listed = measure("list_datasets", lambda s: one.list_datasets(s["eid"]), sessions[r : 2 * r])
    load = sessions[2 * r : 3 * r]

    def load_object(s: dict[str, str]) -> Any:
        return one.load_object(s["eid"], "spikes", collection="alf/probe00")

    loaded = measure("cold", load_object, load)
    measure("warm", load_object, load)
    for key in ("search", "list_datasets"):  # one request after another: their latency adds up
        latency = result[f"{key}_requests"] * LATENCY_SECONDS
        result[f"{key}_overhead_seconds"] = result[f"{key}_seconds"] - latency
    return {
        **result,
        "sessions_found": len(found),
        "datasets_listed": len(listed),
        "attributes_loaded": len(loaded),
    }


def ours(url: str, username: str, password: str, cache_dir: str, plan: dict) -> dict:
    """Our One, connected as a user connects; the scenario, then the sequential cold loads."""
    sent = _count_requests()
    from one_flows.one import One

    one = One(base_url=url, username=username, password=password, cache_dir=cache_dir)
    one.alyx.authenticate()  # ONE-api logs in when constructed; so do we, before the clock
    result = _scenario(one, plan, sent)
    sequential = One(
        base_url=url,
        username=username,
        password=password,
        cache_dir=str(Path(cache_dir) / "sequential"),
        download_workers=1,
    )
    sequential_s, _ = _median(
        lambda s: sequential.load_object(s["eid"], "spikes", collection="alf/probe00"),
        plan["sessions"][2 * plan["repeats"] : 3 * plan["repeats"]],
    )
    return {"seconds": result["cold_seconds"], "sequential_seconds": sequential_s, **result}


def one_api(url: str, username: str, password: str, cache_dir: str, plan: dict) -> dict:
    """ONE-api's remote ONE (its HTTP_DATA_SERVER in the settings file under HOME)."""
    import logging
    import warnings

    sent = _count_requests()
    from one.api import ONE

    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    one = ONE(
        base_url=url,
        username=username,
        password=password,
        mode="remote",
        silent=True,
        cache_dir=cache_dir,
    )
    result = _scenario(one, plan, sent)
    return {"seconds": result["cold_seconds"], **result}


def run(ctx: Context) -> list[Figure]:
    """Publish the sessions, inject the latency, measure both sides."""
    from one_flows.alyx.settings import one_params_key
    from one_flows.testing import AlyxTestServer

    sizes = ctx.sizes(NAME, SIZES)
    r = sizes["repeats"]
    root = ctx.folder("remote-lab")
    with AlyxTestServer() as server:
        files_url = server.serve_files(root)
        server.set_data_url(REPOSITORY, files_url + "cortexlab/Subjects/")
        sessions = _publish(server, root, 3 * r, sizes["file_kib"])
        server.faults.add(kind="delay", seconds=LATENCY_SECONDS)
        plan = {"sessions": sessions, "repeats": r}
        login = {"url": server.url, "username": server.username, "password": server.password}
        home = ctx.folder("remote-home")
        (home / ".one").mkdir(exist_ok=True)
        (home / ".one" / f".{one_params_key(server.url)}").write_text(
            json.dumps(
                {
                    "ALYX_URL": server.url,
                    "ALYX_LOGIN": server.username,
                    "HTTP_DATA_SERVER": files_url.rstrip("/"),
                    "HTTP_DATA_SERVER_LOGIN": None,
                    "HTTP_DATA_SERVER_PWD": None,
                    "CACHE_DIR": str(ctx.folder("remote-one_api")),
                }
            )
        )
        sides = {
            side: measure_call(
                ctx,
                label,
                f"{__name__}:{side}",
                cache_dir=str(ctx.folder(f"remote-{side}")),
                plan=plan,
                env={"HOME": str(side_home)},
                **login,
            )
            for side, label, side_home in (
                ("ours", "one_flows One", ctx.folder("remote-home-ours")),
                ("one_api", "ONE-api remote ONE", home),
            )
        }
    mine, theirs = sides["ours"], sides["one_api"]
    answers = ("sessions_found", "datasets_listed", "attributes_loaded")
    if any(mine.details[k] != theirs.details[k] for k in answers):
        raise BenchmarkError(
            f"remote answers differ: ours {mine.details}, ONE-api {theirs.details}"
        )
    sequential = Measurement(
        "one_flows One, 1 download at a time",
        mine.details["sequential_seconds"],
        mine.peak_rss_mib,
        mine.process_seconds,
        {"cold_seconds": mine.details["sequential_seconds"]},
    )
    half = Target("≤ 0.5 × ONE-api", 0.5)
    latency = f"{LATENCY_SECONDS * 1000:.0f} ms a request"
    files = f"{OBJECT_FILES} files of {sizes['file_kib']} KiB"
    return [
        Figure(
            NAME,
            f"search, 4 filters ({latency}), per call",
            mine,
            theirs,
            half,
            key="search_seconds",
        ),
        Figure(
            NAME,
            f"list_datasets of a session ({latency}), per call",
            mine,
            theirs,
            half,
            key="list_datasets_seconds",
        ),
        Figure(
            NAME,
            f"load_object of {files}, cold ({latency})",
            mine,
            theirs,
            half,
            key="cold_seconds",
        ),
        Figure(
            NAME,
            f"load_object of {files}, warm ({latency})",
            mine,
            theirs,
            half,
            key="warm_seconds",
        ),
        Figure(
            NAME,
            f"load_object of {files}, cold: parallel vs sequential downloads",
            mine,
            sequential,
            Target("≥ 3 × faster than sequential", 1 / 3),
            key="cold_seconds",
        ),
        Figure(
            NAME,
            "HTTP requests of a warm load_object",
            mine,
            None,
            Target("no request", max_value=0),
            key="warm_requests",
            unit="requests",
        ),
        *(
            Figure(NAME, f"{call}: time beyond its requests' latency", mine, theirs, key=key)
            for call, key in (
                ("search", "search_overhead_seconds"),
                ("list_datasets", "list_datasets_overhead_seconds"),
            )
        ),
    ]
