"""Guards against the Prefect server stack breaking under new releases of its dependencies.

Prefect 3.8's server crashed at import with fastapi 0.165 / SQLAlchemy 2.1, and cron schedules
then silently created no runs. pyproject pins what Prefect's lockfile uses; these tests fail when a
release breaks the server again, so CI catches it before users do.
"""

import asyncio

from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentScheduleCreate
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.client.schemas.schedules import CronSchedule
from prefect.settings import PREFECT_API_URL, temporary_settings


@task
def _double(x: int) -> int:
    return 2 * x


@flow
def _doubling(x: int) -> int:
    return _double(x)


def test_ephemeral_api_runs_a_flow(prefect_api):
    state = _doubling(21, return_state=True)
    assert state.is_completed()
    assert state.result() == 42


async def _scheduled_runs(deployment_name: str, wait_seconds: float) -> list:
    async with get_client() as client:
        flow_id = await client.create_flow(_doubling)
        deployment_id = await client.create_deployment(
            flow_id=flow_id,
            name=deployment_name,
            entrypoint="tests/prefect/test_prefect_stack.py:_doubling",
            schedules=[DeploymentScheduleCreate(schedule=CronSchedule(cron="*/5 * * * *"))],
        )
        only_ours = DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
        for _ in range(int(wait_seconds)):
            runs = await client.read_flow_runs(deployment_filter=only_ours)
            if runs:
                return runs
            await asyncio.sleep(1)
        return []


def test_server_scheduler_creates_runs_for_a_cron_schedule(prefect_server):
    server = prefect_server
    with temporary_settings({PREFECT_API_URL: server.api_url}):
        runs = asyncio.run(_scheduled_runs("stack-guard", wait_seconds=60))
        assert runs, f"the scheduler created no runs in 60 s; server log:\n{server.log_tail()}"
        assert {run.state_name for run in runs} == {"Scheduled"}
        times = sorted(run.expected_start_time for run in runs)
        assert all(t.minute % 5 == 0 and t.second == 0 for t in times)
