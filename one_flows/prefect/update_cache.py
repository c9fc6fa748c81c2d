"""The ``update-cache`` flow: bring the ONE cache tables of a data root up to date."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from one_flows.cache import update_tables
from one_flows.registration import default_digest_cache_path

__all__ = ["CacheUpdate", "update_cache"]


class CacheUpdate(BaseModel):
    """What an update of the cache tables changed, in numbers of rows."""

    cache_dir: str
    sessions_added: int
    sessions_removed: int
    datasets_added: int
    datasets_removed: int
    datasets_changed: int
    datasets_unchanged: int
    files_hashed: int


@task(cache_policy=NO_CACHE)
def update_tables_task(root: Path, cache_dir: Path, hash_files: bool | None) -> CacheUpdate:
    """Rescan ``root`` into the tables in ``cache_dir``, hashing only new or changed files."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    summary = update_tables(
        root, cache_dir, hash_files=hash_files, digest_cache=default_digest_cache_path()
    )
    return CacheUpdate(cache_dir=str(cache_dir), **asdict(summary))


@flow(name="update-cache", log_prints=True)
def update_cache(
    root: Path, cache_dir: Path | None = None, hash_files: bool | None = None
) -> CacheUpdate:
    """Update the ONE cache tables (``sessions.pqt``, ``datasets.pqt``) of a data folder.

    Args:
        root: the data folder to index.
        cache_dir: where the tables are (default: ``root``).
        hash_files: store each file's md5; by default, when the existing tables have hashes.
    """
    root = Path(root)
    return update_tables_task(root, Path(cache_dir) if cache_dir else root, hash_files)
