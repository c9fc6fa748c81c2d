"""A throw-away PostgreSQL server for tests: the database a production Prefect server runs on.

`PostgresServer` runs ``initdb`` in a fresh temporary folder, starts ``postgres`` on a free
loopback port with its socket in that folder, creates one database and removes everything on
exit. PostgreSQL refuses to run as root, so under root the server runs as the ``postgres`` user
(or ``nobody``) and owns its folder. Without PostgreSQL, `PostgresNotInstalled` says so; tests
turn it into a skip.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from one_flows._prefect_api import end_process, file_tail, free_port

__all__ = [
    "TEST_SETTINGS",
    "PostgresNotInstalled",
    "PostgresServer",
    "PostgresServerError",
    "find_bindir",
]

TEST_SETTINGS: Mapping[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}
"""Server settings that trade crash safety for speed: a test database is thrown away anyway."""

_UNPRIVILEGED_USERS = ("postgres", "nobody")


class PostgresServerError(RuntimeError):
    """PostgreSQL could not be set up, or did not start."""


class PostgresNotInstalled(PostgresServerError):
    """The PostgreSQL server binaries are not on this machine."""


def find_bindir() -> Path:
    """The folder of ``initdb``, ``postgres`` and ``createdb``.

    Asks ``pg_config --bindir`` first, then takes the newest ``/usr/lib/postgresql/*/bin``
    (Debian installs the server there, off the ``PATH``).

    Raises
    ------
    PostgresNotInstalled
        Neither has the server binaries.
    """
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if found.returncode == 0:
            candidates.append(Path(found.stdout.strip()))
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted((Path(p) for p in versions), key=_major_version, reverse=True)
    for bindir in candidates:
        if all((bindir / name).is_file() for name in ("initdb", "postgres", "createdb")):
            return bindir
    raise PostgresNotInstalled(
        "PostgreSQL is not installed: no initdb/postgres found through `pg_config --bindir` or "
        "in /usr/lib/postgresql/*/bin (on Debian: apt-get install postgresql)"
    )


def _major_version(bindir: Path) -> int:
    version = bindir.parent.name
    return int(version) if version.isdigit() else -1


def _unprivileged_user() -> pwd.struct_passwd | None:
    """The account to run PostgreSQL as: None (this one) unless this process is root."""
    if os.geteuid() != 0:
        return None
    for name in _UNPRIVILEGED_USERS:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresServerError(
        f"PostgreSQL does not run as root, and none of the users {_UNPRIVILEGED_USERS} exists "
        "to run it as"
    )


class PostgresServer:
    """A PostgreSQL server on loopback with one database, removed on exit.

    Use as a context manager; `url` is the SQLAlchemy URL (asyncpg driver) of the database, as
    Prefect's ``PREFECT_SERVER_DATABASE_CONNECTION_URL`` takes it. ``settings`` are server
    settings (``postgres -c name=value``); by default `TEST_SETTINGS`.
    """

    def __init__(
        self,
        database: str = "prefect",
        *,
        user: str = "prefect",
        bindir: str | os.PathLike[str] | None = None,
        settings: Mapping[str, str] = TEST_SETTINGS,
        startup_timeout: float = 60.0,
    ) -> None:
        self.database = database
        self.user = user
        self.password = secrets.token_hex(16)
        self.bindir = Path(bindir) if bindir is not None else find_bindir()
        self.settings = dict(settings)
        self.startup_timeout = startup_timeout
        self.port = 0
        self.folder: Path | None = None
        self._account = _unprivileged_user()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``postgresql+asyncpg://user:password@127.0.0.1:port/database``."""
        return (
            f"postgresql+asyncpg://{self.user}:{self.password}@127.0.0.1:{self.port}/"
            f"{self.database}"
        )

    @property
    def log_path(self) -> Path:
        if self.folder is None:
            raise PostgresServerError("the server has not been started")
        return self.folder / "postgres.log"

    def _run(self, *command: str) -> None:
        """Run a PostgreSQL program as the server's account; raise with its output on failure."""
        done = subprocess.run(
            [str(self.bindir / command[0]), *command[1:]],
            capture_output=True,
            text=True,
            **self._as_account(),
        )
        if done.returncode != 0:
            raise PostgresServerError(
                f"{command[0]} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
            )

    def _as_account(self) -> dict[str, object]:
        if self._account is None:
            return {}
        return {
            "user": self._account.pw_uid,
            "group": self._account.pw_gid,
            "extra_groups": [],
            "cwd": str(self.folder),
            "env": {**os.environ, "HOME": str(self.folder), "USER": self._account.pw_name},
        }

    def start(self) -> PostgresServer:
        """Create the cluster and the database, and start the server; returns self."""
        # Directly under the system temp folder (sticky, world-traversable): a folder under a
        # root-owned pytest tmp_path would be unreachable for the server's account.
        self.folder = Path(tempfile.mkdtemp(prefix="one-flows-postgres-"))
        try:
            self._initdb(self.folder)
            self._launch(self.folder)
            self._run(
                "createdb",
                "-h",
                str(self.folder),
                "-p",
                str(self.port),
                "-U",
                self.user,
                self.database,
            )
        except BaseException:
            self.stop()
            raise
        return self

    def _initdb(self, folder: Path) -> None:
        if self._account is not None:
            os.chown(folder, self._account.pw_uid, self._account.pw_gid)
        password_file = folder / "password"
        password_file.write_text(self.password + "\n")
        if self._account is not None:
            os.chown(password_file, self._account.pw_uid, self._account.pw_gid)
        password_file.chmod(0o600)
        try:
            self._run(
                "initdb",
                "-D",
                str(folder / "data"),
                "-U",
                self.user,
                f"--pwfile={password_file}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            )
        finally:
            password_file.unlink()

    def _launch(self, folder: Path) -> None:
        self.port = free_port()
        options = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(folder),
            **self.settings,
        }
        command = [str(self.bindir / "postgres"), "-D", str(folder / "data")]
        for name, value in options.items():
            command += ["-c", f"{name}={value}"]
        with open(self.log_path, "wb") as log:
            if self._account is not None:
                os.chown(self.log_path, self._account.pw_uid, self._account.pw_gid)
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, **self._as_account()
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise PostgresServerError(f"postgres exited at start-up:\n{self.log_tail()}")
            ready = subprocess.run(
                [str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.2)
        raise PostgresServerError(
            f"postgres not ready after {self.startup_timeout:.0f} s:\n{self.log_tail()}"
        )

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's log, for error messages."""
        try:
            path = self.log_path
        except PostgresServerError:
            return "(no server log)"
        return file_tail(path, chars)

    def stop(self) -> None:
        """Stop the server (a fast shutdown: open connections are ended) and remove its files."""
        if self._process is not None:
            end_process(self._process, signal.SIGINT, timeout=30)
            self._process = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
