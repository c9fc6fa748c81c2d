"""Secrets stay secret, TLS is checked unless explicitly turned off, and nothing outside the data
root is ever read or registered."""

from __future__ import annotations

import asyncio
import builtins
import logging
import os
import uuid
from pathlib import Path

from prefect.client.orchestration import get_client

from one_flows.alyx import AlyxClient, AlyxError
from one_flows.prefect.blocks import AlyxCredentials
from one_flows.prefect.register import register_new_sessions, register_session
from one_flows.registration import Outcome, RegistrationClient

SESSION = Path("cortexlab", "Subjects", "algernon", "2026-03-01", "001")


def _session(root: Path, files=("alf/spikes.times.npy", "alf/spikes.amps.npy")) -> Path:
    session = root / SESSION
    for rel in files:
        (session / rel).parent.mkdir(parents=True, exist_ok=True)
        (session / rel).write_bytes(rel.encode())
    (session / "create_me.flag").touch()
    return session


def _token(server) -> str:
    with AlyxClient(server.url, username=server.username, password=server.password) as client:
        client.get("/subjects/algernon")
        return client._token.reveal()


async def _artifacts_and_results(flow_run_id) -> str:
    async with get_client() as client:
        artifacts = await client.read_artifacts()
        run = await client.read_flow_run(flow_run_id)
        tasks = await client.read_task_runs()
    return " ".join([repr(a.data) + repr(a.description) for a in artifacts] + [repr(run)]) + (
        " ".join(repr(t) for t in tasks)
    )


def test_password_and_token_never_leave_the_client(
    prefect_api, alyx_server, tmp_path, caplog, capfd, monkeypatch
):
    token = _token(alyx_server)
    secrets = (alyx_server.password, token)
    block = f"secret-{uuid.uuid4().hex[:8]}"
    AlyxCredentials(
        base_url=alyx_server.url, username=alyx_server.username, password=alyx_server.password
    ).save(block)
    emitted = []
    monkeypatch.setattr(
        "one_flows.prefect.events.emit_event", lambda *a, **k: emitted.append((a, k)), raising=True
    )
    monkeypatch.setattr("one_flows.prefect.register.emit_session_registered", _recording(emitted))
    session = _session(tmp_path / "data")
    (session / "alf" / "spikes.clusters.npy").write_bytes(b"x")  # refused below: an error text
    alyx_server.faults.add(method="POST", path="/register-file", kind="status", status=500)
    caplog.set_level(logging.DEBUG)
    logging.getLogger("one_flows").setLevel(logging.DEBUG)
    state = register_new_sessions(tmp_path / "data", alyx=block, quiet_seconds=0, return_state=True)
    alyx_server.faults.clear()
    ok = register_session(session, alyx=block)
    errors = []
    try:
        AlyxClient(alyx_server.url, username=alyx_server.username, password="wrong" + secrets[0])
        AlyxClient(alyx_server.url, username=alyx_server.username, password=secrets[0] + "x").get(
            "/subjects"
        )
    except AlyxError as exc:
        errors.append(f"{exc!r} {exc}")
    assert errors, "a wrong password must be refused"

    out, err = capfd.readouterr()
    seen = " ".join(
        [
            caplog.text,
            out,
            err,
            repr(state.result(raise_on_failure=False)),  # failed: the batch's 500 is an outage
            repr(ok),
            repr(emitted),
            *errors,
            asyncio.run(_artifacts_and_results(state.state_details.flow_run_id)),
        ]
    )
    assert "DEBUG" in caplog.text or caplog.records  # logging did capture the run
    assert "register-file" in seen  # the refused batch was reported
    for secret in secrets:
        assert secret not in seen


def _recording(emitted: list):
    def record(eid, session_path, target, dataset_types):
        emitted.append((eid, str(session_path), target, list(dataset_types)))

    return record


def test_flows_take_no_password_or_token_parameter():
    """The login comes from a saved AlyxCredentials block, which a flow takes by reference (its
    secrets stay in the block); no parameter of the flows' own is a password or a token."""
    for flow in (register_new_sessions, register_session):
        schema = flow.parameters.model_dump()
        definitions = schema["definitions"]
        ours = {n: d for n, d in definitions.items() if "block_type_slug" not in d}
        text = str({"properties": schema["properties"], "definitions": ours}).lower()
        assert "password" not in text and "token" not in text
        block = definitions[schema["properties"]["alyx"]["$ref"].rpartition("/")[2]]
        assert block["block_type_slug"] == "alyx-credentials"
        assert block["properties"]["password"]["anyOf"][0]["format"] == "password"


def test_tls_verification_is_on_by_default_and_off_only_with_a_warning(caplog):
    caplog.set_level(logging.WARNING, logger="one_flows.alyx")
    client = AlyxClient("https://alyx.example.org", token="t")
    assert client._verify is True
    assert AlyxCredentials(base_url="https://alyx.example.org").verify is True
    assert caplog.records == []
    AlyxClient("https://alyx.example.org", token="t", verify=False)
    [warning] = caplog.records
    assert warning.levelno == logging.WARNING and "verification is off" in warning.getMessage()


def test_files_outside_the_root_are_never_opened(alyx_server, tmp_path, monkeypatch):
    """Symbolic links out of the session, found by the walk or listed, are refused unread: a
    FIFO outside would block this test forever if opened, and an `open` spy sees every read."""
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.npy"
    secret.write_bytes(b"not yours")
    fifo = outside / "fifo.npy"
    os.mkfifo(fifo)
    session = _session(tmp_path / "data")
    (session / "alf" / "spikes.clusters.npy").symlink_to(secret)
    (session / "alf" / "probe").mkdir()
    (session / "alf" / "probe" / "clusters.depths.npy").symlink_to(fifo)
    opened = []
    for module, name in ((builtins, "open"), (os, "open")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, _spy(real, opened))
    alyx = AlyxClient(alyx_server.url, username=alyx_server.username, password=alyx_server.password)
    client = RegistrationClient(alyx, digest_cache=False)

    report = client.register_session(session)
    listed = client.register_session(
        session, file_list=[session / "alf" / "probe" / "clusters.depths.npy"]
    )

    by_path = {f.rel_path: f for f in report.files}
    assert by_path["alf/spikes.times.npy"].status is Outcome.CREATED
    assert by_path["alf/spikes.clusters.npy"].status is Outcome.SKIPPED
    assert "outside the session" in by_path["alf/spikes.clusters.npy"].reason
    assert [(f.status, "outside" in f.reason) for f in listed.files] == [(Outcome.SKIPPED, True)]
    names = {d["name"] for d in alyx.list_all("/datasets", {"session": report.eid})}
    assert names == {"spikes.times.npy", "spikes.amps.npy"}
    assert any(p.endswith("spikes.times.npy") for p in opened)  # the spy does see reads
    assert not [p for p in opened if Path(p).resolve().parent == outside.resolve()]


def _spy(real, opened: list):
    def spy(file, *args, **kwargs):
        if isinstance(file, str | os.PathLike):
            opened.append(os.fspath(file))
        return real(file, *args, **kwargs)

    return spy
