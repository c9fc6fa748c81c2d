"""Where a flow registers (`Target`), and the registration client each flow run keeps for it.

Tasks take only plain, picklable arguments: where registrations go is a `Target` (the name of
an `AlyxCredentials` block, an Alyx URL, or a cache folder), and each task gets its client from
`registration_client`, which keeps one per target for each flow run, so a flow run logs in
once.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

from prefect.context import FlowRunContext
from pydantic import BaseModel, ConfigDict, Field, model_validator

from one_flows.alyx.settings import ENV_URL
from one_flows.prefect.blocks import AlyxCredentials, alyx_client
from one_flows.prefect.ratelimit import pace_by_shared_limit
from one_flows.registration import RegistrationClient
from one_flows.targets import AlyxTarget, LocalTarget, RegistrationTarget

__all__ = ["Target", "registration_client"]


class Target(BaseModel):
    """Where sessions are registered: an Alyx database, or ONE cache tables in a folder.

    ``alyx`` is the name of a saved `AlyxCredentials` block or an Alyx URL (with credentials
    from the environment); ``cache_dir`` a folder of ONE cache tables. With neither, the
    Alyx database configured in the environment (``ALYX_URL``, or ONE-api's default).
    """

    model_config = ConfigDict(frozen=True)

    alyx: str | None = Field(
        default=None, description="An AlyxCredentials block name, or an Alyx URL."
    )
    cache_dir: Path | None = Field(default=None, description="A folder of ONE cache tables.")

    @model_validator(mode="after")
    def _one_target(self) -> Target:
        if self.alyx and self.cache_dir is not None:
            raise ValueError("register into Alyx or into a cache folder, not both")
        return self

    @classmethod
    def choose(
        cls,
        alyx: AlyxCredentials | str | None,
        cache_dir: str | os.PathLike[str] | None,
        root: Path,
    ) -> Target:
        """The target asked for; with none, the Alyx of ``ALYX_URL`` if set, else cache tables.

        ``alyx`` is a saved `AlyxCredentials` block (as a flow's form gives it), a block's
        name or an Alyx URL. ONE-api's default database is never chosen implicitly:
        registering writes, so Alyx is used only when named here or in the environment.
        """
        if isinstance(alyx, AlyxCredentials):
            # Tasks load the block by its name, so they share one client per flow run.
            alyx = alyx._block_document_name
            if not alyx:
                raise ValueError("save the AlyxCredentials block (block.save(name)) to use it")
        if alyx or cache_dir is not None:
            return cls(alyx=alyx or None, cache_dir=cache_dir)
        if os.environ.get(ENV_URL):
            return cls()
        return cls(cache_dir=root)

    @property
    def is_local(self) -> bool:
        """Whether registrations go to cache tables rather than Alyx."""
        return self.cache_dir is not None

    def open(self) -> RegistrationTarget:
        """A new registration target (with a new client) for these settings.

        In a flow run, an Alyx client also keeps to its server's shared rate limit, when the
        Prefect server has one (see `pace_by_shared_limit`).
        """
        if self.cache_dir is not None:
            return LocalTarget(self.cache_dir)
        if self.alyx and self.alyx.startswith(("http://", "https://")):
            client = alyx_client(url=self.alyx)
        else:
            client = alyx_client(block_name=self.alyx)
        if FlowRunContext.get() is not None:
            pace_by_shared_limit(client)
        return AlyxTarget(client)


_CLIENTS: OrderedDict[tuple[Target, str | None], RegistrationClient] = OrderedDict()
_CLIENTS_LOCK = threading.Lock()
_MAX_CLIENTS = 8


def registration_client(target: Target) -> RegistrationClient:
    """The `RegistrationClient` of the current flow run for ``target``, made on first use.

    Alyx clients are kept for the few most recent flow runs of this process, so the tasks of a
    run share one login, and a long-running worker picks up changed credentials with its next
    flow run. A cache folder has one client per process, whose target serialises the writes of
    concurrent runs to the tables.
    """
    flow_run = FlowRunContext.get()
    run_id = str(flow_run.flow_run.id) if flow_run and flow_run.flow_run else None
    key = (target, None if target.is_local else run_id)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            client = _CLIENTS[key] = RegistrationClient(target.open())
            while len(_CLIENTS) > _MAX_CLIENTS:
                # Not closed: a task of its run may still be using it. Its digest cache and
                # ledger (SQLite connections) close when it is garbage-collected.
                _CLIENTS.popitem(last=False)
        _CLIENTS.move_to_end(key)
        return client
