"""The test server as a data repository's HTTP server (`AlyxTestServer.serve_files`)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import requests

from one_flows.testing import AlyxTestServer

DATASET = str(uuid.uuid4())
CONTENT = bytes(range(256)) * 40  # 10 KiB


@pytest.fixture
def served(alyx_server: AlyxTestServer, tmp_path: Path) -> tuple[AlyxTestServer, str]:
    """The server serving a folder with one file; the URL of that file with a UUID in its name."""
    folder = tmp_path / "cortexlab/Subjects/algernon/2026-07-04/001/alf/#2026-07-05#"
    folder.mkdir(parents=True)
    (folder / "spikes.times.npy").write_bytes(CONTENT)
    base = alyx_server.serve_files(tmp_path)
    url = f"{base}cortexlab/Subjects/algernon/2026-07-04/001/alf/%232026-07-05%23/"
    return alyx_server, f"{url}spikes.times.{DATASET}.npy"


def test_files_are_served_with_the_uuid_dropped_from_their_name(served) -> None:
    server, url = served
    answer = requests.get(url, timeout=10)
    assert answer.status_code == 200
    assert answer.content == CONTENT
    assert answer.headers["Accept-Ranges"] == "bytes"
    assert requests.head(url, timeout=10).headers["Content-Length"] == str(len(CONTENT))
    assert requests.get(url.replace("spikes", "nothing"), timeout=10).status_code == 404
    escape = f"{server.url}/data/%2E%2E/%2E%2E/etc/passwd"
    assert requests.get(escape, timeout=10).status_code == 404
    assert server.request_count("GET", "/data/") == 3


def test_byte_ranges_resume_a_transfer(served) -> None:
    _, url = served
    tail = requests.get(url, headers={"Range": "bytes=1000-"}, timeout=10)
    assert tail.status_code == 206
    assert tail.headers["Content-Range"] == f"bytes 1000-{len(CONTENT) - 1}/{len(CONTENT)}"
    assert tail.content == CONTENT[1000:]
    middle = requests.get(url, headers={"Range": "bytes=10-19"}, timeout=10)
    assert middle.content == CONTENT[10:20]
    past = requests.get(url, headers={"Range": f"bytes={len(CONTENT)}-"}, timeout=10)
    assert past.status_code == 416


def test_basic_auth_challenges_then_serves(alyx_server: AlyxTestServer, tmp_path: Path) -> None:
    (tmp_path / "a.b.npy").write_bytes(b"xyz")
    base = alyx_server.serve_files(tmp_path, username="reader", password="s3cret")
    url = f"{base}a.b.{DATASET}.npy"
    refused = requests.get(url, timeout=10)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == 'Basic realm="data"'
    assert requests.get(url, auth=("reader", "wrong"), timeout=10).status_code == 401
    assert requests.get(url, auth=("reader", "s3cret"), timeout=10).content == b"xyz"


def test_faults_drop_a_transfer_half_way_or_change_a_byte(served) -> None:
    server, url = served
    server.faults.add(path="/data/", kind="truncate", times=1)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(url, timeout=10).content  # noqa: B018 - reading the body raises
    server.faults.add(path="/data/", kind="corrupt", times=1)
    spoilt = requests.get(url, timeout=10).content
    assert len(spoilt) == len(CONTENT)
    assert sum(a != b for a, b in zip(spoilt, CONTENT, strict=True)) == 1
    assert requests.get(url, timeout=10).content == CONTENT
