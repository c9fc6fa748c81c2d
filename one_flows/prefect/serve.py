"""Serve the deployments of ``prefect.yaml`` from one process, without a work pool.

For a single lab server: `serve` reads the deployments (schedules, triggers, parameters,
concurrency limits) from ``prefect.yaml``, so the file stays the one definition of them, and runs
them with ``prefect.serve``. The root folder and the Alyx block can be set for all of them.
"""

from __future__ import annotations

import importlib
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from prefect import Flow
from prefect import serve as prefect_serve
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule
from prefect.deployments.runner import RunnerDeployment
from prefect.events import DeploymentEventTrigger

from one_flows.prefect.blocks import AlyxCredentials

__all__ = ["DEFAULT_PREFECT_FILE", "block_reference", "load_deployments", "serve"]

DEFAULT_PREFECT_FILE = Path(__file__).with_name("prefect.yaml")
"""one-flows' own ``prefect.yaml``, installed with the package (the checkout's top-level file)."""


def _flow(entrypoint: str) -> Flow:
    """The flow an entrypoint ``flows/<module>.py:<function>`` names.

    Each ``flows/<module>.py`` of a checkout is the deployable entry point of the flows of
    ``one_flows.prefect.<module>``, where they are taken from: no checkout is needed.
    """
    path, _, name = entrypoint.rpartition(":")
    module = Path(path)
    if module.parent.name != "flows" or module.suffix != ".py":
        raise ValueError(f"entrypoint {entrypoint!r} is not a flow of the flows package")
    return getattr(importlib.import_module(f"one_flows.prefect.{module.stem}"), name)


def _schedule(spec: dict[str, Any]) -> IntervalSchedule | CronSchedule:
    if "interval" in spec:
        return IntervalSchedule(interval=timedelta(seconds=float(spec["interval"])))
    if "cron" in spec:
        return CronSchedule(cron=spec["cron"], timezone=spec.get("timezone"))
    raise ValueError(f"unsupported schedule {spec!r}: give an interval or a cron")


def load_deployments(
    prefect_file: str | os.PathLike[str] = DEFAULT_PREFECT_FILE,
    parameters: dict[str, Any] | None = None,
) -> list[RunnerDeployment]:
    """The deployments of ``prefect_file``, ready to serve.

    ``parameters`` (e.g. ``root``, ``alyx``) replace the file's values in every deployment
    whose flow takes them; ``alyx`` is the name of a saved `AlyxCredentials` block.
    """
    config = yaml.safe_load(Path(prefect_file).read_text())
    given = dict(parameters or {})
    if isinstance(given.get("alyx"), str):
        given["alyx"] = block_reference(given["alyx"])
    deployments = []
    for spec in config.get("deployments") or []:
        flow = _flow(spec["entrypoint"])
        accepted = flow.parameters.properties
        values = {**(spec.get("parameters") or {})}
        values.update({k: v for k, v in given.items() if k in accepted})
        deployments.append(
            flow.to_deployment(
                name=spec["name"],
                description=spec.get("description"),
                parameters=values,
                schedules=[_schedule(s) for s in spec.get("schedules") or []],
                triggers=[DeploymentEventTrigger(**t) for t in spec.get("triggers") or []],
                concurrency_limit=spec.get("concurrency_limit"),
                tags=spec.get("tags"),
            )
        )
    return deployments


def block_reference(name: str) -> dict[str, Any]:
    """The deployment parameter that names the saved `AlyxCredentials` block ``name``.

    A deployment's ``alyx`` is an AlyxCredentials block, as in the flow's form (an Alyx URL
    works only from code). It names the block by its id, as the form does: the form shows
    the block picked (a reference by name would leave the picker empty).

    Raises
    ------
    ValueError
        ``name`` is a URL, or the Prefect API holds no such block.
    """
    if name.startswith(("http://", "https://")):
        raise ValueError(
            f"deployments take an AlyxCredentials block, not a URL: save one for {name} "
            "(see one_flows.prefect.blocks) and give its name"
        )
    try:
        block = AlyxCredentials.load(name, _sync=True)  # sync in an event loop too
    except ValueError:
        raise ValueError(
            f"no AlyxCredentials block named {name!r} on the Prefect API: save one (see "
            "one_flows.prefect.blocks)"
        ) from None
    return {"$ref": {"block_document_id": str(block._block_document_id)}}


def serve(
    prefect_file: str | os.PathLike[str] = DEFAULT_PREFECT_FILE,
    parameters: dict[str, Any] | None = None,
    limit: int | None = None,
) -> None:
    """Serve the deployments of ``prefect_file`` until interrupted; ``limit`` caps the flow
    runs at once."""
    prefect_serve(*load_deployments(prefect_file, parameters), limit=limit)
