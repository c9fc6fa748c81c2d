"""The test server's /sessions filters beyond the recorded ones: ``django=`` lookups as ONE-api
sends them, ``dataset_qc_lte``, and ``datasets`` counting only files on non-personal
repositories."""

from __future__ import annotations

import pytest

from one_flows.alyx import AlyxClient, AlyxServerError
from one_flows.testing import AlyxTestServer


@pytest.fixture
def alyx_client(alyx_server: AlyxTestServer):
    with AlyxClient(
        alyx_server.url, username=alyx_server.username, password=alyx_server.password
    ) as client:
        yield client


def _session(alyx: AlyxClient, date: str) -> str:
    body = {"subject": "algernon", "number": 1, "start_time": f"{date}T10:00:00"}
    return alyx.post("/sessions", body)["id"]


def _ids(alyx: AlyxClient, **params: str) -> list[str]:
    return [s["id"] for s in alyx.list_all("/sessions", params)]


def test_django_lookups_as_one_api_sends_them(alyx_client: AlyxClient) -> None:
    first, second = _session(alyx_client, "2026-07-04"), _session(alyx_client, "2026-07-05")
    assert _ids(alyx_client, django=f"pk,{first}") == [first]
    assert _ids(alyx_client, django=f"pk__in,('{first}',)") == [first]
    assert _ids(alyx_client, django=f"id__in,['{first}', '{second}']") == [second, first]
    assert _ids(
        alyx_client, django="subject__nickname__iexact,ALGERNON,start_time__date,2026-07-05"
    ) == [second]
    assert _ids(alyx_client, django="start_time__date__gte,2026-07-05") == [second]
    with pytest.raises(AlyxServerError, match="Cannot resolve keyword 'colour'"):
        _ids(alyx_client, django="colour,red")


def test_datasets_count_only_files_on_non_personal_repositories(
    alyx_server: AlyxTestServer, alyx_client: AlyxClient
) -> None:
    eid = _session(alyx_client, "2026-07-04")
    alyx_server.add_repository("laptop", "http://laptop.local/")
    alyx_server.store.execute(
        "UPDATE repositories SET globus_is_personal = 1 WHERE name = 'laptop'"
    )
    body = {
        "created_by": "test_user",
        "path": "algernon/2026-07-04/001",
        "filenames": ["alf/spikes.times.npy"],
        "hashes": ["0" * 32],
        "filesizes": [8],
        "name": "laptop",
        "exists": True,
        "labs": "cortexlab",
    }
    alyx_client.post("/register-file", body)
    assert _ids(alyx_client, dataset_types="spikes.times") == [eid]  # the type counts anyway
    assert _ids(alyx_client, datasets="spikes.times.npy") == []  # only on a personal repository
    alyx_client.post("/register-file", {**body, "name": "flatiron_cortexlab"})
    assert _ids(alyx_client, datasets="spikes.times.npy") == [eid]
    assert _ids(alyx_client, datasets="spikes.times") == []  # exact file names


def test_dataset_qc_lte(alyx_client: AlyxClient) -> None:
    eid = _session(alyx_client, "2026-07-04")
    alyx_client.post(
        "/register-file",
        {
            "created_by": "test_user",
            "path": "algernon/2026-07-04/001",
            "filenames": ["alf/spikes.times.npy"],
            "name": "flatiron_cortexlab",
            "labs": "cortexlab",
        },
    )
    [dataset] = alyx_client.list_all("/datasets", {"session": eid})
    alyx_client.patch(dataset["url"], {"qc": "FAIL"})
    assert _ids(alyx_client, dataset_qc_lte="FAIL") == [eid]
    assert _ids(alyx_client, dataset_qc_lte="PASS") == []
