"""An example preprocessing flow, run for each newly registered session.

``prefect.yaml`` deploys it with a trigger on ``one.session.registered`` that passes the
session's id and folder from the event. It reads the session's trials through the ONE query API
(`one_flows.one.One`) over the ONE cache tables of the session's data root, and reports the
number of trials and the fraction answered correctly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel
from pydantic.json_schema import SkipJsonSchema

from one_flows.cache import update_tables
from one_flows.one import One
from one_flows.prefect.forms import form, no_null_defaults
from one_flows.prefect.tasks import session_step_name
from one_flows.runs import data_root

__all__ = ["TrialsSummary", "preprocess"]


class TrialsSummary(BaseModel):
    """What the example preprocessing found in a session's trials."""

    eid: str
    session_path: str
    n_trials: int
    performance: float
    duration_seconds: float


def _open(session_path: Path, cache_dir: Path) -> tuple[One, str]:
    """A `One` over ``cache_dir`` and the local id of the session, indexing it if missing."""
    one = One(cache_dir) if (cache_dir / "sessions.pqt").exists() else None
    local_eid = one.path2eid(session_path) if one is not None else None
    if local_eid is None:
        update_tables(data_root(session_path), cache_dir, sessions=[session_path])
        one = One(cache_dir)
        local_eid = one.path2eid(session_path)
    if local_eid is None:
        raise LookupError(f"{session_path} has no datasets in the cache tables of {cache_dir}")
    return one, local_eid


@task(
    cache_policy=NO_CACHE,
    name="summarise-trials",
    task_run_name=session_step_name("summarise-trials"),
)
def summarise_trials(eid: str, session_path: Path, cache_dir: Path) -> TrialsSummary:
    """Load the session's trials through the ONE query API and summarise them."""
    one, local_eid = _open(session_path, cache_dir)
    trials = one.load_object(local_eid, "trials", collection="alf")
    correct = np.asarray(trials["feedbackType"]) > 0
    intervals = np.asarray(trials["intervals"])
    return TrialsSummary(
        eid=eid,
        session_path=str(session_path),
        n_trials=int(correct.size),
        performance=float(correct.mean()) if correct.size else 0.0,
        duration_seconds=float(intervals[-1, 1] - intervals[0, 0]) if len(intervals) else 0.0,
    )


@no_null_defaults
@flow(name="preprocess", log_prints=True)
def preprocess(
    eid: Annotated[str, form("Session id")],
    session_path: Annotated[Path, form("Session folder")],
    cache_dir: Annotated[Path | SkipJsonSchema[None], form("Cache tables folder")] = None,
) -> TrialsSummary:
    """Summarise the trials of a newly registered session.

    Args:
        eid: The session's id in the database it was registered into.
        session_path: The session folder.
        cache_dir: The ONE cache tables to read (default: the session's data root, which is
            indexed first if the tables lack the session).
    """
    session_path = Path(session_path)
    summary = summarise_trials(eid, session_path, Path(cache_dir or data_root(session_path)))
    create_markdown_artifact(
        f"**{session_path}**: {summary.n_trials} trials, "
        f"{summary.performance:.0%} correct, {summary.duration_seconds:.0f} s",
        key="preprocess-trials",
        description="Trials of the session",
    )
    return summary
