"""Files registered by the flows into a named data repository are downloadable by `One`.

Against a real Prefect API and the Alyx test server serving the data folder as the repository's
data server: without a repository, Alyx records the files as on no server, and nothing can be
loaded.
"""

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from one_flows.alyx import AlyxClient
from one_flows.cli import app
from one_flows.one import ALFObjectNotFound, One
from one_flows.prefect.register import register_new_sessions, register_session
from one_flows.targets import RepositoryNotFound

SESSION = "cortexlab/Subjects/KS022/2026-01-05/001"
REPOSITORY = "flatiron_cortexlab"


@pytest.fixture
def served(alyx, sample_root):
    """The Alyx test server, its repository ``flatiron_cortexlab`` served from the data folder."""
    alyx.set_data_url(REPOSITORY, alyx.serve_files(sample_root) + "cortexlab/Subjects/")
    return alyx


def _colleague(server, cache_dir: Path) -> One:
    return One(
        base_url=server.url,
        username=server.username,
        password=server.password,
        cache_dir=cache_dir,
    )


def _exists(server, eid: str) -> set[tuple[str, bool]]:
    """(repository, exists) of the file records of a session's datasets."""
    with AlyxClient(server.url, username=server.username, password=server.password) as alyx:
        datasets = alyx.list_all("/datasets", {"session": eid})
    return {(r["data_repository"], r["exists"]) for d in datasets for r in d["file_records"]}


def test_files_registered_into_a_repository_load_in_one(prefect_api, served, sample_root, tmp_path):
    summary = register_new_sessions(
        sample_root,
        alyx=served.url,
        repository=REPOSITORY,
        session_path=sample_root / SESSION,
        quiet_seconds=0,
    )
    (result,) = summary.sessions
    assert result.status == "registered"
    assert _exists(served, result.eid) == {(REPOSITORY, True)}

    spikes = _colleague(served, tmp_path / "colleague").load_object(
        result.eid, "spikes", collection="alf/probe01"
    )
    for attribute in ("times", "amps", "clusters"):
        expected = np.load(sample_root / SESSION / f"alf/probe01/spikes.{attribute}.npy")
        np.testing.assert_array_equal(spikes[attribute], expected)


def test_without_a_repository_the_files_are_on_no_server(
    prefect_api, served, sample_root, tmp_path
):
    result = register_session(sample_root / SESSION, alyx=served.url)
    assert result.status == "registered"
    assert _exists(served, result.eid) == {(REPOSITORY, False)}
    with pytest.raises(ALFObjectNotFound, match="spikes"):
        _colleague(served, tmp_path / "colleague").load_object(
            result.eid, "spikes", collection="alf/probe01"
        )

    again = register_session(
        sample_root / SESSION,
        alyx=served.url,
        repository=REPOSITORY,
        options={"recheck": True},
    )
    assert _exists(served, again.eid) == {(REPOSITORY, True)}


def test_the_command_registers_into_the_repository_it_names(prefect_api, served, sample_root):
    result = CliRunner().invoke(
        app,
        ["register", str(sample_root), "--alyx", served.url, "--repository", REPOSITORY],
        env={"COLUMNS": "500", "PREFECT_API_URL": prefect_api},
    )
    assert result.exit_code == 0, result.output
    with AlyxClient(served.url, username=served.username, password=served.password) as alyx:
        sessions = alyx.list_all("/sessions", {"lab": "cortexlab"})
    assert sessions
    for session in sessions:
        assert _exists(served, session["id"]) == {(REPOSITORY, True)}


def _flags(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("create_me.flag*"))


def test_a_repository_the_server_lacks_fails_the_run_before_any_claim(
    prefect_api, served, sample_root
):
    flagged = _flags(sample_root)
    state = register_new_sessions(
        sample_root,
        alyx=served.url,
        repository="flatiron_cortexlb",
        quiet_seconds=0,
        return_state=True,
    )
    assert state.is_failed()
    assert "no data repository named flatiron_cortexlb" in state.message
    assert REPOSITORY in state.message
    with pytest.raises(RepositoryNotFound, match=f"on {served.url}"):
        state.result()
    assert _flags(sample_root) == flagged  # every flag pending: none claimed, no attempt spent

    summary = register_new_sessions(
        sample_root, alyx=served.url, repository=REPOSITORY, quiet_seconds=0
    )
    assert {s.status for s in summary.sessions} == {"registered"}
    assert _flags(sample_root) == []


def test_a_session_run_with_a_repository_the_server_lacks_claims_nothing(
    prefect_api, served, sample_root
):
    state = register_session(
        sample_root / SESSION, alyx=served.url, repository="nowhere", return_state=True
    )
    assert state.is_failed()
    assert "no data repository named nowhere" in state.message
    assert (sample_root / SESSION / "create_me.flag").exists()


def test_a_repository_means_nothing_to_local_tables(prefect_api, sample_root):
    result = register_session(sample_root / SESSION, repository="nowhere")
    assert result.status == "registered"


def test_the_command_names_a_repository_the_server_lacks(prefect_api, served, sample_root):
    flagged = _flags(sample_root)
    result = CliRunner().invoke(
        app,
        ["register", str(sample_root), "--alyx", served.url, "--repository", "nowhere"],
        env={"COLUMNS": "500", "PREFECT_API_URL": prefect_api},
    )
    assert result.exit_code == 1, result.output
    assert "no data repository named nowhere" in result.output
    assert REPOSITORY in result.output
    assert _flags(sample_root) == flagged
