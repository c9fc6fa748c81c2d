"""Register a data root with the register-new-sessions flow on a Dask cluster, or in threads.

    python tests/scale/dask_run.py ROOT ALYX_URL {threads,dask}

Run in its own process by test_dask.py, so the Prefect client state and the cluster are its
own. Prints one JSON object: the flow's summary, and (with Dask) the keys and workers of the
tasks the cluster ran.
"""

import json
import sys

from dask.distributed import Client, LocalCluster, get_task_stream
from prefect_dask import DaskTaskRunner

from one_flows.prefect.register import register_new_sessions


def main(root: str, alyx: str, runner: str) -> None:
    parameters = {"root": root, "alyx": alyx, "quiet_seconds": 0}
    if runner == "threads":
        summary = register_new_sessions(**parameters)
        print(json.dumps({"summary": summary.model_dump(mode="json")}))
        return
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster,
        Client(cluster) as client,
        get_task_stream(client) as stream,
    ):
        on_dask = register_new_sessions.with_options(
            task_runner=DaskTaskRunner(address=cluster.scheduler_address)
        )
        summary = on_dask(**parameters)
        workers = sorted(cluster.scheduler_info["workers"])
    tasks = [{"key": str(t["key"]), "worker": t["worker"]} for t in stream.data]
    print(
        json.dumps({"summary": summary.model_dump(mode="json"), "tasks": tasks, "workers": workers})
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
