"""Generated ALF session trees that several benchmarks share.

Sessions are laid out as a lab server keeps them, ``lab/Subjects/subject/date/number``; session
``i`` of a tree belongs to subject ``i % subjects`` (about 100 sessions per subject, labs
alternating by subject) on day ``i // subjects``. Every file name is a valid ALF dataset.
"""

from __future__ import annotations

import datetime
import io
import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks.core import Context, set_old_mtimes

LABS = ("cortexlab", "hoferlab")
FIRST_DATE = datetime.date(2024, 1, 1)
SESSIONS_PER_SUBJECT = 100

TRIALS = tuple(
    f"alf/_ibl_trials.{attribute}.npy"
    for attribute in ("intervals", "choice", "feedbackType", "contrastLeft")
)
"""The datasets of the ``trials`` object, first in every session of a query tree."""

PROBE_DATASETS = (
    *(f"spikes.{a}.npy" for a in ("times", "amps", "clusters", "depths", "samples", "templates")),
    *(f"clusters.{a}.npy" for a in ("amps", "channels", "depths", "peakToTrough")),
)
"""Ten datasets of one probe; each has a dataset type in the Alyx test server."""


def probe_datasets(count: int) -> list[str]:
    """``count`` relative paths: PROBE_DATASETS in probe00/, then probe01/, and so on."""
    return [
        f"alf/probe{i // len(PROBE_DATASETS):02d}/{PROBE_DATASETS[i % len(PROBE_DATASETS)]}"
        for i in range(count)
    ]


def query_datasets(count: int) -> list[str]:
    """``count`` relative paths of a session: the trials object, then probe datasets."""
    if count < len(TRIALS):
        raise ValueError(f"a session needs at least {len(TRIALS)} datasets, got {count}")
    return [*TRIALS, *probe_datasets(count - len(TRIALS))]


def session_rel_path(i: int, subjects: int) -> str:
    """The relative folder of session ``i`` in a tree with ``subjects`` subjects."""
    subject = i % subjects
    date = FIRST_DATE + datetime.timedelta(days=i // subjects)
    return f"{LABS[subject % len(LABS)]}/Subjects/SUBJ{subject:04d}/{date.isoformat()}/001"


def subjects_for(sessions: int) -> int:
    """How many subjects a tree of ``sessions`` sessions has."""
    return max(1, math.ceil(sessions / SESSIONS_PER_SUBJECT))


def write_sessions(
    root: Path,
    sessions: list[str],
    rel_paths: list[str],
    content: Callable[[int, str], bytes],
) -> None:
    """Write every ``rel_path`` into every session folder; ``content(j, rel_path)`` gives bytes.

    Sessions are written by several threads: creating files is mostly waiting on the filesystem.
    """

    def write(session: str) -> None:
        made: set[str] = set()
        for j, rel in enumerate(rel_paths):
            path = os.path.join(root, session, rel)
            folder = os.path.dirname(path)
            if folder not in made:
                os.makedirs(folder, exist_ok=True)
                made.add(folder)
            with open(path, "wb") as f:
                f.write(content(j, rel))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, sessions))


def tiny_npy() -> bytes:
    """A small valid .npy file: ten float64 values."""
    buffer = io.BytesIO()
    np.save(buffer, np.arange(10, dtype=np.float64))
    return buffer.getvalue()


def query_tree(ctx: Context, sessions: int, datasets: int) -> Path:
    """A tree of ``sessions`` sessions of ``datasets`` tiny .npy files each; made once per run."""
    key = ("query_tree", sessions, datasets)
    if key not in ctx.shared:
        root = ctx.folder(f"alf-{sessions}x{datasets}")
        payload = tiny_npy()
        subjects = subjects_for(sessions)
        write_sessions(
            root,
            [session_rel_path(i, subjects) for i in range(sessions)],
            query_datasets(datasets),
            lambda _j, _rel: payload,
        )
        set_old_mtimes(root)
        ctx.shared[key] = root
    return ctx.shared[key]
