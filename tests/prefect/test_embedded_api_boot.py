"""What shortens the embedded API's boot: launching before Prefect is imported (checked against
Prefect's settings once they are read), and not migrating a database this Prefect version has
migrated and that has not changed since."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_HOME,
    PREFECT_SERVER_DATABASE_CONNECTION_URL,
    temporary_settings,
)

from one_flows import _prefect_api as prefect_api
from one_flows._prefect_api import EmbeddedAPI

MIGRATE = "PREFECT_API_DATABASE_MIGRATE_ON_START"


class _Cheap(EmbeddedAPI):
    """An embedded API whose process is a plain HTTP server: for what happens around it."""

    def arguments(self) -> list[str]:
        return ["http.server", "--bind", "127.0.0.1", str(self.port)]


def _database(path: Path, revision: str) -> Path:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS alembic_version (version_num TEXT)")
        db.execute("DELETE FROM alembic_version")
        db.execute("INSERT INTO alembic_version VALUES (?)", (revision,))
    return path


def _stamp(home: Path, database: Path, revision: str, prefect: str) -> None:
    record = {"prefect": prefect, "database": str(database), "revision": revision}
    (home / "embedded-api-migrated.json").write_text(json.dumps(record))


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A working directory without settings files, and no Prefect setting this module reads:
    neither in the environment nor in the settings context (where the suite-wide test API put
    its URL and database)."""
    monkeypatch.chdir(tmp_path)
    for name in ("PREFECT_API_URL", "PREFECT_PROFILE", "PREFECT_PROFILES_PATH", MIGRATE):
        monkeypatch.delenv(name, raising=False)
    for name in (*prefect_api._DATABASE_SETTINGS, *prefect_api._MIGRATE_SETTINGS):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "prefect-home"
    home.mkdir()
    monkeypatch.setenv("PREFECT_HOME", str(home))
    suite_wide = {PREFECT_API_URL, PREFECT_SERVER_DATABASE_CONNECTION_URL}
    with temporary_settings(restore_defaults=suite_wide):
        yield home


def test_a_database_left_migrated_by_this_prefect_is_not_migrated_again(clean_environment):
    home = clean_environment
    version = prefect_api.importlib.metadata.version("prefect")
    database = _database(home / "prefect.db", "rev-b")
    api = EmbeddedAPI(home=home, database=database)
    assert MIGRATE not in api.server_environment()  # never recorded

    _stamp(home, database, "rev-b", version)
    assert api.server_environment()[MIGRATE] == "false"

    _database(database, "rev-c")  # another Prefect migrated it since
    assert MIGRATE not in api.server_environment()
    _stamp(home, database, "rev-c", "0.0.1")  # recorded by another Prefect version
    assert MIGRATE not in api.server_environment()
    _stamp(home, database, "rev-c", version)
    database.unlink()  # the database is gone
    assert MIGRATE not in api.server_environment()


def test_the_users_migration_setting_is_kept_and_then_nothing_is_recorded(
    clean_environment, monkeypatch
):
    home = clean_environment
    database = _database(home / "prefect.db", "rev-b")
    _stamp(home, database, "rev-b", prefect_api.importlib.metadata.version("prefect"))
    monkeypatch.setenv("PREFECT_SERVER_DATABASE_MIGRATE_ON_START", "true")
    api = EmbeddedAPI(home=home, database=database)
    assert MIGRATE not in api.server_environment()  # the child inherits the user's setting
    assert not api._migrates  # and what it did is not recorded


def test_a_boot_records_the_revision_and_the_next_boot_skips_the_migrations(clean_environment):
    home = clean_environment
    with temporary_settings({PREFECT_HOME: str(home)}):
        with EmbeddedAPI() as first:
            assert first.database == (home / "prefect.db").resolve()
        recorded = json.loads((home / "embedded-api-migrated.json").read_text())
        assert recorded["revision"] == prefect_api._revision(first.database)
        assert recorded["revision"]  # Prefect's migrations did run
        second = EmbeddedAPI()
        assert second.server_environment()[MIGRATE] == "false"
        with second:  # healthy without migrating
            pass


@pytest.mark.parametrize(
    ("setup", "why"),
    [
        (lambda d, m: m.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api"), "an API in env"),
        (lambda d, m: (d / "prefect.toml").write_text("[api]\n"), "prefect.toml"),
        (lambda d, m: (d / ".env").write_text("X=1\n"), ".env"),
        (lambda d, m: (d / "pyproject.toml").write_text("[tool.prefect]\n"), "pyproject"),
        (
            lambda d, m: (d / "prefect-home" / "profiles.toml").write_text(
                'active = "lab"\n[profiles.lab]\nPREFECT_API_URL = "http://lab:4200/api"\n'
            ),
            "an API in the active profile",
        ),
    ],
)
def test_no_early_launch_when_settings_may_come_from_elsewhere(
    clean_environment, monkeypatch, setup, why
):
    setup(clean_environment.parent, monkeypatch)
    assert prefect_api._settings_from_environment() is None, why
    assert EmbeddedAPI.launch_early() is None


def test_the_environment_alone_gives_home_and_database(clean_environment, monkeypatch):
    home = clean_environment
    assert prefect_api._settings_from_environment() == (home, home / "prefect.db")
    monkeypatch.setenv("PREFECT_API_DATABASE_CONNECTION_URL", "sqlite+aiosqlite:////x/p.db")
    assert prefect_api._settings_from_environment() == (home, Path("/x/p.db"))
    monkeypatch.setenv("PREFECT_API_DATABASE_CONNECTION_URL", "postgresql+asyncpg://db/prefect")
    assert prefect_api._settings_from_environment() == (home, None)


def test_settle_keeps_an_early_launch_that_matches_the_settings(clean_environment):
    home = clean_environment
    with temporary_settings({PREFECT_HOME: str(home)}):
        early = _Cheap.launch_early()
        assert early is not None and early._process is not None
        try:
            assert _Cheap.settle(early) is early
        finally:
            early.stop()


def test_settle_replaces_an_early_launch_on_another_home(clean_environment, tmp_path):
    home = clean_environment
    early = _Cheap(home=tmp_path / "elsewhere", database=tmp_path / "elsewhere" / "prefect.db")
    early.launch()
    process = early._process
    with temporary_settings({PREFECT_HOME: str(home)}):
        settled = _Cheap.settle(early)
    try:
        assert settled is not early and settled is not None
        assert settled.home == home.resolve() and settled._process is not None
        assert process.poll() is not None  # the wrong one is stopped
    finally:
        settled.stop()


def test_settle_stops_an_early_launch_when_the_settings_name_an_api(clean_environment):
    early = _Cheap.launch_early()
    process = early._process
    with temporary_settings(
        {PREFECT_HOME: str(clean_environment), PREFECT_API_URL: "http://x/api"}
    ):
        assert _Cheap.settle(early) is None
    assert process.poll() is not None
