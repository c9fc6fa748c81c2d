"""docs/scaling.md and deployments/README.md as a lab reads them: every path they name exists,
every block parses, every `prefect` and `one-flows` command is one the program accepts, and the
lab's deployments written out in docs/scaling.md deploy and route each rig's flags to that rig.
"""

import asyncio
import contextlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.events.worker import EventsWorker
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL, temporary_settings

from one_flows.prefect.events import emit_session_flagged

REPO = Path(__file__).resolve().parents[2]
SCALING = REPO / "docs" / "scaling.md"
DOCS = [SCALING, REPO / "deployments" / "README.md"]
RIGS = ("rig-a", "rig-b")
LAB_ALYX = {"$ref": {"block_document_slug": "alyx-credentials/lab-alyx"}}
"""The docs' YAML names the block by slug: nothing to look up when writing it."""
_REPO_PATH = re.compile(
    r"(?<![\w./-])((?:deployments|docs|tests|flows|one_flows|benchmarks)/[\w./#-]*[\w/]"
    r"|[\w.-]+/[\w./#-]*\.(?:service|py|yaml|md)|prefect\.yaml)"
)
"""A path relative to the checkout: under one of its folders, or any relative path of a file."""


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


def _commands(text: str, program: str) -> list[list[str]]:
    """The `program ...` commands of the bash blocks, one argument list each."""
    found = []
    for block in _blocks(text, "bash"):
        for line in block.splitlines():
            for part in line.split("#", 1)[0].split("&&"):
                words = shlex.split(part)
                if words and words[0] == program:
                    found.append(words)
    return found


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_every_path_the_doc_names_exists(doc: Path) -> None:
    named = {m.split(":", 1)[0] for m in _REPO_PATH.findall(doc.read_text())}
    assert "deployments/systemd/prefect-worker.service" in named or doc != SCALING
    assert sorted(p for p in named if not (REPO / p).exists()) == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_every_block_parses(doc: Path) -> None:
    text = doc.read_text()
    for block in _blocks(text, "yaml"):
        assert isinstance(yaml.safe_load(block), dict)
    for block in _blocks(text, "python"):
        compile(block, str(doc), "exec")
    assert _blocks(text, "bash")


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_every_command_is_one_the_program_accepts(doc: Path, parse_command) -> None:
    text = doc.read_text()
    commands = _commands(text, "prefect") + _commands(text, "one-flows")
    assert commands
    for arguments in commands:
        parse_command(arguments)


def _lab_yaml() -> str:
    (block,) = [b for b in _blocks(SCALING.read_text(), "yaml") if "rig-a-on-flag" in b]
    return block


def test_the_lab_deployments_deploy_and_each_rig_gets_its_own_flags(
    prefect_server, runs_for_sessions, tmp_path
):
    checkout = tmp_path / "one-flows"
    checkout.mkdir()
    shutil.copytree(REPO / "flows", checkout / "flows")
    shutil.copytree(REPO / "deployments", checkout / "deployments")
    (checkout / "lab.yaml").write_text(_lab_yaml())
    env = {**os.environ, **prefect_server.environment, "PREFECT_CLI_PROMPT": "false"}
    prefect = str(Path(sys.executable).with_name("prefect"))
    text = SCALING.read_text()
    setup = [c for c in _commands(text, "prefect") if c[1] in ("work-pool", "work-queue", "gcl")]
    (deploy,) = [c for c in _commands(text, "prefect") if c[1] == "deploy"]
    try:
        for arguments in [*setup, deploy]:
            done = subprocess.run(
                [prefect, *arguments[1:]], env=env, cwd=checkout, capture_output=True, text=True
            )
            assert done.returncode == 0, f"{arguments}:\n{done.stdout}{done.stderr}"
        with temporary_settings({PREFECT_API_URL: prefect_server.api_url}):
            deployments = asyncio.run(_check_the_lab(text))
            sessions = {rig: f"/mnt/{rig}/Data/lab/Subjects/sub/2020-01-01/001" for rig in RIGS}
            on_flag = {rig: deployments[f"register-new-sessions/{rig}-on-flag"] for rig in RIGS}
            asyncio.run(_wait_for_triggers(list(on_flag.values())))
            EventsWorker.drain_all()  # one worker for any server: stop one bound to another
            for session in sessions.values():
                emit_session_flagged(session, "create_me.flag", 60.0)
            EventsWorker.drain_all()
            ids = [d.id for d in on_flag.values()]
            runs = asyncio.run(runs_for_sessions(ids, list(sessions.values())))
        rig_of = {deployment.id: rig for rig, deployment in on_flag.items()}
        routed = sorted((rig_of[r.deployment_id], r.parameters["session_path"]) for r in runs)
        assert routed == sorted(sessions.items())
    finally:
        with temporary_settings({PREFECT_API_URL: prefect_server.api_url}):
            asyncio.run(_remove_the_lab())


async def _deployments() -> dict:
    async with get_client() as client:
        flows = {f.id: f.name for f in await client.read_flows()}
        return {f"{flows[d.flow_id]}/{d.name}": d for d in await client.read_deployments()}


async def _check_the_lab(text: str) -> dict:
    """Check the deployments made from the docs' YAML; return them by full name."""
    deployments = {k: v for k, v in (await _deployments()).items() if v.work_pool_name == "lab"}
    named = set(re.findall(r"`((?:register-new-sessions|preprocess)/[\w-]+)`", text))
    assert (
        set(deployments)
        == named
        == {
            "register-new-sessions/rig-a-on-flag",
            "register-new-sessions/rig-a-sweep",
            "register-new-sessions/rig-b-on-flag",
            "register-new-sessions/rig-b-sweep",
            "preprocess/on-registered",
        }
    )
    for rig in RIGS:
        sweep, on_flag = (
            deployments[f"register-new-sessions/{rig}-{k}"] for k in ("sweep", "on-flag")
        )
        assert {sweep.work_queue_name, on_flag.work_queue_name} == {rig}
        assert sweep.global_concurrency_limit.limit == 1
        assert [s.schedule.interval.total_seconds() for s in sweep.schedules] == [900]
        assert (
            sweep.parameters == on_flag.parameters == {"root": f"/mnt/{rig}/Data", "alyx": LAB_ALYX}
        )
    on_dask = deployments["register-new-sessions/rig-b-sweep"]
    assert on_dask.entrypoint == "deployments/on_dask.py:register_new_sessions_on_dask"
    assert on_dask.job_variables["env"] == {"DASK_SCHEDULER_ADDRESS": "tcp://dask-scheduler:8786"}
    assert deployments["preprocess/on-registered"].work_queue_name == "shared"
    async with get_client() as client:
        limit = await client.read_global_concurrency_limit_by_name("alyx:alyx.example.org")
    assert (limit.limit, limit.slot_decay_per_second) == (50, 8)
    return deployments


async def _wait_for_triggers(deployments: list) -> None:
    async with get_client() as client:
        for deployment in deployments:
            for _ in range(120):
                if await client.read_resource_related_automations(
                    f"prefect.deployment.{deployment.id}"
                ):
                    break
                await asyncio.sleep(0.5)
            else:
                pytest.fail(f"no automation for {deployment.name}")


async def _remove_the_lab() -> None:
    """Delete the lab's deployments, their runs, its limit and its pool, for the next test."""
    ours = [d for d in (await _deployments()).values() if d.work_pool_name == "lab"]
    async with get_client() as client:
        if ours:
            only = DeploymentFilter(id=DeploymentFilterId(any_=[d.id for d in ours]))
            for run in await client.read_flow_runs(deployment_filter=only):
                await client.delete_flow_run(run.id)
        for deployment in ours:
            await client.delete_deployment(deployment.id)
        for name, delete in (
            ("alyx:alyx.example.org", client.delete_global_concurrency_limit_by_name),
            ("lab", client.delete_work_pool),
        ):
            with contextlib.suppress(ObjectNotFound):  # not created: the test failed before
                await delete(name)
