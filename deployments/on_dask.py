"""The register-new-sessions flow with its hashing on a Dask cluster, for deployments.

A deployment names a flow by its entrypoint, and a worker imports that entrypoint for each run,
so the task runner has to be part of the flow found there.  Deploy with the entrypoint
``deployments/on_dask.py:register_new_sessions_on_dask`` (see docs/scaling.md); the run connects
to the scheduler in Dask's ``scheduler-address`` setting, which the worker's environment
variable ``DASK_SCHEDULER_ADDRESS`` sets (e.g. ``tcp://dask-scheduler:8786``), and starts a
temporary local cluster when there is none.  Needs ``pip install one-flows[dask]``.
"""

import dask.config
from prefect_dask import DaskTaskRunner

from flows.register import register_new_sessions

register_new_sessions_on_dask = register_new_sessions.with_options(
    task_runner=DaskTaskRunner(address=dask.config.get("scheduler-address", None))
)
