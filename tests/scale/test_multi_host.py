"""Several hosts on one Prefect server (on PostgreSQL): process workers share and route the work.

Two workers run as separate processes, as on two machines, against a Prefect server on
PostgreSQL, and register into one Alyx (the test server) over loopback. The deployments are
made from the project's own flow, from source, as a lab deploys them.
"""

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.workers.process import ProcessWorker

from one_flows.alyx import AlyxClient
from one_flows.flags import find_flags
from one_flows.prefect.blocks import AlyxCredentials
from one_flows.prefect.ratelimit import SHARED_LIMIT_BATCH, alyx_rate_limit_name
from one_flows.prefect.serve import block_reference
from one_flows.registration import RegistrationClient
from one_flows.sample import make_sample_tree
from one_flows.targets import AlyxTarget
from one_flows.testing import AlyxTestServer

REPO = Path(__file__).resolve().parents[2]
POOL = "lab"
QUEUES = ("shared", "rig-a", "rig-b")
RUNS_TIMEOUT = 150.0


async def _create_pool(api_url: str) -> None:
    template = ProcessWorker.get_default_base_job_template()
    with temporary_settings({PREFECT_API_URL: api_url}):
        async with get_client() as client:
            await client.create_work_pool(
                WorkPoolCreate(name=POOL, type="process", base_job_template=template)
            )
            for queue in QUEUES:
                await client.create_work_queue(name=queue, work_pool_name=POOL)


@pytest.fixture(scope="module")
def lab(prefect_on_postgres, start_worker):
    """The process work pool with its queues, and two workers: A on rig A's queue and the
    shared one, B on rig B's queue and the shared one."""
    asyncio.run(_create_pool(prefect_on_postgres.api_url))
    workers = {
        "worker-a": start_worker("worker-a", POOL, ["shared", "rig-a"]),
        "worker-b": start_worker("worker-b", POOL, ["shared", "rig-b"]),
    }
    return prefect_on_postgres, workers


def _deploy(api_url: str, name: str, queue: str, alyx: AlyxTestServer, parameters: dict) -> str:
    """A deployment of the registration flow from this checkout into ``alyx``, named by an
    AlyxCredentials block saved on the Prefect server, as a lab deploys; returns its id."""
    register = flow.from_source(str(REPO), "flows/register.py:register_new_sessions")
    block = f"alyx-{alyx.port}"
    with temporary_settings({PREFECT_API_URL: api_url}):
        AlyxCredentials(base_url=alyx.url, username=alyx.username, password=alyx.password).save(
            block, overwrite=True
        )
        return str(
            register.deploy(
                name=name,
                work_pool_name=POOL,
                work_queue_name=queue,
                parameters={**parameters, "alyx": block_reference(block)},
                build=False,
                print_next_steps=False,
            )
        )


def _submit(api_url: str, deployment: str, runs: list[dict]) -> None:
    """Start flow runs of a deployment, one per set of parameters, without waiting for them."""
    with temporary_settings({PREFECT_API_URL: api_url}):
        for parameters in runs:
            run_deployment(deployment, parameters=parameters, timeout=0)


async def _wait_final(api_url: str, deployment_ids: list[str]) -> list:
    """The flow runs of the deployments, once all of them have ended."""
    only = DeploymentFilter(id=DeploymentFilterId(any_=deployment_ids))
    deadline = time.monotonic() + RUNS_TIMEOUT
    with temporary_settings({PREFECT_API_URL: api_url}):
        async with get_client() as client:
            while True:
                runs = await client.read_flow_runs(deployment_filter=only)
                if runs and all(r.state and r.state.is_final() for r in runs):
                    return runs
                if time.monotonic() > deadline:
                    states = Counter(r.state_name for r in runs)
                    raise AssertionError(f"flow runs not finished in time: {dict(states)}")
                await asyncio.sleep(1.0)


def _login(server: AlyxTestServer) -> AlyxClient:
    return AlyxClient(server.url, username=server.username, password=server.password)


def _registrable(alyx: AlyxClient, root: Path, sessions) -> set[tuple[str, str]]:
    """(session, file) of every file under the sessions that the registration would take."""
    client = RegistrationClient(AlyxTarget(alyx))
    try:
        return {
            (str(session), path.relative_to(root / session).as_posix())
            for session in sessions
            for path in client.find_files(root / session)
        }
    finally:
        client.close()


def _registered(alyx: AlyxClient) -> tuple[Counter, Counter]:
    """How many session records per session path, and dataset records per (session, file)."""
    sessions = alyx.list_all("/sessions")
    paths = {
        s["id"]: f"{s['lab']}/Subjects/{s['subject']}/{s['start_time'][:10]}/{s['number']:03d}"
        for s in sessions
    }
    per_session = Counter(paths.values())
    per_file = Counter()
    for d in alyx.list_all("/datasets"):
        eid = d["session"].rstrip("/").rsplit("/", 1)[-1]
        relative = "/".join(
            p for p in (d["collection"], d["revision"] and f"#{d['revision']}#", d["name"]) if p
        )
        per_file[(paths[eid], relative)] += 1
    return per_session, per_file


def test_two_workers_share_the_sweeps_of_one_root_and_register_each_session_once(
    lab, alyx_service, shared_limit, tmp_path
):
    server, workers = lab
    root = tmp_path / "data"
    tree = make_sample_tree(root, sessions_per_subject=2)
    alyx_url = alyx_service.url
    # A rate limit for this Alyx, with slots enough for the test and almost no decay, so the
    # slots left taken afterwards count the requests made under it.
    read_limit = shared_limit(alyx_rate_limit_name(alyx_url), limit=100_000, decay=0.001)
    deployment = _deploy(
        server.api_url, "sweep", "shared", alyx_service, {"root": str(root), "quiet_seconds": 0}
    )
    subjects = sorted({s.parents[1] for s in tree.sessions})
    runs = [{}] * 3 + [{"session_path": str(root / s)} for s in subjects]
    _submit(server.api_url, "register-new-sessions/sweep", runs)
    finished = asyncio.run(_wait_final(server.api_url, [deployment]))

    requests = alyx_service.request_count()
    assert [r.state_name for r in finished] == ["Completed"] * len(runs), [
        r.state.message for r in finished
    ]
    # Each flow run's client took slots in batches, for every request it sent.
    taken = read_limit().active_slots
    assert requests <= taken < requests + SHARED_LIMIT_BATCH * len(runs)
    taken_by = Counter(r.labels.get("prefect.worker.name") for r in finished)
    assert set(taken_by) == set(workers), taken_by
    with AlyxClient(
        alyx_url, username=alyx_service.username, password=alyx_service.password
    ) as alyx:
        per_session, per_file = _registered(alyx)
        expected = _registrable(alyx, root, tree.sessions)
    assert per_session == {str(s): 1 for s in tree.sessions}
    assert set(per_file) == expected
    assert set(per_file.values()) == {1}
    assert list(find_flags(root)) == []


def test_work_queues_route_each_rigs_runs_to_that_rigs_worker(lab, alyx_service, tmp_path):
    server, _ = lab
    made = make_sample_tree(tmp_path / "made", sessions_per_subject=1)
    roots = {"rig-a": tmp_path / "rig-a", "rig-b": tmp_path / "rig-b"}
    for rig, lab_name in (("rig-a", "cortexlab"), ("rig-b", "hoferlab")):
        roots[rig].mkdir()
        (made.root / lab_name).rename(roots[rig] / lab_name)
    deployments = {
        rig: _deploy(
            server.api_url, rig, rig, alyx_service, {"root": str(root), "quiet_seconds": 0}
        )
        for rig, root in roots.items()
    }
    for rig in roots:
        _submit(server.api_url, f"register-new-sessions/{rig}", [{}, {}])
    finished = asyncio.run(_wait_final(server.api_url, list(deployments.values())))

    ran_on = {(str(r.deployment_id), r.labels.get("prefect.worker.name")) for r in finished}
    assert ran_on == {(deployments["rig-a"], "worker-a"), (deployments["rig-b"], "worker-b")}
    assert {r.state_name for r in finished} == {"Completed"}
    with _login(alyx_service) as alyx:
        per_session, _ = _registered(alyx)
    assert per_session == {str(s): 1 for s in made.sessions}
