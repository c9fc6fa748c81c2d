"""Hashing a session's files in a flow run, with a progress artifact, on the flow's task runner.

With the flow's thread pool the files are hashed in the task's threads; with another task
runner (e.g. prefect-dask's ``DaskTaskRunner``) the files the digest cache lacks are hashed in
`hash_file_batch` tasks on it, so a cluster that mounts the same data shares the reading.
"""

from __future__ import annotations

import contextvars
import os
import time
from pathlib import Path
from typing import Any

from prefect import task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.task_runners import ThreadPoolTaskRunner

from one_flows.hashing import DigestCache, FileHash, hash_files
from one_flows.registration import default_digest_cache_path
from one_flows.runs import session_name

__all__ = ["HASHING_PROGRESS_MIN_BYTES", "HASH_BATCH_BYTES", "hash_file_batch", "hash_into_cache"]

HASHING_PROGRESS_MIN_BYTES = 1 << 30
"""Sessions with less to hash show no progress artifact: it would finish before anyone looks."""


class _Progress:
    """Reports hashing progress to a progress artifact, at most every `interval` seconds."""

    def __init__(self, artifact_id: Any, interval: float = 1.0) -> None:
        self.artifact_id = artifact_id
        self.interval = interval
        self.last = 0.0
        # hash_files calls back from its worker threads, which lack the flow run's context.
        self.context = contextvars.copy_context()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self.last < self.interval:
            return
        self.last = now
        percent = 100.0 * done / total if total else 100.0
        self.context.run(update_progress_artifact, self.artifact_id, percent)


HASH_BATCH_BYTES = 1 << 30
"""Bytes of files a `hash_file_batch` task reads, when hashing goes to the flow's task runner."""


def hash_into_cache(
    session_path: Path,
    paths: list[Path],
    max_md5_size: int | None = None,
    workers: int | None = None,
) -> int:
    """Hash a session's files in parallel into the digest cache; returns the number of files
    hashed (registration then reads their digests from the cache). A session with at least
    `HASHING_PROGRESS_MIN_BYTES` to hash shows a progress artifact that names it.

    With the flow's default thread pool, the files are hashed here, ``workers`` at a time. With
    another task runner (e.g. prefect-dask's ``DaskTaskRunner``), the files not in the cache
    are hashed in `hash_file_batch` tasks on it, so a cluster that mounts the same data shares
    the reading.
    """
    progress = None
    if _total_size(paths) >= HASHING_PROGRESS_MIN_BYTES:
        artifact = create_progress_artifact(0.0, description=f"Hashing {session_path}")
        progress = _Progress(artifact)
    flow_run = FlowRunContext.get()
    with DigestCache(default_digest_cache_path()) as cache:
        if flow_run is None or isinstance(flow_run.task_runner, ThreadPoolTaskRunner):
            results = hash_files(
                paths, workers=workers, max_md5_size=max_md5_size, cache=cache, progress=progress
            )
        else:
            results = _hash_on_task_runner(session_path, paths, max_md5_size, cache, progress)
    if progress is not None:
        update_progress_artifact(progress.artifact_id, 100.0)
    return sum(1 for r in results if r.ok)


def _total_size(paths: list[Path]) -> int:
    total = 0
    for path in paths:
        try:
            total += path.stat().st_size
        except OSError:
            continue  # hashing reports why
    return total


def _batch_name(parameters: dict[str, Any]) -> str:
    return f"hash-{session_name(parameters['session_path'])}-batch-{parameters['batch']}"


@task(cache_policy=NO_CACHE, task_run_name=_batch_name)
def hash_file_batch(
    session_path: Path, batch: int, paths: list[Path], max_md5_size: int | None = None
) -> list[FileHash]:
    """Hash files (batch number ``batch`` of a session) where the task runs; the digests go
    back to the flow run, which caches them."""
    return hash_files(paths, max_md5_size=max_md5_size)


def _hash_on_task_runner(
    session_path: Path,
    paths: list[Path],
    max_md5_size: int | None,
    cache: DigestCache,
    progress: _Progress | None,
) -> list[FileHash]:
    """Hash the files the cache lacks in `hash_file_batch` tasks of the flow's task runner,
    about `HASH_BATCH_BYTES` a task, and cache the digests of files unchanged meanwhile."""
    results: dict[Path, FileHash] = {}
    before: dict[Path, os.stat_result | None] = {}
    for path in map(Path, paths):
        try:
            st = path.stat()
        except OSError:
            st = None  # the task reports why
        md5 = cache.get(path, st) if st is not None else None
        if md5 is not None and st is not None:
            results[path] = FileHash(path, st.st_size, md5, cached=True)
        else:
            before[path] = st
    batches: list[list[Path]] = [[]]
    size = 0
    for path, st in before.items():
        if batches[-1] and size >= HASH_BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(path)
        size += st.st_size if st is not None else 0
    total = sum(st.st_size for st in before.values() if st is not None)
    done = 0
    futures = [
        hash_file_batch.submit(session_path, number, batch, max_md5_size)
        for number, batch in enumerate(filter(None, batches), start=1)
    ]
    for future in futures:
        for hashed in future.result():
            results[hashed.path] = hashed
            done += hashed.size or 0
            st = before[hashed.path]
            if hashed.ok and st is not None and _unchanged(hashed.path, st):
                cache.put(hashed.path, st, hashed.md5)
        if progress is not None:
            progress(done, total)
    return [results[Path(p)] for p in paths]


def _unchanged(path: Path, st: os.stat_result) -> bool:
    try:
        now = path.stat()
    except OSError:
        return False
    return (now.st_size, now.st_mtime_ns, now.st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)
