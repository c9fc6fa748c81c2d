"""A Prefect API server in a child process on loopback: the embedded API of ``one-flows``.

With no Prefect server configured, Prefect's own ephemeral mode starts its API in a subprocess
the first time a client needs it, and waits for it there. `EmbeddedAPI` starts the same app the
same way (uvicorn, no UI, the services of ephemeral servers, the database of ``PREFECT_HOME``), but
as soon as the command starts and without waiting: the command's own imports and its scan of the
data folder run while the server imports itself and migrates its database. The caller points
``PREFECT_API_URL`` at it (`use`), so everything Prefect does in the process goes to that server.

Two things shorten its boot. `EmbeddedAPI.launch_early` starts it before this process imports
Prefect (which takes most of a second), from what the environment alone says about Prefect's
settings; `EmbeddedAPI.settle` then checks that guess against the settings and starts it anew if
it was wrong. And a database that a healthy boot of this Prefect version left at a migration
revision, and that is still at it, is not migrated again: the check costs each boot 0.1–0.3 s.

`PrefectAPIProcess` is the part common to it and the full server the tests start
(`one_flows.testing.prefect_server.PrefectServer`): the port, the start-up wait, the stop, and
on Linux the end of the server when the process that started it dies, however it dies (SIGKILL
included), so that no server is left running.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.metadata
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from one_flows.errors import OneFlowsError


class PrefectAPIError(OneFlowsError, RuntimeError):
    """The Prefect API server did not start or stopped unexpectedly."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` at the time of the call."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


PR_SET_PDEATHSIG = 1
"""Linux's ``prctl`` option: the signal a process gets when the thread that created it ends."""


def dies_with_this_process() -> Callable[[], None] | None:
    """A ``preexec_fn`` for `subprocess.Popen` after which the child gets SIGTERM when this
    process ends (Linux; None elsewhere, where there is nothing to set).

    The kernel sends the signal when the *thread* that started the child ends, so start it from
    a thread that lives as long as the process (the main thread).
    """
    if not sys.platform.startswith("linux"):
        return None
    # Looked up here, not in the child, which must run no more than it has to before exec.
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def set_death_signal() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # it died before the signal was set
            os._exit(1)

    return set_death_signal


def end_process(process: subprocess.Popen[bytes], sig: int, timeout: float) -> None:
    """Send ``sig`` to a server process and wait for it; kill it if it outlasts ``timeout``."""
    process.send_signal(sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def file_tail(path: Path, chars: int = 4000) -> str:
    """The last ``chars`` characters of a server's log file, for error messages."""
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no server log)"


class PrefectAPIProcess:
    """A Prefect API server run by this process in a child process, on a free loopback port.

    Subclasses give the command line (`arguments`) and the environment it needs on top of this
    process's (`server_environment`). `launch` starts it and returns at once, `wait_ready` waits
    for its health check, `start` does both; a context manager stops it on exit. Its output goes
    to `log_path`, shown in errors.
    """

    name = "Prefect API"
    stop_timeout = 15.0

    def __init__(self, log_path: str | os.PathLike[str], *, startup_timeout: float = 90.0) -> None:
        self.port = free_port()
        self.startup_timeout = startup_timeout
        self._log_path = Path(log_path)
        self._process: subprocess.Popen[bytes] | None = None
        self._launched_at = 0.0

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def arguments(self) -> list[str]:
        """The command line after ``python -m``."""
        raise NotImplementedError

    def server_environment(self) -> dict[str, str]:
        """Variables the server process gets on top of this process's environment."""
        return {}

    def launch(self) -> Self:
        """Start the server process; return without waiting for it to answer.

        On Linux the server ends when this process does, even when it is killed (see
        `dies_with_this_process`; call from the main thread).
        """
        if self._process is not None:
            return self
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.server_environment()}
        env.pop("PREFECT_API_URL", None)  # the server is the API, not a client of one
        with open(self._log_path, "wb") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", *self.arguments()],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=dies_with_this_process(),
            )
        self._launched_at = time.monotonic()
        return self

    def wait_ready(self) -> Self:
        """Wait for the server to answer its health check; `PrefectAPIError` if it never does."""
        if self._process is None:
            self.launch()
        assert self._process is not None
        deadline = self._launched_at + self.startup_timeout
        with httpx.Client(timeout=2) as client:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    raise PrefectAPIError(f"{self.name} exited at start-up:\n{self.log_tail()}")
                try:
                    if client.get(f"{self.api_url}/health").status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        self.stop()
        raise PrefectAPIError(
            f"{self.name} not healthy after {self.startup_timeout:.0f} s:\n{self.log_tail()}"
        )

    def start(self) -> Self:
        return self.launch().wait_ready()

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's own output, for error messages."""
        return file_tail(self._log_path, chars)

    def stop(self) -> None:
        if self._process is None:
            return
        end_process(self._process, signal.SIGTERM, timeout=self.stop_timeout)
        self._process = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


_MIGRATED = "embedded-api-migrated.json"
"""The file in ``PREFECT_HOME`` recording the revision a healthy boot left its database at."""

_MIGRATE_SETTINGS = (
    "PREFECT_SERVER_DATABASE_MIGRATE_ON_START",
    "PREFECT_API_DATABASE_MIGRATE_ON_START",
)
_DATABASE_SETTINGS = (
    "PREFECT_SERVER_DATABASE_CONNECTION_URL",
    "PREFECT_API_DATABASE_CONNECTION_URL",
)
_SQLITE = "sqlite+aiosqlite:///"


def _sqlite_file(url: str | None) -> Path | None:
    """The database file of a ``sqlite+aiosqlite:///`` URL; None for any other database."""
    if not url or not url.startswith(_SQLITE) or "memory" in url:
        return None
    return Path(url.removeprefix(_SQLITE).partition("?")[0]).resolve()


def _revision(database: Path) -> str | None:
    """The Alembic revision a database file is at; None when it has none or cannot be read."""
    try:
        with contextlib.closing(sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row else None


def _migrated_record(database: Path) -> dict[str, str]:
    return {
        "prefect": importlib.metadata.version("prefect"),
        "database": str(database),
        "revision": _revision(database) or "",
    }


def _settings_from_environment() -> tuple[Path, Path | None] | None:
    """Prefect's home and database file as the environment alone gives them, or None.

    None when Prefect may take these settings from elsewhere: the environment or the active
    profile names an API, or the profile another home or database, or the working directory
    holds settings files.
    """
    if "PREFECT_API_URL" in os.environ or os.environ.get("PREFECT_PROFILES_PATH"):
        return None
    if Path(".env").exists() or Path("prefect.toml").exists():
        return None
    with contextlib.suppress(OSError):
        if "[tool.prefect" in Path("pyproject.toml").read_text(errors="replace"):
            return None
    home = Path(os.environ.get("PREFECT_HOME") or "~/.prefect").expanduser().resolve()
    try:
        with open(home / "profiles.toml", "rb") as file:
            profiles = tomllib.load(file)
    except FileNotFoundError:
        profiles = {}
    except (OSError, tomllib.TOMLDecodeError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active") or "ephemeral"
    profile = profiles.get("profiles", {}).get(active, {})
    if any(k in profile for k in ("PREFECT_API_URL", "PREFECT_HOME", *_DATABASE_SETTINGS)):
        return None
    url = next((os.environ[k] for k in _DATABASE_SETTINGS if os.environ.get(k)), None)
    return home, _sqlite_file(url) if url else home / "prefect.db"


class EmbeddedAPI(PrefectAPIProcess):
    """Prefect's API as its ephemeral mode runs it, on the database of this ``PREFECT_HOME``.

    Its log is ``embedded-api.log`` in ``PREFECT_HOME``. ``home`` and ``database`` (the SQLite
    file, None for another database) are read from Prefect's settings unless given.
    """

    name = "Prefect's embedded API"
    stop_timeout = 5.0

    def __init__(
        self,
        *,
        startup_timeout: float = 90.0,
        home: Path | None = None,
        database: Path | None = None,
    ) -> None:
        if home is None:
            from prefect.settings import get_current_settings

            settings = get_current_settings()
            home = settings.home
            url = settings.server.database.connection_url
            database = _sqlite_file(url.get_secret_value() if url is not None else None)
        self.home = Path(home).resolve()
        self.database = database
        self._migrates = True
        super().__init__(self.home / "embedded-api.log", startup_timeout=startup_timeout)

    @classmethod
    def launch_early(cls) -> EmbeddedAPI | None:
        """Launch before Prefect is imported, as the environment alone says; None if it cannot.

        The caller reads Prefect's settings next, and passes the result to `settle`.
        """
        settings = _settings_from_environment()
        if settings is None:
            return None
        home, database = settings
        return cls(home=home, database=database).launch()

    @classmethod
    def settle(cls, early: EmbeddedAPI | None) -> EmbeddedAPI | None:
        """The launched embedded API that Prefect's settings call for, or None if they name an API.

        That is ``early`` when it runs on the home and database of the settings; otherwise
        ``early`` is stopped and a new one launched.
        """
        try:
            from prefect.settings import get_current_settings

            wanted = None if get_current_settings().api.url else cls()
        except BaseException:
            if early is not None:
                early.stop()
            raise
        if early is not None:
            same = wanted is not None and early.database == wanted.database
            if same and early.home == wanted.home:
                return early
            early.stop()
        return None if wanted is None else wanted.launch()

    def _already_migrated(self) -> bool:
        """Whether a healthy boot of this Prefect version left the database at its revision."""
        if self.database is None:
            return False
        try:
            recorded = json.loads((self.home / _MIGRATED).read_text())
        except (OSError, ValueError):
            return False
        return recorded == _migrated_record(self.database) and bool(recorded["revision"])

    def wait_ready(self) -> Self:
        """Wait for the health check; then record the revision its migrations left."""
        super().wait_ready()
        if self._migrates and self.database is not None:
            from prefect.settings import get_current_settings

            if get_current_settings().server.database.migrate_on_start:
                stamp = self.home / _MIGRATED
                temporary = stamp.with_name(f".{stamp.name}.{os.getpid()}")
                with contextlib.suppress(OSError):
                    temporary.write_text(json.dumps(_migrated_record(self.database)))
                    os.replace(temporary, stamp)
        return self

    def arguments(self) -> list[str]:
        return [
            "uvicorn",
            "--factory",
            "prefect.server.api.server:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "error",
            "--lifespan",
            "on",
        ]

    def server_environment(self) -> dict[str, str]:
        # What Prefect's own ephemeral server sets: no UI, ephemeral services.
        fixed = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1"}
        # Unless asked for: no analytics (a command's helper should not call out to the
        # internet), and no registering of every installed collection's block types at start
        # (it imports them all, prefect-dask's dask among them: 2 s of a fresh start). Nothing
        # here needs the catalogue; a block saved through this API registers its own type.
        defaults = {
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_REGISTER_BLOCKS_ON_START": "false",
        }
        chosen = {k: os.environ[k] for k in defaults if k in os.environ}
        # Migrations run at each boot unless the user chose, or they are known to be done.
        self._migrates = not any(k in os.environ for k in _MIGRATE_SETTINGS)
        if self._migrates and self._already_migrated():
            defaults["PREFECT_API_DATABASE_MIGRATE_ON_START"] = "false"
            self._migrates = False
        return {**defaults, **chosen, **fixed}

    def use(self) -> None:
        """Point this process's Prefect settings (``PREFECT_API_URL``) at this server."""
        from prefect.context import refresh_global_settings_context

        os.environ["PREFECT_API_URL"] = self.api_url
        refresh_global_settings_context()
