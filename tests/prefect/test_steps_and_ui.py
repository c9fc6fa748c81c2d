"""What the Prefect UI shows of a registration: each session's steps as task runs named after it,
each retrying on its own; logs per session and per file; artifacts; the parameter forms."""

import builtins
import json
import logging
import os
import time
from collections import Counter
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect.utilities.schema_tools.validation import ValidationError, validate

import one_flows.hashing
from one_flows.alyx import AlyxClient
from one_flows.prefect import hashing
from one_flows.prefect.preprocess import preprocess
from one_flows.prefect.register import RegistrationOptions, register_new_sessions, register_session
from one_flows.prefect.retries import RetrySettings
from one_flows.prefect.serve import block_reference, load_deployments
from one_flows.prefect.update_cache import update_cache
from one_flows.registration import NO_DATASET_TYPE

FAST = RegistrationOptions(retry=RetrySettings(retries=3, delay_seconds=0, jitter_factor=0))
STEPS = ("create-session", "find-files", "hash", "register-files")


def _task_runs(flow_run_id, names: set[str]) -> dict:
    """The task runs of a flow run, by name, once those ``names`` are all recorded as final
    (task runs reach the API as events, a moment after the run)."""
    only = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    deadline = time.monotonic() + 30
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_task_runs(flow_run_filter=only)
            final = {run.name for run in runs if run.state and run.state.is_final()}
            if names <= final or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    counts = Counter(run.name for run in runs)
    assert max(counts.values()) == 1, counts  # every name says which session and step
    return {run.name: run for run in runs}


def _steps(sessions: list[str]) -> set[str]:
    return {f"{step}-{s}" for s in sessions for step in ("register", *STEPS)}


def _sessions(root: Path) -> list[str]:
    """``subject-date-number`` of each flagged session folder under ``root``."""
    return sorted("-".join(p.parent.parts[-3:]) for p in root.rglob("create_me.flag"))


def _age(root: Path) -> None:
    """Date every file an hour back: the digest cache keeps no digest of a file just written."""
    then = time.time() - 3600
    for path in root.rglob("*"):
        os.utime(path, (then, then))


def test_each_session_shows_its_steps_by_name(prefect_api, sample_root):
    sessions = _sessions(sample_root)
    assert "KS022-2026-01-05-001" in sessions
    state = register_new_sessions(sample_root, quiet_seconds=0, return_state=True)
    assert state.is_completed(), state.message

    run_steps = {"check-target", "take-back-stale-claims", "find-flagged-sessions"}
    runs = _task_runs(state.state_details.flow_run_id, _steps(sessions) | run_steps)
    assert set(runs) == _steps(sessions) | run_steps  # every task run named in words
    for session in sessions:
        parent = runs[f"register-{session}"]
        for step in STEPS:
            (within,) = runs[f"{step}-{session}"].task_inputs["__parents__"]
            assert within.id == parent.id


def test_a_fault_while_registering_repeats_that_step_only(
    prefect_api, alyx, sample_root, monkeypatch
):
    _age(sample_root)
    sessions = _sessions(sample_root)
    opened: Counter = Counter()

    def counting_open(path, *args, **kwargs):
        opened[Path(path)] += 1
        return builtins.open(path, *args, **kwargs)

    monkeypatch.setattr(one_flows.hashing, "open", counting_open, raising=False)
    alyx.faults.add(method="POST", path="/register-file", kind="status", status=503, times=1)
    state = register_new_sessions(
        sample_root, alyx=alyx.url, quiet_seconds=0, options=FAST, return_state=True
    )
    assert state.is_completed(), state.message

    runs = _task_runs(state.state_details.flow_run_id, _steps(sessions))
    counts = {step: sorted(runs[f"{step}-{s}"].run_count for s in sessions) for step in STEPS}
    assert counts["register-files"] == [1] * (len(sessions) - 1) + [2]
    assert counts["create-session"] == counts["find-files"] == counts["hash"] == [1] * 6
    assert alyx.request_count("POST", "/sessions") == len(sessions)
    assert alyx.request_count("POST", "/register-file") == len(sessions) + 1
    assert opened and set(opened.values()) == {1}  # each file read once, by the hashing step
    assert {s.retries for s in state.result().sessions} == {0, 1}


def test_logs_count_each_session_and_warn_of_each_file_not_registered(
    prefect_api, alyx, sample_root, caplog
):
    session = sample_root / "cortexlab/Subjects/KS022/2026-01-05/001"
    (session / "alf" / "foo.bar.npy").write_bytes(b"of no dataset type")
    caplog.set_level(logging.INFO, logger="prefect.task_runs")  # the steps log as task runs
    summary = register_new_sessions(sample_root, alyx=alyx.url, quiet_seconds=0, options=FAST)

    (result,) = [s for s in summary.sessions if s.session_path == str(session)]
    assert result.status == "registered"
    counts = result.counts
    name = "cortexlab/Subjects/KS022/2026-01-05/001"  # paths are shown from the data root on
    infos = [r.message for r in caplog.records if r.levelno == logging.INFO]
    assert [m for m in infos if m.startswith(f"{name}: ") and "files:" in m] == [
        f"{name}: session {result.eid} created; files: {counts['created']} created, "
        f"0 unchanged, {counts['skipped']} skipped, 0 failed"
    ]
    warnings = {r.message for r in caplog.records if r.levelno == logging.WARNING}
    not_registered = {
        f"{summary.relative(s)}/{f.path} skipped: {f.reason}"
        for s in summary.sessions
        for f in s.files
        if f.reason == NO_DATASET_TYPE
    }
    assert f"{name}/alf/foo.bar.npy skipped: {NO_DATASET_TYPE}" in not_registered
    assert warnings == not_registered
    assert not any(str(sample_root) in m for m in infos + list(warnings))


def _artifacts(flow_run_id) -> dict:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return {a.key or a.type: a for a in found}


def _versions(key: str) -> int:
    with get_client(sync_client=True) as client:
        return len(
            client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
        )


def test_a_run_publishes_a_table_and_a_summary_in_words_and_an_empty_one_nothing(
    prefect_api, alyx, sample_root
):
    state = register_new_sessions(
        sample_root, alyx=alyx.url, quiet_seconds=0, options=FAST, return_state=True
    )
    summary = state.result()
    artifacts = _artifacts(state.state_details.flow_run_id)
    table = artifacts["register-new-sessions"]
    assert {row["session"] for row in json.loads(table.data)} == {
        str(Path(s.session_path).relative_to(sample_root)) for s in summary.sessions
    }
    words = artifacts["register-new-sessions-summary"]
    assert words.type == "markdown"
    assert words.data.startswith(f"**6 sessions** under `{sample_root}` into `alyx:{alyx.url}`")
    first = summary.sessions[0]
    link = f"[{Path(first.session_path).relative_to(sample_root)}]({alyx.url}/sessions/{first.eid})"
    assert f"- {link} registered (" in words.data

    before = {key: _versions(key) for key in artifacts if key.startswith("register")}
    again = register_new_sessions(sample_root, alyx=alyx.url, quiet_seconds=0, return_state=True)
    assert again.is_completed() and again.result().sessions == []
    assert _artifacts(again.state_details.flow_run_id) == {}
    assert {key: _versions(key) for key in before} == before


def test_duplicate_records_and_files_gone_are_warned_of_and_summarised(
    prefect_api, alyx, sample_root, caplog
):
    session = sample_root / "cortexlab/Subjects/KS022/2026-01-05/001"
    first = register_session(session, alyx=alyx.url, options=FAST)
    with AlyxClient(alyx.url, username=alyx.username, password=alyx.password) as client:
        # Another machine's record of the session, started earlier: the run keeps to the first.
        client.patch(f"/sessions/{first.eid}", {"start_time": "2026-01-05T12:00:00"})
        other = client.post(
            "/sessions",
            {"subject": "KS022", "lab": "cortexlab", "number": 1, "start_time": "2026-01-05T09:00"},
        )["id"]
    gone = "alf/probe01/spikes.amps.npy"
    (session / gone).unlink()
    (session / "create_me.flag").touch()
    caplog.set_level(logging.INFO, logger="prefect.task_runs")
    state = register_new_sessions(
        sample_root, alyx=alyx.url, session_path=session, quiet_seconds=0, return_state=True
    )

    assert state.is_completed(), state.message  # the session itself registered
    (result,) = state.result().sessions
    assert (result.eid, result.duplicates) == (first.eid, [other])
    assert result.deleted == [gone]
    warnings = {r.message for r in caplog.records if r.levelno == logging.WARNING}
    assert len(result.notices) == 2
    name = "cortexlab/Subjects/KS022/2026-01-05/001"
    assert {f"{name}: {notice}" for notice in result.notices} <= warnings
    words = _artifacts(state.state_details.flow_run_id)["register-new-sessions-summary"]
    assert all(f"**{notice}**" in words.data for notice in result.notices)


def test_the_hashing_progress_names_the_session(prefect_api, sample_root, monkeypatch):
    monkeypatch.setattr(hashing, "HASHING_PROGRESS_MIN_BYTES", 0)
    state = register_new_sessions(sample_root, quiet_seconds=0, return_state=True)
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[state.state_details.flow_run_id])
            )
        )
    progress = sorted(a.description for a in found if a.type == "progress")
    assert progress == sorted(
        f"Hashing {p.parent}"
        for p in sample_root.rglob("*")
        if p.name == "alf" and p.parent.name.isdigit()
    )


def test_a_mistyped_session_folder_is_named_as_such(prefect_api, sample_root):
    missing = sample_root / "cortexlab/Subjects/KS022/2026-01-05/003"
    state = register_session(missing, return_state=True)
    assert state.is_failed() and f"no such session folder: {missing}" in state.message
    state = register_new_sessions(sample_root, session_path=missing, return_state=True)
    assert state.is_failed() and f"no such session folder: {missing}" in state.message


# -- the parameter forms ---------------------------------------------------------------------


def _definition(schema: dict, prop: dict) -> dict:
    ref = prop.get("$ref", "")
    return schema["definitions"][ref.rpartition("/")[2]] if ref else prop


FLOWS = [register_new_sessions, register_session, update_cache, preprocess]


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.name)
def test_every_parameter_has_a_title_a_description_and_no_none_branch(flow):
    schema = flow.parameters.model_dump()
    forms = [schema["properties"]]
    forms += [
        d["properties"]
        for name, d in schema["definitions"].items()
        if "block_type_slug" not in d  # the block's own form is Prefect's
    ]
    for properties in forms:
        for name, prop in properties.items():
            assert prop.get("title") and prop["title"] != name, name
            assert prop.get("description"), name
            assert "null" not in str(prop.get("anyOf", "")) and prop.get("type") != "null", name
    assert schema["properties"]["cache_dir"]["title"] == "Cache tables folder"
    if "alyx" in schema["properties"]:
        alyx = _definition(schema, schema["properties"]["alyx"])
        assert alyx["block_type_slug"] == "alyx-credentials"  # the form picks a block


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.name)
def test_a_form_filled_with_its_defaults_is_valid(flow):
    """The form fills each field with its default and validates before it submits: a default
    of None in a schema that offers no None would be refused ("None is not of type 'string'")."""
    schema = flow.parameters.model_dump()
    required = {"root": "/data", "session_path": "/data/KS022/2026-01-05/001", "eid": "e1"}
    filled = {name: required[name] for name in schema["required"]}
    filled |= {name: p["default"] for name, p in schema["properties"].items() if "default" in p}
    validate(filled, schema, raise_on_error=True)
    assert "None" not in str(filled)
    assert flow.validate_parameters({**filled, "root": "/data"} if "root" in filled else filled)


@pytest.fixture
def lab_alyx(prefect_api) -> str:
    """The id of an AlyxCredentials block saved as ``lab-alyx``."""
    from one_flows.prefect.blocks import AlyxCredentials

    block = AlyxCredentials(base_url="https://alyx.example.org", username="u", password="p")
    return str(block.save("lab-alyx", overwrite=True))


def test_numbers_out_of_bounds_are_refused_by_the_schema_as_in_code(lab_alyx, sample_root):
    schema = register_new_sessions.parameters.model_dump()
    bounds = {name: p.get("minimum") for name, p in schema["properties"].items()}
    assert (bounds["quiet_seconds"], bounds["max_parallel_sessions"]) == (0, 1)
    for bad in ({"quiet_seconds": -1}, {"max_parallel_sessions": 0}, {"alyx": "lab-alyx"}):
        with pytest.raises(ValidationError):
            validate({"root": "/data", **bad}, schema, raise_on_error=True)
    validate({"root": "/data", "alyx": block_reference("lab-alyx")}, schema, raise_on_error=True)
    state = register_new_sessions(sample_root, max_parallel_sessions=0, return_state=True)
    assert state.is_failed() and "max_parallel_sessions" in state.message


def test_deployments_name_the_block_by_its_id_and_keep_the_schema(lab_alyx):
    """By id, as Prefect's form names a block it shows picked."""
    deployments = {d.name: d for d in load_deployments(parameters={"alyx": "lab-alyx"})}
    sweep = deployments["sweep"]
    assert sweep.parameters["alyx"] == {"$ref": {"block_document_id": lab_alyx}}
    assert (
        sweep._parameter_openapi_schema.model_dump()
        == register_new_sessions.parameters.model_dump()
    )
    with pytest.raises(ValueError, match="not a URL"):
        block_reference("https://alyx.example.org")
    with pytest.raises(ValueError, match="no AlyxCredentials block named 'lab-alyz'"):
        block_reference("lab-alyz")
