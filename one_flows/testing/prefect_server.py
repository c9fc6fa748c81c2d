"""A real Prefect server in a subprocess, for tests that need its background services.

`prefect_test_harness` runs Prefect's ephemeral API, which leaves out the scheduler and the other
background services. Tests of schedules, work pools and workers need the server a lab runs, so this
starts `prefect server start` on a free loopback port with its own home folder and database.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx


class PrefectServerError(RuntimeError):
    """The Prefect server did not start or stopped unexpectedly."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` at the time of the call."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def end_process(process: subprocess.Popen[bytes], sig: int, timeout: float) -> None:
    """Send ``sig`` to a server process and wait for it; kill it if it outlasts ``timeout``."""
    process.send_signal(sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class PrefectServer:
    """`prefect server start` on loopback, with services, a private home and its own database.

    Use as a context manager; `api_url` is what clients and workers take as `PREFECT_API_URL`.
    `database_url` selects the backend (SQLite in the home folder by default, or PostgreSQL).
    """

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        *,
        database_url: str | None = None,
        startup_timeout: float = 90.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.home = Path(home) if home else Path(tempfile.mkdtemp(prefix="prefect-server-"))
        self.port = free_port()
        self.database_url = database_url or f"sqlite+aiosqlite:///{self.home / 'prefect.db'}"
        self.startup_timeout = startup_timeout
        self._extra_env = env or {}
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path = self.home / "server.log"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def environment(self) -> dict[str, str]:
        """Environment variables for processes (clients, workers) that use this server."""
        return {
            "PREFECT_HOME": str(self.home),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }

    def start(self) -> PrefectServer:
        self.home.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            **self.environment,
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": self.database_url,
            **self._extra_env,
        }
        env.pop("PREFECT_API_URL")
        with open(self._log_path, "wb") as log:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "prefect",
                    "server",
                    "start",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise PrefectServerError(f"Prefect server exited at start-up:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise PrefectServerError(
            f"Prefect server not healthy after {self.startup_timeout:.0f} s:\n{self.log_tail()}"
        )

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's own output, for error messages."""
        try:
            return self._log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no server log)"

    def stop(self) -> None:
        if self._process is None:
            return
        end_process(self._process, signal.SIGTERM, timeout=15)
        self._process = None

    def __enter__(self) -> PrefectServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
