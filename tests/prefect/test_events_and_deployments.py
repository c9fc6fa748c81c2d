"""Events, the trigger that chains preprocessing, prefect.yaml and `one-flows serve`."""

import asyncio
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect.events.worker import EventsWorker
from prefect.settings import PREFECT_API_URL, temporary_settings
from typer.testing import CliRunner

from one_flows.cli import app
from one_flows.prefect.events import SESSION_FLAGGED, SESSION_REGISTERED, emit_session_registered
from one_flows.prefect.preprocess import preprocess
from one_flows.prefect.register import register_new_sessions
from one_flows.prefect.serve import DEFAULT_PREFECT_FILE, load_deployments

REPO = Path(__file__).resolve().parents[2]
EXPECTED = {
    "register-new-sessions/sweep",
    "register-new-sessions/on-flag",
    "register-session/on-demand",
    "update-cache/nightly",
    "preprocess/on-registered",
}


@pytest.fixture
def deployments_removed_after(prefect_server):
    """Deletes prefect.yaml's deployments and their runs from the shared server after the test.

    A run left queued by one test would otherwise be picked up by `one-flows serve` in another.
    """
    yield
    asyncio.run(_delete_deployments(prefect_server.api_url))


async def _delete_deployments(api_url: str) -> None:
    with temporary_settings({PREFECT_API_URL: api_url}):
        async with get_client() as client:
            flows = {f.id: f.name for f in await client.read_flows()}
            ours = [
                d.id
                for d in await client.read_deployments()
                if f"{flows[d.flow_id]}/{d.name}" in EXPECTED
            ]
            if not ours:
                return
            only = DeploymentFilter(id=DeploymentFilterId(any_=ours))
            for run in await client.read_flow_runs(deployment_filter=only):
                await client.delete_flow_run(run.id)
            for deployment_id in ours:
                await client.delete_deployment(deployment_id)


def _events(api_url: str, name: str, resources: set[str]) -> list[dict]:
    """The events ``name`` about ``resources`` (resource ids), once one of each has arrived or
    after 15 s; the shared API also holds the events of other tests."""
    EventsWorker.drain_all()
    body = {
        "filter": {"event": {"name": [name]}, "resource": {"id": sorted(resources)}},
        "limit": 50,
    }
    for _ in range(60):
        events = httpx.post(f"{api_url}/events/filter", json=body).json()["events"]
        if {e["resource"]["prefect.resource.id"] for e in events} >= resources:
            return events
        time.sleep(0.25)
    return events


def test_each_registered_session_emits_an_event(prefect_api, alyx, sample_root):
    summary = register_new_sessions(sample_root, alyx=alyx.url, quiet_seconds=0)
    resources = {f"alyx.session.{s.eid}" for s in summary.sessions}
    events = _events(prefect_api, SESSION_REGISTERED, resources)
    assert len(resources) == len(summary.sessions)
    assert sorted(e["resource"]["prefect.resource.id"] for e in events) == sorted(resources)
    session = summary.sessions[0]
    event = next(e for e in events if e["payload"]["eid"] == session.eid)
    payload = event["payload"]
    assert payload["session_path"] == session.session_path
    assert payload["target"] == f"alyx:{alyx.url}"
    assert (payload["lab"], payload["number"]) == ("cortexlab", 1)
    assert Path(session.session_path).parts[-3:] == (
        payload["subject"],
        payload["date"],
        "001",
    )
    registered = {f.dataset_type for f in session.files if f.status == "created"}
    assert payload["dataset_types"] == sorted(registered) and "spikes.times" in registered


def test_the_event_triggers_the_preprocessing_deployment(prefect_server, deployments_removed_after):
    (deployment,) = [d for d in load_deployments() if d.name == "on-registered"]
    session = "/data/cortexlab/Subjects/KS022/2026-01-05/001"
    with temporary_settings({PREFECT_API_URL: prefect_server.api_url}):
        deployment_id = deployment.apply()
        # The trigger service takes up a new automation after a while, longer on a server whose
        # automations other tests changed just before: the event is sent again until it does.
        for _ in range(12):
            emit_session_registered(
                "0f3c", session, "alyx:https://alyx.example.org", ["trials.choice"]
            )
            EventsWorker.drain_all()
            runs = asyncio.run(_runs_of(deployment_id, wait_seconds=5))
            if runs:
                break
    assert runs, f"the trigger started no run; server log:\n{prefect_server.log_tail()}"
    assert runs[0].parameters == {"eid": "0f3c", "session_path": session}


async def _runs_of(deployment_id, wait_seconds: float) -> list:
    only = DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
    async with get_client() as client:
        for _ in range(int(wait_seconds * 2)):
            runs = await client.read_flow_runs(deployment_filter=only)
            if runs:
                return runs
            await asyncio.sleep(0.5)
    return []


def test_the_triggered_flow_loads_the_session_through_the_query_api(prefect_api, sample_root):
    session = sample_root / "cortexlab/Subjects/KS022/2026-01-05/001"
    state = preprocess("any-eid", session, return_state=True)
    result = state.result()
    assert result.n_trials == 60 and 0 <= result.performance <= 1
    assert result.duration_seconds > 0
    assert (sample_root / "sessions.pqt").is_file()  # the data root was indexed on the way
    names = _task_run_names(state.state_details.flow_run_id)
    assert names == ["summarise-trials-KS022-2026-01-05-001"]  # named per session in the UI


def _task_run_names(flow_run_id) -> list[str]:
    """The names of a flow run's task runs, once recorded (they reach the API as events)."""
    only = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    with get_client(sync_client=True) as client:
        for _ in range(60):
            runs = client.read_task_runs(flow_run_filter=only)
            if runs:
                break
            time.sleep(0.5)
    return [run.name for run in runs]


def test_prefect_deploy_accepts_prefect_yaml(prefect_server, deployments_removed_after, tmp_path):
    checkout = tmp_path / "one-flows"
    checkout.mkdir()
    shutil.copy(REPO / "prefect.yaml", checkout)
    shutil.copytree(REPO / "flows", checkout / "flows")
    env = {**os.environ, **prefect_server.environment, "PYTHONPATH": str(checkout)}
    prefect = [sys.executable, "-m", "prefect", "--no-prompt"]
    subprocess.run(
        [*prefect, "work-pool", "create", "one-flows", "--type", "process"],
        env=env,
        cwd=checkout,
        check=True,
        capture_output=True,
    )
    deploy = subprocess.run(
        [*prefect, "deploy", "--all"], env=env, cwd=checkout, capture_output=True, text=True
    )
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    names = asyncio.run(_deployment_names(prefect_server.api_url))
    assert names >= EXPECTED


async def _deployment_names(api_url: str) -> set[str]:
    with temporary_settings({PREFECT_API_URL: api_url}):
        async with get_client() as client:
            deployments = await client.read_deployments()
            flows = {f.id: f.name for f in await client.read_flows()}
    return {f"{flows[d.flow_id]}/{d.name}" for d in deployments}


def test_one_flows_serve_serves_the_deployments(
    prefect_server, deployments_removed_after, tmp_path
):
    env = {**os.environ, **prefect_server.environment}
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("one-flows")), "serve", "--root", str(tmp_path)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    started = datetime.now(UTC)
    try:
        deadline = time.monotonic() + 90
        served: set[str] = set()
        while time.monotonic() < deadline and not served >= EXPECTED:
            assert server.poll() is None, log.read_text()
            time.sleep(1)
            served = asyncio.run(_served(prefect_server.api_url, started))
        assert served >= EXPECTED, log.read_text()
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            pytest.fail(f"serve ignored SIGTERM for 30 s; its log:\n{log.read_text()}")


async def _served(api_url: str, since: datetime) -> set[str]:
    """Deployments created or updated since ``since``."""
    with temporary_settings({PREFECT_API_URL: api_url}):
        async with get_client() as client:
            deployments = await client.read_deployments()
            flows = {f.id: f.name for f in await client.read_flows()}
    return {f"{flows[d.flow_id]}/{d.name}" for d in deployments if d.updated >= since}


def test_serve_reads_schedules_triggers_and_limits_from_prefect_yaml():
    deployments = {d.name: d for d in load_deployments(DEFAULT_PREFECT_FILE, {"root": "/x"})}
    sweep = deployments["sweep"]
    assert sweep.parameters["root"] == "/x"
    assert [s.schedule.interval.total_seconds() for s in sweep.schedules] == [300]
    assert sweep.concurrency_limit == 1
    assert deployments["nightly"].schedules[0].schedule.cron == "0 2 * * *"
    assert "root" not in deployments["on-registered"].parameters
    (trigger,) = deployments["on-registered"].triggers
    assert trigger.expect == {SESSION_REGISTERED}
    assert trigger.for_each == {"prefect.resource.id"}


def test_watch_announces_each_flagged_session_once(prefect_api, sample_root):
    result = CliRunner().invoke(app, ["watch", str(sample_root), "--once", "--quiet-seconds", "0"])
    assert result.exit_code == 0, result.output
    sessions = {str(p.parent) for p in sample_root.rglob("create_me.flag")}
    assert result.output.count("flagged:") == len(sessions) == 6
    resources = {f"one.flag.{s}" for s in sessions}
    events = _events(prefect_api, SESSION_FLAGGED, resources)
    assert sorted(e["resource"]["prefect.resource.id"] for e in events) == sorted(resources)
    assert {(e["payload"]["flag"], e["payload"]["quiet_seconds"]) for e in events} == {
        ("create_me.flag", 0)
    }
