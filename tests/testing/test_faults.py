"""Fault injection of the Alyx test server: each kind, by count and by probability, per endpoint."""

from __future__ import annotations

import pytest
import requests

from one_flows.testing import AlyxTestServer, FaultInjector


@pytest.fixture
def headers(alyx_server: AlyxTestServer) -> dict[str, str]:
    answer = requests.post(
        f"{alyx_server.url}/auth-token",
        data={"username": alyx_server.username, "password": alyx_server.password},
        timeout=10,
    )
    return {"Authorization": f"Token {answer.json()['token']}"}


def _get(server: AlyxTestServer, path: str, headers: dict[str, str], **kw) -> requests.Response:
    return requests.get(f"{server.url}{path}", headers=headers, timeout=kw.pop("timeout", 10), **kw)


def test_status_fault_fires_the_given_number_of_times_as_an_html_page(
    alyx_server: AlyxTestServer,
    headers: dict[str, str],
) -> None:
    alyx_server.faults.add(
        method="GET", path="/labs", kind="status", status=502, html=True, times=2
    )
    first, second, third = (_get(alyx_server, "/labs", headers) for _ in range(3))
    for answer in (first, second):
        assert answer.status_code == 502
        assert answer.headers["Content-Type"].startswith("text/html")
        assert "502 Bad Gateway" in answer.text
    assert third.status_code == 200
    assert third.json()["count"] == 2


def test_status_fault_only_touches_matching_method_and_path(
    alyx_server: AlyxTestServer,
    headers: dict[str, str],
) -> None:
    alyx_server.faults.add(method="POST", path="/sessions", kind="status", status=500)
    assert _get(alyx_server, "/sessions", headers).status_code == 200
    assert _get(alyx_server, "/labs", headers).status_code == 200
    created = requests.post(
        f"{alyx_server.url}/sessions", json={"subject": "algernon"}, headers=headers, timeout=10
    )
    assert created.status_code == 500
    assert created.json() == {"detail": "Internal Server Error", "status_code": 500}
    # nothing was created: the fault answers before the endpoint runs
    assert _get(alyx_server, "/sessions", headers).json()["count"] == 0


def test_429_carries_retry_after(alyx_server: AlyxTestServer, headers: dict[str, str]) -> None:
    alyx_server.faults.add(path="/subjects", kind="status", status=429, retry_after=7, times=1)
    answer = _get(alyx_server, "/subjects", headers)
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "7"
    assert _get(alyx_server, "/subjects", headers).status_code == 200


def test_probability_faults_are_reproducible_with_a_seed() -> None:
    patterns = []
    for _ in range(2):
        with AlyxTestServer() as server:
            server.faults.add(path="/labs", kind="status", status=503, probability=0.5, seed=3)
            token = requests.post(
                f"{server.url}/auth-token",
                data={"username": server.username, "password": server.password},
                timeout=10,
            ).json()["token"]
            auth = {"Authorization": f"Token {token}"}
            patterns.append([_get(server, "/labs", auth).status_code for _ in range(20)])
    assert patterns[0] == patterns[1]
    assert set(patterns[0]) == {200, 503}


def test_delay_makes_a_client_read_timeout_fire(
    alyx_server: AlyxTestServer,
    headers: dict[str, str],
) -> None:
    alyx_server.faults.add(path="/labs", kind="delay", seconds=2.0, times=1)
    with pytest.raises(requests.ReadTimeout):
        _get(alyx_server, "/labs", headers, timeout=0.3)
    assert _get(alyx_server, "/labs", headers).status_code == 200


def test_drop_closes_the_connection_without_an_answer(
    alyx_server: AlyxTestServer,
    headers: dict[str, str],
) -> None:
    alyx_server.faults.add(method="POST", path="/register-file", kind="drop", times=1)
    body = {
        "created_by": "test_user",
        "path": "algernon/2026-01-03/001",
        "filenames": ["alf/spikes.times.npy"],
    }
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{alyx_server.url}/register-file", json=body, timeout=10)
    assert _get(alyx_server, "/labs", headers).status_code == 200
    assert alyx_server.request_count("POST", "/register-file") == 1


def test_clear_removes_every_rule(alyx_server: AlyxTestServer, headers: dict[str, str]) -> None:
    alyx_server.faults.add(kind="status", status=503)
    assert _get(alyx_server, "/labs", headers).status_code == 503
    alyx_server.faults.clear()
    assert _get(alyx_server, "/labs", headers).status_code == 200


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "explode"}, "unknown fault kind"),
        ({"kind": "status", "times": 0}, "times must be a positive count"),
        ({"kind": "status", "probability": 1.5}, "probability must be within"),
        ({"kind": "status", "status": 200}, "needs an error status"),
        ({"kind": "delay", "seconds": -1}, "seconds must not be negative"),
    ],
)
def test_bad_rules_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FaultInjector().add(**kwargs)


def test_counters_count_requests_received_by_method_and_path_prefix(
    alyx_server: AlyxTestServer,
    headers: dict[str, str],
) -> None:
    alyx_server.faults.add(path="/labs", kind="status", status=503, times=1)
    for path in ("/labs", "/labs", "/labs/cortexlab", "/users", "/no-such-endpoint"):
        _get(alyx_server, path, headers)
    assert alyx_server.request_count("GET", "/labs") == 3
    assert alyx_server.request_count(path="/users") == 1
    assert alyx_server.request_count("POST", "/auth-token") == 1
    assert alyx_server.request_count("POST") == 1
    assert alyx_server.request_count() == 6
