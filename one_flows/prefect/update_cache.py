"""The ``update-cache`` flow: bring the ONE cache tables of a data root up to date."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from pydantic.json_schema import SkipJsonSchema

from one_flows.cache import UpdateSummary, update_tables
from one_flows.prefect.forms import form, no_null_defaults
from one_flows.registration import default_digest_cache_path

__all__ = ["update_cache"]


@task(cache_policy=NO_CACHE, name="update-tables", task_run_name="update-tables")
def update_tables_task(root: Path, cache_dir: Path, hash_files: bool | None) -> UpdateSummary:
    """Rescan ``root`` into the tables in ``cache_dir``, hashing only new or changed files."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    return update_tables(
        root, cache_dir, hash_files=hash_files, digest_cache=default_digest_cache_path()
    )


@no_null_defaults
@flow(name="update-cache", log_prints=True)
def update_cache(
    root: Annotated[Path, form("Data folder")],
    cache_dir: Annotated[Path | SkipJsonSchema[None], form("Cache tables folder")] = None,
    hash_files: Annotated[bool | SkipJsonSchema[None], form("Store each file's md5")] = None,
) -> UpdateSummary:
    """Update the ONE cache tables (``sessions.pqt``, ``datasets.pqt``) of a data folder.

    Args:
        root: The data folder to index.
        cache_dir: Where the tables are (default: the data folder).
        hash_files: Store each file's md5; by default, when the existing tables have hashes.
    """
    root = Path(root)
    return update_tables_task(root, Path(cache_dir) if cache_dir else root, hash_files)
