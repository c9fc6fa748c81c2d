"""The Alyx test server's lifecycle and controls: restart, file databases, tokens, throttling,
the pytest fixture, seed helpers and concurrent clients."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from one_flows.testing import AlyxTestServer


def _login(server: AlyxTestServer) -> dict[str, str]:
    answer = requests.post(
        f"{server.url}/auth-token",
        data={"username": server.username, "password": server.password},
        timeout=10,
    )
    assert answer.status_code == 200
    return {"Authorization": f"Token {answer.json()['token']}"}


def _create_session(server: AlyxTestServer, headers: dict[str, str], day: str) -> str:
    body = {"subject": "algernon", "number": 1, "start_time": f"{day}T10:00:00"}
    answer = requests.post(f"{server.url}/sessions", json=body, headers=headers, timeout=10)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def _register(server: AlyxTestServer, filenames: list[str]) -> requests.Response:
    body = {
        "created_by": server.username,
        "path": "algernon/2026-01-03/001",
        "filenames": filenames,
        "hashes": [None] * len(filenames),
        "filesizes": [100] * len(filenames),
        "name": "flatiron_cortexlab",
        "labs": "cortexlab",
        "exists": True,
        "default": True,
        "check_protected": False,
    }
    return requests.post(f"{server.url}/register-file", json=body, timeout=30)


def test_fixture_serves_the_seeded_state(alyx_server: AlyxTestServer) -> None:
    assert alyx_server.url.startswith("http://127.0.0.1:")
    headers = _login(alyx_server)
    types = requests.get(f"{alyx_server.url}/dataset-types", headers=headers, timeout=10).json()
    assert types["count"] == 121
    subject = requests.get(f"{alyx_server.url}/subjects/algernon", headers=headers, timeout=10)
    assert subject.json()["lab"] == "cortexlab"


def test_restart_keeps_port_data_and_tokens() -> None:
    with AlyxTestServer() as server:
        headers = _login(server)
        session_id = _create_session(server, headers, "2026-01-03")
        url = server.url
        server.restart()
        assert server.url == url
        answer = requests.get(f"{url}/sessions/{session_id}", headers=headers, timeout=10)
        assert answer.status_code == 200
        assert answer.json()["start_time"] == "2026-01-03T10:00:00"


def test_stopped_server_refuses_connections() -> None:
    server = AlyxTestServer().start()
    url = server.url
    server.stop()
    try:
        requests.get(f"{url}/labs", timeout=2)
    except requests.ConnectionError:
        pass
    else:
        raise AssertionError("a stopped server answered")
    finally:
        server.close()


def test_file_database_is_shared_by_a_new_server_object(tmp_path: Path) -> None:
    db = tmp_path / "alyx.sqlite"
    with AlyxTestServer(db) as first:
        session_id = _create_session(first, _login(first), "2026-01-03")
    first.close()
    with AlyxTestServer(db) as second:
        headers = _login(second)
        answer = requests.get(f"{second.url}/sessions/{session_id}", headers=headers, timeout=10)
        assert answer.status_code == 200
        # opening the file again does not seed it twice
        users = requests.get(f"{second.url}/users", headers=headers, timeout=10).json()
        assert users["count"] == 1
    second.close()


def test_unseeded_server_starts_empty() -> None:
    with AlyxTestServer(seed=False) as server:
        answer = requests.post(
            f"{server.url}/auth-token",
            data={"username": server.username, "password": server.password},
            timeout=10,
        )
        assert answer.status_code == 400


def test_expired_tokens_are_invalid_until_the_next_login(alyx_server: AlyxTestServer) -> None:
    headers = _login(alyx_server)
    alyx_server.expire_tokens()
    answer = requests.get(f"{alyx_server.url}/labs", headers=headers, timeout=10)
    assert answer.status_code == 403
    assert answer.json() == {"detail": "Invalid token.", "status_code": 403}
    fresh = _login(alyx_server)
    assert fresh != headers
    assert requests.get(f"{alyx_server.url}/labs", headers=fresh, timeout=10).status_code == 200


def test_user_rate_limit_answers_429_with_retry_after() -> None:
    with AlyxTestServer(throttle_per_minute=3) as server:
        headers = _login(server)  # anonymous: counted apart from test_user's requests
        statuses = [
            requests.get(f"{server.url}/labs", headers=headers, timeout=10) for _ in range(4)
        ]
        assert [a.status_code for a in statuses] == [200, 200, 200, 429]
        assert int(statuses[-1].headers["Retry-After"]) > 0
        assert statuses[-1].json()["status_code"] == 429


def test_seed_helpers_add_usable_records(alyx_server: AlyxTestServer) -> None:
    alyx_server.add_user("ada")
    alyx_server.add_repository("local_repo", "http://files.example/Subjects/")
    alyx_server.add_lab("adalab", repositories=["local_repo"])
    alyx_server.add_subject("zuzu", lab="adalab", responsible_user="ada")
    alyx_server.add_dataset_type("zuzu.things", "zuzu.things*.npy")
    headers = _login(alyx_server)
    body = {"subject": "zuzu", "start_time": "2026-02-01T09:00:00", "number": 2}
    session = requests.post(f"{alyx_server.url}/sessions", json=body, headers=headers, timeout=10)
    assert session.json()["lab"] == "adalab"
    registered = requests.post(
        f"{alyx_server.url}/register-file",
        json={
            "created_by": "ada",
            "path": "zuzu/2026-02-01/002",
            "filenames": ["alf/zuzu.things.npy"],
            "name": "local_repo",
            "labs": "adalab",
            "exists": True,
        },
        timeout=10,
    )
    assert registered.status_code == 201, registered.text
    (dataset,) = registered.json()
    assert dataset["dataset_type"] == "zuzu.things"
    assert dataset["file_records"][0]["data_repository"] == "local_repo"
    user = requests.get(f"{alyx_server.url}/users/ada", headers=headers, timeout=10).json()
    assert user["subjects_responsible"] == ["zuzu"]


def test_parallel_registrations_leave_a_consistent_state(alyx_server: AlyxTestServer) -> None:
    headers = _login(alyx_server)
    session_id = _create_session(alyx_server, headers, "2026-01-03")
    own_files = [f"alf/probe{i:02d}/spikes.times.npy" for i in range(8)]

    def register(own: str) -> requests.Response:
        return _register(alyx_server, [own, "alf/_ibl_trials.table.pqt"])

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(register, own_files))
    assert [a.status_code for a in answers] == [201] * 8
    shared_ids = {a.json()[1]["id"] for a in answers}
    assert len(shared_ids) == 1  # get-or-create: every thread got the same dataset
    datasets = requests.get(
        f"{alyx_server.url}/datasets", params={"session": session_id}, headers=headers, timeout=10
    ).json()
    assert datasets["count"] == 9
    files = requests.get(f"{alyx_server.url}/files", headers=headers, timeout=10).json()
    assert files["count"] == 9
    collections = sorted(d["collection"] for d in datasets["results"])
    assert collections == ["alf", *(f"alf/probe{i:02d}" for i in range(8))]


NAMED_DETAILS = [
    ("/users", "test_user", "username", "LabMember"),
    ("/labs", "cortexlab", "name", "Lab"),
    ("/locations", "cortexlab_rig1", "name", "LabLocation"),
    ("/water-type", "Hydrogel", "name", "WaterType"),
    ("/data-formats", "npy", "name", "DataFormat"),
    ("/data-repository", "flatiron_cortexlab", "name", "DataRepository"),
    ("/dataset-types", "spikes.times", "name", "DatasetType"),
]


@pytest.mark.parametrize(("endpoint", "name", "key", "model"), NAMED_DETAILS)
def test_named_details_and_their_404s(
    alyx_server: AlyxTestServer, endpoint: str, name: str, key: str, model: str
) -> None:
    headers = _login(alyx_server)
    listed = requests.get(f"{alyx_server.url}{endpoint}?{key}={name}", headers=headers).json()
    assert [item[key] for item in listed["results"]] == [name]
    detail = requests.get(f"{alyx_server.url}{endpoint}/{name}", headers=headers)
    assert detail.status_code == 200 and detail.json() == listed["results"][0]
    missing = requests.get(f"{alyx_server.url}{endpoint}/nothing-here", headers=headers)
    assert missing.status_code == 404
    assert missing.json() == {"detail": f"No {model} matches the given query.", "status_code": 404}


def test_revisions_are_created_listed_and_read_by_name(alyx_server: AlyxTestServer) -> None:
    headers = _login(alyx_server)
    url = f"{alyx_server.url}/revisions"
    body = {"name": "2026-03-01", "description": "resort"}
    created = requests.post(url, json=body, headers=headers)
    assert created.status_code == 201
    again = requests.post(url, json={"name": "2026-03-01"}, headers=headers)
    assert again.status_code == 400 and "name" in again.json()
    detail = requests.get(f"{url}/2026-03-01", headers=headers).json()
    assert detail == created.json() and detail["description"] == "resort"
    listed = requests.get(url, headers=headers).json()["results"]
    assert [r["name"] for r in listed] == ["2026-03-01"]
