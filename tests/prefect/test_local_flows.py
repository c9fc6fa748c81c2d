"""Flows with no Alyx configured: registration into ONE cache tables, the cache, re-runs."""

import asyncio
import json
import shutil

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter

from one_flows.flags import find_flags
from one_flows.one import One
from one_flows.prefect import hashing, register
from one_flows.prefect.register import (
    RegistrationOptions,
    register_new_sessions,
    register_session,
)
from one_flows.prefect.update_cache import update_cache


def test_without_alyx_sessions_go_into_cache_tables_of_the_root(
    prefect_api, sample_root, monkeypatch
):
    # Every sample session counts as large, so each shows a hashing progress artifact.
    monkeypatch.setattr(hashing, "HASHING_PROGRESS_MIN_BYTES", 0)
    state = register_new_sessions(sample_root, quiet_seconds=0, return_state=True)
    summary = state.result()
    assert summary.target == f"local:{sample_root}"
    assert [s.status for s in summary.sessions] == ["registered"] * 6
    one = One(sample_root)
    session = summary.sessions[0]
    assert one.path2eid(session.session_path) == session.eid
    created = sorted(f.path for f in session.files if f.status == "created")
    assert sorted(one.list_datasets(session.eid)) == created
    trials = one.load_object(session.eid, "trials", collection="alf")
    assert len(trials["choice"]) == 60
    assert list(find_flags(sample_root)) == []

    artifacts = asyncio.run(_artifacts(state.state_details.flow_run_id))
    table = artifacts["register-new-sessions"]
    assert table.type == "table"
    progress = [a for a in artifacts.values() if a.type == "progress"]
    assert len(progress) == 6 and {a.data for a in progress} == {100.0}


def test_small_sessions_show_no_hashing_progress(prefect_api, sample_root):
    state = register_new_sessions(sample_root, quiet_seconds=0, return_state=True)
    assert [s.status for s in state.result().sessions] == ["registered"] * 6
    artifacts = asyncio.run(_artifacts(state.state_details.flow_run_id))
    assert [a for a in artifacts.values() if a.type == "progress"] == []


async def _artifacts(flow_run_id) -> dict:
    async with get_client() as client:
        found = await client.read_artifacts(
            flow_run_filter=FlowRunFilter(id={"any_": [flow_run_id]})
        )
    return {a.key or str(a.id): a for a in found}


def test_the_table_artifact_has_a_row_per_session_and_per_file(prefect_api, sample_root):
    session = sample_root / "cortexlab/Subjects/KS022/2026-01-05/002"
    (session / "alf" / "notes.txt").write_text("not an ALF dataset")
    summary = register_new_sessions(sample_root, quiet_seconds=0, cache_dir=sample_root / "c")
    rows = summary.table()
    assert len(rows) == len(summary.sessions) + sum(len(s.files) for s in summary.sessions)
    notes = [r for r in rows if r["file"] == "alf/notes.txt"]
    assert notes == [
        {
            "session": "cortexlab/Subjects/KS022/2026-01-05/002",
            "file": "alf/notes.txt",
            "status": "skipped",
            "dataset_type": "",
            "why": notes[0]["why"],
        }
    ]
    assert notes[0]["why"]
    latest = asyncio.run(_latest("register-new-sessions"))
    assert json.loads(latest.data) == rows


async def _latest(key: str):
    async with get_client() as client:
        (artifact,) = await client.read_latest_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    return artifact


def test_register_session_re_registers_one_folder(prefect_api, sample_root):
    session = sample_root / "hoferlab/Subjects/SWC_043/2026-01-05/001"
    first = register_session(session)
    # Asked again, the target confirms it: registered, every file unchanged (without recheck,
    # this machine's ledger may vouch for it instead, once its files are a few seconds old).
    again = register_session(session, options=RegistrationOptions(recheck=True))
    assert first.status == again.status == "registered" and first.eid == again.eid
    assert {f.status for f in again.files} <= {"unchanged", "skipped"}
    # The flag was claimed while the session was registered, then completed: the sweep is done.
    assert sorted(p.name for p in session.iterdir() if "flag" in p.name) == []
    assert One(sample_root).to_eid(session) == first.eid


def test_a_failed_manual_run_gives_the_flag_back(
    prefect_api, sample_root, alyx_server, monkeypatch
):
    monkeypatch.setenv("ALYX_LOGIN", alyx_server.username)
    monkeypatch.setenv("ALYX_PASSWORD", alyx_server.password)
    session = sample_root / "hoferlab/Subjects/SWC_043/2026-01-05/001"  # unknown to this Alyx
    state = register_session(session, alyx=alyx_server.url, return_state=True)
    assert state.is_failed() and "SWC_043" in state.message
    assert [p.name for p in session.iterdir() if "flag" in p.name] == ["create_me.flag"]
    assert list(find_flags(sample_root))


def test_a_manual_run_that_stops_gives_the_flag_back(prefect_api, sample_root, monkeypatch):
    def events_down(*args, **kwargs):
        raise RuntimeError("events down")

    monkeypatch.setattr(register, "emit_session_registered", events_down)
    session = sample_root / "hoferlab/Subjects/SWC_043/2026-01-05/001"
    state = register_session(session, return_state=True)
    assert state.is_failed() and "events down" in state.message
    assert [p.name for p in session.iterdir() if "flag" in p.name] == ["create_me.flag"]


def test_register_session_fails_the_flow_when_a_step_gives_up(prefect_api, tmp_path):
    state = register_session(tmp_path / "x" / "2026-01-01" / "001", return_state=True)
    assert state.is_failed()


def test_update_cache_indexes_and_then_only_rehashes_changes(prefect_api, sample_root, tmp_path):
    first = update_cache(sample_root, tmp_path / "tables", hash_files=True)
    assert first.sessions_added == 6 and first.files_hashed == first.datasets_added > 0
    shutil.rmtree(sample_root / "hoferlab")
    second = update_cache(sample_root, tmp_path / "tables")
    assert second.sessions_removed == 2 and second.files_hashed == 0
    assert second.datasets_unchanged == first.datasets_added - second.datasets_removed


def test_session_path_must_lie_under_root(prefect_api, sample_root):
    session = sample_root / "hoferlab/Subjects/SWC_043/2026-01-05/001"
    with pytest.raises(ValueError, match="not under root"):
        register_new_sessions(sample_root / "cortexlab", session_path=session)


def test_a_flag_event_registers_only_its_session(prefect_api, sample_root):
    session = sample_root / "cortexlab/Subjects/KS023/2026-01-05/002"
    summary = register_new_sessions(sample_root, quiet_seconds=0, session_path=session)
    assert [(s.session_path, s.status) for s in summary.sessions] == [(str(session), "registered")]
    assert len(list(find_flags(sample_root))) == 5


def test_a_flag_listing_files_registers_only_those(prefect_api, sample_root):
    session = sample_root / "cortexlab/Subjects/KS022/2026-01-05/002"
    listed = ["alf/_ibl_trials.choice.npy", "raw_behavior_data/_iblrig_taskSettings.raw.json"]
    (session / "create_me.flag").write_text("\n".join(listed) + "\n")
    summary = register_new_sessions(sample_root, quiet_seconds=0, session_path=session)
    (result,) = summary.sessions
    assert sorted((f.path, f.status) for f in result.files) == [(p, "created") for p in listed]
