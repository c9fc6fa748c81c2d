"""Registering so that others can load: the lab's data folder behind nginx with the shipped
configuration (``deployments/nginx``), sessions registered into that repository, and a
colleague's One on another folder loading them over HTTP.

``.ci/run`` installs nginx; without it these tests say so and skip.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from one_flows.alyx import AlyxClient
from one_flows.one import DownloadAuthError, One

SHIPPED = Path(__file__).resolve().parents[2] / "deployments" / "nginx" / "one-flows-data.conf"
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
FIRST = "cortexlab/Subjects/algernon/2026-07-04/001"
LOGIN, PASSWORD = "reader", "Dat4-Secret"

pytestmark = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed (.ci/run installs it)"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(folder: Path, root: Path, port: int) -> Path:
    """nginx's main configuration around the shipped server block, set up for this test."""
    secret = base64.b64encode(hashlib.sha1(PASSWORD.encode()).digest()).decode()
    (folder / "htpasswd").write_text(f"{LOGIN}:{{SHA}}{secret}\n")
    block = (
        SHIPPED.read_text()
        .replace("listen 8080;", f"listen 127.0.0.1:{port};")
        .replace("root /mnt/s0/Data;", f"root {root};")
        .replace("/etc/nginx/one-flows-data.htpasswd", str(folder / "htpasswd"))
    )
    (folder / "server.conf").write_text(block)
    temp = " ".join(
        f"{kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi")
    )
    main = f"""
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
pid {folder / "nginx.pid"};
error_log {folder / "error.log"};
events {{ worker_connections 64; }}
http {{
    access_log {folder / "access.log"};
    {temp} uwsgi_temp_path {folder / "uwsgi"}; scgi_temp_path {folder / "scgi"};
    include {folder / "server.conf"};
}}
"""
    (folder / "nginx.conf").write_text(main)
    return folder / "nginx.conf"


@pytest.fixture
def nginx(tmp_path):
    """Start nginx with the shipped configuration over a data root; returns its base URL."""
    started = []

    def start(root: Path) -> str:
        folder = tmp_path / "nginx"
        folder.mkdir()
        port = _free_port()
        config = _config(folder, root, port)
        options = ["-p", str(folder), "-c", str(config), "-e", str(folder / "error.log")]
        check = subprocess.run(
            [NGINX, "-t", *options],
            capture_output=True,
            text=True,
            check=False,
        )
        assert check.returncode == 0, check.stderr
        assert "syntax is ok" in check.stderr and "test is successful" in check.stderr
        process = subprocess.Popen(
            [NGINX, *options, "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        started.append(process)
        for _ in range(100):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    return f"http://127.0.0.1:{port}/"
            assert process.poll() is None, process.stderr.read().decode()
            time.sleep(0.05)
        raise AssertionError("nginx did not start listening")

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=10)


def test_sessions_registered_on_the_lab_server_load_on_another_machine(
    alyx_server, tmp_path, nginx, lab_registration, remote_sessions
):
    write_lab, register = lab_registration
    root = write_lab(tmp_path / "lab-data")
    url = nginx(root)
    # The lab's repository on Alyx: its data_url is nginx over the lab's data root.
    alyx_server.add_repository("cortexlab_lab_server", url + "cortexlab/Subjects/")
    eids = register(alyx_server, root, "cortexlab_lab_server")
    eid = eids[FIRST]

    # File records exist only on the repository named at registration.
    with AlyxClient(
        alyx_server.url, username=alyx_server.username, password=alyx_server.password
    ) as alyx:
        datasets = alyx.list_all("/datasets", {"session": eid})
    exists = {(r["data_repository"], r["exists"]) for d in datasets for r in d["file_records"]}
    assert exists == {("cortexlab_lab_server", True), ("flatiron_cortexlab", False)}

    colleague = One(
        base_url=alyx_server.url,
        username=alyx_server.username,
        password=alyx_server.password,
        cache_dir=tmp_path / "colleague",
        data_login=LOGIN,
        data_password=PASSWORD,
    )
    spikes = colleague.load_object(eid, "spikes", collection="alf/probe01")
    expected = remote_sessions[FIRST]["files"]
    for attribute in ("times", "clusters", "depths"):
        np.testing.assert_array_equal(
            spikes[attribute], expected[f"alf/probe01/spikes.{attribute}.npy"]
        )
    local = tmp_path / "colleague" / FIRST / "alf/probe01/spikes.depths.npy"
    assert local.read_bytes() == (root / FIRST / "alf/probe01/spikes.depths.npy").read_bytes()
    revised = colleague.load_dataset(eid, "spikes.times.npy", collection="alf/probe00")
    np.testing.assert_array_equal(
        revised, remote_sessions[FIRST]["revised"]["alf/probe00/#2026-07-05#/spikes.times.npy"]
    )

    # Without the data server's login the download is refused, and says what to set.
    stranger = One(alyx=colleague.alyx, cache_dir=tmp_path / "stranger")
    with pytest.raises(DownloadAuthError, match="HTTP_DATA_SERVER_LOGIN"):
        stranger.load_dataset(eid, "spikes.amps.npy")


def test_nginx_serves_ranges_and_nothing_else(tmp_path, nginx):
    root = tmp_path / "data"
    (root / "sub/2026-01-01/001/alf").mkdir(parents=True)
    (root / "sub/2026-01-01/001/alf/spikes.times.npy").write_bytes(bytes(range(200)))
    (root / "sub/2026-01-01/001/.flags").write_text("hidden")
    url = nginx(root) + "sub/2026-01-01/001/"
    uuid = "0f0e0d0c-0b0a-4909-8807-060504030201"
    auth = (LOGIN, PASSWORD)
    named = f"{url}alf/spikes.times.{uuid}.npy"
    assert requests.get(named, auth=auth, timeout=10).content == bytes(range(200))
    part = requests.get(named, auth=auth, headers={"Range": "bytes=150-"}, timeout=10)
    assert (part.status_code, part.content) == (206, bytes(range(150, 200)))
    assert requests.get(named, timeout=10).status_code == 401
    assert requests.get(f"{url}.flags", auth=auth, timeout=10).status_code == 403
    assert requests.get(f"{url}alf/", auth=auth, timeout=10).status_code == 403
