"""The Alyx test server's latency model: costs by endpoint class and per file, bounded workers
whose queue counts in a request's latency, the preset of a real Alyx, and the fixture's switch."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from one_flows.testing import AlyxTestServer, Cost, LatencyModel
from one_flows.testing.latency import endpoint_class


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/sessions", "read"),
        ("HEAD", "/labs/cortexlab", "read"),
        ("GET", "/register-file", "read"),
        ("POST", "/sessions", "session_create"),
        ("POST", "/sessions/", "session_create"),
        ("POST", "/register-file", "register_file"),
        ("POST", "/auth-token", "write"),
        ("PATCH", "/sessions/0b2e9fd4-4b2a-4d4e-9a34-2b5c0c1f7d1e", "write"),
    ],
)
def test_each_request_falls_in_one_endpoint_class(method: str, path: str, expected: str) -> None:
    assert endpoint_class(method, path) == expected


def test_the_alyx_preset_holds_the_measured_figures_of_a_real_server() -> None:
    model = LatencyModel.preset("alyx-3.6")
    assert model.workers == 4
    assert 0.030 <= model.cost("GET", "/sessions") <= 0.045
    assert model.cost("POST", "/sessions") == pytest.approx(0.040, rel=0.1)
    # POST /register-file as measured: 1 file 78 ms, 10 files 390 ms, 40 files 1.39 s.
    for files, measured in ((1, 0.078), (10, 0.390), (40, 1.39)):
        assert model.cost("POST", "/register-file", files) == pytest.approx(measured, rel=0.03)


def test_an_unknown_preset_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown latency preset 'alyx-9'; known: alyx-3\.6"):
        AlyxTestServer(latency="alyx-9")


def test_the_floor_spreads_the_work_over_the_workers_but_not_a_single_request() -> None:
    model = LatencyModel(read=Cost(1.0), register_file=Cost(0.5, per_file=0.25), workers=4)
    assert model.floor([("GET", "/labs", 0)] * 8) == pytest.approx(2.0)
    assert model.floor([("POST", "/register-file", 10), ("GET", "/labs", 0)]) == pytest.approx(3.0)
    unbounded = LatencyModel(read=Cost(1.0))
    assert unbounded.floor([("GET", "/labs", 0)] * 8) == pytest.approx(1.0)
    assert model.floor([]) == 0.0


def test_register_file_is_charged_for_each_file_it_names() -> None:
    """Whatever the answer: the model charges the files a request names, not what it achieves."""
    model = LatencyModel(register_file=Cost(0.01, per_file=0.02), workers=4)
    with AlyxTestServer(latency=model) as server:
        names = ["alf/probe00/spikes.times.npy", "alf/probe00/spikes.amps.npy"]
        body = {"path": "algernon/2026-01-03/001", "filenames": names}
        requests.post(f"{server.url}/register-file", json=body, timeout=10)
        requests.post(f"{server.url}/register-file", json={"filenames": names[0]}, timeout=10)
        served = server.workers.served
    assert [r.files for r in served] == [2, 1]
    assert [r.cost for r in served] == pytest.approx([0.05, 0.03])
    assert all(r.finished - r.started >= r.cost for r in served)


def test_requests_beyond_the_workers_wait_for_one_and_the_wait_counts() -> None:
    """8 requests at once on 4 workers: 4 are served, the others wait until a worker is free,
    so the 8 take about two service times in all."""
    model = LatencyModel(read=Cost(1.5), workers=4)
    with AlyxTestServer(latency=model) as server:
        start = threading.Barrier(8)

        def get(_: int) -> int:
            start.wait()
            return requests.get(f"{server.url}/labs", timeout=30).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(get, range(8)))
        served = server.workers.served
        assert server.workers.max_in_service == 4
    assert len(statuses) == len(served) == 8
    queued = [r for r in served if r.queued]
    assert 1 <= len(queued) <= 4  # 4 when all 8 arrive within a service time, as they should
    first_free = min(r.finished for r in served)
    for r in queued:
        # A waiting request starts only once a worker is free, and its wait counts.
        assert r.started >= first_free
        assert r.waited > 0
        assert r.finished - r.arrived >= r.waited + r.cost
    # Hence two service times in all, where unbounded workers would take one.
    assert max(r.finished for r in served) - min(r.started for r in served) >= 2 * model.read.of()


def test_without_a_model_the_server_answers_at_once_and_unbounded() -> None:
    with AlyxTestServer() as server:
        requests.get(f"{server.url}/labs", timeout=10)
        (served,) = server.workers.served
    assert server.workers.model == LatencyModel()
    assert served.cost == 0.0 and not served.queued


@pytest.mark.parametrize("alyx_server", ["alyx-3.6"], indirect=True)
def test_the_fixture_takes_a_preset_by_indirect_parametrisation(
    alyx_server: AlyxTestServer,
) -> None:
    assert alyx_server.workers.model == LatencyModel.preset("alyx-3.6")
    requests.get(f"{alyx_server.url}/labs", timeout=10)
    (served,) = alyx_server.workers.served
    assert served.cost == LatencyModel.preset("alyx-3.6").read.seconds


def test_the_fixture_answers_at_once_by_default(alyx_server: AlyxTestServer) -> None:
    assert alyx_server.workers.model == LatencyModel()


def test_downloads_from_the_data_server_hold_no_alyx_worker(tmp_path) -> None:
    (tmp_path / "spikes.times.npy").write_bytes(b"0123")
    with AlyxTestServer(latency="alyx-3.6") as server:
        base = server.serve_files(tmp_path)
        answer = requests.get(f"{base}spikes.times.npy", timeout=10)
        requests.get(f"{server.url}/labs", timeout=10)
        served = server.workers.served
    assert answer.content == b"0123"
    assert [r.path for r in served] == ["/labs"]
