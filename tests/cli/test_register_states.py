"""`one-flows register`'s exit code follows the flow run's state, and it says why a run failed."""

from pathlib import Path

from typer.testing import CliRunner

from one_flows._prefect_api import free_port
from one_flows.cli import app
from one_flows.flags import FlagState, find_flags

runner = CliRunner()


def _register(api: str, root: Path, *args: str):
    """``one-flows register ROOT ARGS`` on the test API, named in the environment as a lab's
    server is (so the command launches no embedded API)."""
    return runner.invoke(
        app,
        ["register", str(root), "--quiet-seconds", "0", *args],
        env={"COLUMNS": "500", "PREFECT_API_URL": api},
    )


def _states(root: Path) -> list[FlagState]:
    return sorted(f.state for f in find_flags(root, states=set(FlagState), on_error=None))


def test_an_unreachable_target_exits_1_naming_the_cause(prefect_api, sample_root):
    result = _register(prefect_api, sample_root, "--alyx", f"http://127.0.0.1:{free_port()}")
    assert result.exit_code == 1, result.output
    assert "ended Failed" in result.output and ": unreachable (" in result.output
    assert _states(sample_root) == [FlagState.PENDING] * 6


def test_a_failed_session_exits_1_with_the_table_and_the_count(
    prefect_api, alyx_server, monkeypatch, sample_root
):
    monkeypatch.setenv("ALYX_LOGIN", alyx_server.username)
    monkeypatch.setenv("ALYX_PASSWORD", alyx_server.password)
    alyx_server.add_subject("KS022", lab="cortexlab")  # KS023 and SWC_043 are unknown
    result = _register(prefect_api, sample_root, "--alyx", alyx_server.url)
    assert result.exit_code == 1, result.output
    assert result.output.count(" registered ") == 2
    assert "ended Failed: 4 of 6 sessions failed; first: " in " ".join(result.output.split())


def test_a_dry_run_exits_0_and_names_what_would_be_refused(
    prefect_api, alyx_server, monkeypatch, sample_root
):
    monkeypatch.setenv("ALYX_LOGIN", alyx_server.username)
    monkeypatch.setenv("ALYX_PASSWORD", alyx_server.password)
    alyx_server.add_subject("KS022", lab="cortexlab")
    result = _register(prefect_api, sample_root, "--alyx", alyx_server.url, "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output.count("would fail") == 4
    assert '"SWC_043" does not exist in subjects' in " ".join(result.output.split())
    assert _states(sample_root) == [FlagState.PENDING] * 6
