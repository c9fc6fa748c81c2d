"""The watcher path on a live Prefect server: `one-flows watch` announces a flagged session, the
on-flag deployment's trigger starts a run, and that run registers the session.

The quiet time is shortened, and passed the way a lab sets it: to the watcher, whose events carry
it to the run. The session's data are quiet before the flag arrives, as when a rig copies a
session and then flags it, so the run looks at a session whose flag is only seconds old.
"""

import asyncio
import inspect
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import httpx
import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.events.worker import EventsWorker
from prefect.settings import PREFECT_API_URL, temporary_settings
from typer.testing import CliRunner

from one_flows._prefect_api import end_process, file_tail
from one_flows.cli import app
from one_flows.flags import QUIET_SECONDS, FlagWatcher, is_quiet, write_flag
from one_flows.prefect.events import SESSION_FLAGGED, SESSION_REGISTERED, emit_session_flagged
from one_flows.prefect.register import register_new_sessions
from one_flows.prefect.serve import DEFAULT_PREFECT_FILE, load_deployments
from one_flows.sample import make_sample_tree

QUIET = 15.0
"""Longer than a run takes to start after an announcement here, most of the time: a flow that
counted the new flag as data would then leave the session for later."""
DEADLINE = 240.0
"""Generous for a loaded 2-core machine, and still within the sweep's 5 minutes."""
ON_FLAG = "register-new-sessions/on-flag"


def _on_flag_spec() -> dict:
    config = yaml.safe_load(DEFAULT_PREFECT_FILE.read_text())
    (spec,) = [d for d in config["deployments"] if d["name"] == "on-flag"]
    return spec


async def _find_deployment(api_url: str, name: str, since: datetime) -> UUID | None:
    with temporary_settings({PREFECT_API_URL: api_url}):
        async with get_client() as client:
            flows = {f.id: f.name for f in await client.read_flows()}
            for deployment in await client.read_deployments():
                full_name = f"{flows[deployment.flow_id]}/{deployment.name}"
                if full_name == name and deployment.updated >= since:
                    return deployment.id
    return None


async def _remove_deployment(api_url: str, deployment_id: UUID) -> None:
    """Delete a deployment and its runs, so no later test's worker or `serve` inherits them."""
    with temporary_settings({PREFECT_API_URL: api_url}):
        async with get_client() as client:
            only = DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
            for run in await client.read_flow_runs(deployment_filter=only):
                await client.delete_flow_run(run.id)
            await client.delete_deployment(deployment_id)


def _wait_for_trigger(api_url: str, deployment_id: UUID) -> None:
    """Wait until the server holds the automation of the deployment's trigger."""
    url = f"{api_url}/automations/related-to/prefect.deployment.{deployment_id}"
    for _ in range(120):
        if httpx.get(url).json():
            return
        time.sleep(0.5)
    pytest.fail(f"no automation for deployment {deployment_id}")


def _events(api_url: str, name: str) -> list[dict]:
    body = {"filter": {"event": {"name": [name]}}, "limit": 50}
    return httpx.post(f"{api_url}/events/filter", json=body).json()["events"]


def _related(event: dict, role: str) -> str:
    (resource,) = [r for r in event["related"] if r["prefect.resource.role"] == role]
    return resource["prefect.resource.id"]


@pytest.fixture
def served_on_flag(prefect_server, tmp_path: Path) -> Iterator[tuple[UUID, Path, Path]]:
    """prefect.yaml's on-flag deployment alone, served by `one-flows serve` on an empty data root.

    Yields the deployment's id, the data root and serve's log; deletes the deployment and its
    runs afterwards. The sweep is not served, so only an on-flag run can register anything.
    """
    root = tmp_path / "data"
    root.mkdir()
    deployments = tmp_path / "prefect.yaml"
    deployments.write_text(yaml.safe_dump({"deployments": [_on_flag_spec()]}))
    log = tmp_path / "serve.log"
    env = {
        **os.environ,
        **prefect_server.environment,
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",  # the runner looks for new runs every 2 s
    }
    command = [str(Path(sys.executable).with_name("one-flows")), "serve"]
    started = datetime.now(UTC)
    with open(log, "wb") as out:
        serve = subprocess.Popen(
            [*command, "--root", str(root), "--prefect-file", str(deployments)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deployment_id = None
    try:
        deadline = time.monotonic() + 120
        while deployment_id is None and time.monotonic() < deadline:
            assert serve.poll() is None, file_tail(log)
            time.sleep(1)
            deployment_id = asyncio.run(_find_deployment(prefect_server.api_url, ON_FLAG, started))
        assert deployment_id is not None, f"serve never created {ON_FLAG}:\n{file_tail(log)}"
        _wait_for_trigger(prefect_server.api_url, deployment_id)
        yield deployment_id, root, log
    finally:
        end_process(serve, signal.SIGTERM, timeout=30)
        if deployment_id is not None:
            asyncio.run(_remove_deployment(prefect_server.api_url, deployment_id))


def test_a_session_copied_in_and_flagged_is_registered_by_the_on_flag_run(
    prefect_server, served_on_flag, tmp_path: Path
) -> None:
    deployment_id, root, serve_log = served_on_flag
    rig = make_sample_tree(tmp_path / "rig", sessions_per_subject=1)
    source, session = rig.root / rig.sessions[0], root / rig.sessions[0]
    watch_log = tmp_path / "watch.log"
    env = {**os.environ, **prefect_server.environment}
    command = [str(Path(sys.executable).with_name("one-flows")), "watch", str(root)]
    with open(watch_log, "wb") as out:
        watcher = subprocess.Popen(
            [*command, "--interval", "1", "--quiet-seconds", str(QUIET)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        shutil.copytree(source, session, ignore=shutil.ignore_patterns("create_me.flag"))
        while not is_quiet(session, QUIET):  # the rig's copy is done and settled
            time.sleep(0.5)
        write_flag(session)
        flagged = time.time()
        registered = None
        while registered is None and time.time() < flagged + DEADLINE:
            assert watcher.poll() is None, file_tail(watch_log)
            time.sleep(1)
            registered = next(
                (
                    e
                    for e in _events(prefect_server.api_url, SESSION_REGISTERED)
                    if e["payload"]["session_path"] == str(session)
                ),
                None,
            )
    finally:
        end_process(watcher, signal.SIGINT, timeout=30)
    logs = f"watch:\n{file_tail(watch_log)}\nserve:\n{file_tail(serve_log)}"
    assert registered is not None, f"not registered within {DEADLINE} s of the flag\n{logs}"
    assert f"flagged: {session}" in watch_log.read_text()
    assert _related(registered, "deployment") == f"prefect.deployment.{deployment_id}", logs
    run_id = UUID(_related(registered, "flow-run").rsplit(".", 1)[1])
    run = asyncio.run(_read_run(prefect_server.api_url, run_id))
    assert run.deployment_id == deployment_id
    assert run.parameters["session_path"] == str(session)
    assert run.parameters["quiet_seconds"] == QUIET  # from the watcher's event, as a number
    assert run.state.is_completed(), f"{run.state}\n{logs}"
    assert not any(p.name.startswith("create_me.flag") for p in session.iterdir())
    from one.api import One  # ONE-api reads the tables the run wrote

    one = One(cache_dir=root, mode="local")
    assert [str(eid) for eid in one.search(subject=session.parts[-3])] == [
        registered["payload"]["eid"]
    ]


async def _read_run(api_url: str, run_id: UUID):
    """The flow run, once it is final (its events may arrive before its last state)."""
    with temporary_settings({PREFECT_API_URL: api_url}):
        async with get_client() as client:
            for _ in range(120):
                run = await client.read_flow_run(run_id)
                if run.state is not None and run.state.is_final():
                    break
                await asyncio.sleep(0.5)
    return run


@pytest.fixture
def applied_on_flag(prefect_server, tmp_path: Path) -> Iterator[UUID]:
    """prefect.yaml's on-flag deployment on the server, not served: its runs stay scheduled."""
    (deployment,) = [
        d for d in load_deployments(parameters={"root": str(tmp_path)}) if d.name == "on-flag"
    ]
    with temporary_settings({PREFECT_API_URL: prefect_server.api_url}):
        deployment_id = deployment.apply()
    try:
        _wait_for_trigger(prefect_server.api_url, deployment_id)
        yield deployment_id
    finally:
        asyncio.run(_remove_deployment(prefect_server.api_url, deployment_id))


def test_the_on_flag_trigger_runs_once_per_session_within_its_window(
    prefect_server, applied_on_flag, runs_for_sessions, tmp_path: Path
) -> None:
    (trigger,) = _on_flag_spec()["triggers"]
    assert (trigger["posture"], trigger["threshold"], trigger["within"]) == ("Reactive", 1, 60)
    first, second = (str(tmp_path / f"lab/Subjects/sub/2020-01-01/00{i}") for i in (1, 2))
    # Prefect keeps one events worker for any server, bound to the API it started with: stop
    # the one an earlier test may have left running, so these events go to this server.
    EventsWorker.drain_all()
    with temporary_settings({PREFECT_API_URL: prefect_server.api_url}):
        emit_session_flagged(first, "create_me.flag", 5.0)
        emit_session_flagged(first, "create_me.flag", 5.0)  # again, within the window
        emit_session_flagged(second, "create_me.flag", 5.0)  # another session: its own run
        EventsWorker.drain_all()
        runs = asyncio.run(runs_for_sessions([applied_on_flag], [first, second]))
    by_session = sorted(r.parameters["session_path"] for r in runs)
    flagged = [
        e["payload"]["session_path"] for e in _events(prefect_server.api_url, SESSION_FLAGGED)
    ]
    # the second event of `first` started nothing
    assert by_session == [first, second], f"{flagged=}\n{prefect_server.log_tail()}"
    run = next(r for r in runs if r.parameters["session_path"] == first)
    assert run.parameters == {"root": str(tmp_path), "session_path": first, "quiet_seconds": 5.0}


def test_watch_once_names_the_sessions_still_changing(prefect_api, tmp_path: Path) -> None:
    tree = make_sample_tree(tmp_path / "data", sessions_per_subject=1)  # written just now
    result = CliRunner().invoke(app, ["watch", str(tree.root), "--once"])
    assert result.exit_code == 0, result.output
    assert "flagged:" not in result.output
    waiting = [line for line in result.output.splitlines() if line.startswith("not yet quiet")]
    assert waiting == [
        f"not yet quiet for {QUIET_SECONDS:g} s: {tree.root / s}" for s in sorted(tree.sessions)
    ]


def test_the_watcher_and_the_flow_default_to_the_same_quiet_time(tmp_path: Path) -> None:
    flow_default = inspect.signature(register_new_sessions.fn).parameters["quiet_seconds"].default
    assert FlagWatcher(tmp_path).quiet_seconds == flow_default == QUIET_SECONDS
    assert "quiet_seconds" not in (_on_flag_spec().get("parameters") or {})  # from the event
