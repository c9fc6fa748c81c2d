"""A real Prefect server in a subprocess, for tests that need its background services.

`prefect_test_harness` runs Prefect's ephemeral API, which leaves out the scheduler and the other
background services. Tests of schedules, work pools and workers need the server a lab runs, so this
starts `prefect server start` on a free loopback port with its own home folder and database.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from one_flows._prefect_api import PrefectAPIProcess


class PrefectServer(PrefectAPIProcess):
    """`prefect server start` on loopback, with services, a private home and its own database.

    Use as a context manager; `api_url` is what clients and workers take as `PREFECT_API_URL`.
    `database_url` selects the backend (SQLite in the home folder by default, or PostgreSQL).
    """

    name = "Prefect server"

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        *,
        database_url: str | None = None,
        startup_timeout: float = 90.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.home = Path(home) if home else Path(tempfile.mkdtemp(prefix="prefect-server-"))
        super().__init__(self.home / "server.log", startup_timeout=startup_timeout)
        self.database_url = database_url or f"sqlite+aiosqlite:///{self.home / 'prefect.db'}"
        self._extra_env = env or {}

    @property
    def environment(self) -> dict[str, str]:
        """Environment variables for processes (clients, workers) that use this server."""
        return {
            "PREFECT_HOME": str(self.home),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }

    def arguments(self) -> list[str]:
        return ["prefect", "server", "start", "--host", "127.0.0.1", "--port", str(self.port)]

    def server_environment(self) -> dict[str, str]:
        return {
            **self.environment,
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": self.database_url,
            **self._extra_env,
        }
