"""The Prefect API child processes: the embedded API of ``one-flows register`` and their common
start-up and stop. The embedded API serving a whole registration is tested through the command
(tests/cli/test_cli_prefect.py); the full server through the scheduler guard
(tests/prefect/test_prefect_stack.py)."""

import httpx
import pytest

from one_flows._prefect_api import EmbeddedAPI, PrefectAPIError, PrefectAPIProcess


class _Exits(PrefectAPIProcess):
    name = "a server that cannot start"

    def arguments(self) -> list[str]:
        return ["one_flows_there_is_no_such_module"]


class _NeverAnswers(PrefectAPIProcess):
    name = "a server that never answers"

    def arguments(self) -> list[str]:
        return ["http.server", "--bind", "127.0.0.2", "0"]


def test_a_server_that_exits_at_start_up_is_reported_with_its_output(tmp_path):
    with pytest.raises(PrefectAPIError, match="exited at start-up") as caught:
        _Exits(tmp_path / "server.log").start()
    assert "No module named one_flows_there_is_no_such_module" in str(caught.value)


def test_a_server_that_never_answers_is_stopped_after_the_timeout(tmp_path):
    server = _NeverAnswers(tmp_path / "server.log", startup_timeout=1.5).launch()
    process = server._process
    with pytest.raises(PrefectAPIError, match="not healthy after 2 s"):
        server.wait_ready()
    assert process.poll() is not None  # stopped, not left running
    assert server._process is None


def test_stop_ends_the_process_and_is_safe_twice(tmp_path):
    class Sleeps(PrefectAPIProcess):
        def arguments(self) -> list[str]:
            return ["http.server", "--bind", "127.0.0.1", str(self.port)]

    server = Sleeps(tmp_path / "server.log").launch()
    process = server._process
    server.stop()
    server.stop()
    assert process.poll() is not None
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{server.port}/")


def test_embedded_api_runs_prefects_app_as_its_ephemeral_mode_does(monkeypatch, tmp_path):
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    monkeypatch.delenv("PREFECT_SERVER_ANALYTICS_ENABLED", raising=False)
    monkeypatch.delenv("PREFECT_SERVER_REGISTER_BLOCKS_ON_START", raising=False)
    api = EmbeddedAPI()
    assert api.arguments()[:3] == ["uvicorn", "--factory", "prefect.server.api.server:create_app"]
    assert str(api.port) in api.arguments()
    env = api.server_environment()
    assert env["PREFECT_UI_ENABLED"] == "0" and env["PREFECT__SERVER_EPHEMERAL"] == "1"
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert env["PREFECT_SERVER_REGISTER_BLOCKS_ON_START"] == "false"
    assert api.log_tail() == "(no server log)"


def test_embedded_api_keeps_the_users_choices(monkeypatch):
    monkeypatch.setenv("PREFECT_SERVER_REGISTER_BLOCKS_ON_START", "true")
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "true")
    env = EmbeddedAPI().server_environment()
    assert env["PREFECT_SERVER_REGISTER_BLOCKS_ON_START"] == "true"
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "true"


def test_the_server_process_is_not_a_client_of_another_api(monkeypatch, tmp_path):
    """A PREFECT_API_URL in the environment is for clients; the server must not inherit it."""
    (tmp_path / "print_api_url.py").write_text(
        "import os\nprint('PREFECT_API_URL:', os.environ.get('PREFECT_API_URL', 'unset'))\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")

    class PrintsItsApiUrl(PrefectAPIProcess):
        def arguments(self) -> list[str]:
            return ["print_api_url"]

    server = PrintsItsApiUrl(tmp_path / "server.log").launch()
    server._process.wait(timeout=30)
    assert server.log_tail().strip() == "PREFECT_API_URL: unset"
