"""The rate at which all workers together send requests to an Alyx server.

A Prefect global concurrency limit with slot decay, named `alyx_rate_limit_name`, paces every
client of that server in every flow run (see `pace_by_shared_limit`), on top of each client's
own limit.
"""

from __future__ import annotations

import logging
import threading
import time
from urllib.parse import urlsplit

from prefect.client.orchestration import get_client
from prefect.concurrency.sync import rate_limit
from prefect.exceptions import ObjectNotFound

from one_flows.alyx import AlyxClient
from one_flows.alyx.ratelimit import RateLimiter

__all__ = ["SHARED_LIMIT_BATCH", "SharedRateLimit", "alyx_rate_limit_name", "pace_by_shared_limit"]

logger = logging.getLogger(__name__)

SHARED_LIMIT_BATCH = 10
"""Slots a client takes at once from its Alyx server's shared rate limit, for its next requests."""


def alyx_rate_limit_name(base_url: str) -> str:
    """The name of the Prefect global concurrency limit that paces every worker's requests to
    an Alyx server: ``alyx:<host[:port]>``, e.g. ``alyx:alyx.internationalbrainlab.org``."""
    host = urlsplit(base_url).netloc.lower()
    if not host:
        raise ValueError(f"not an Alyx URL with a host: {base_url!r}")
    return f"alyx:{host}"


class SharedRateLimit:
    """Paces one client's requests by a Prefect global concurrency limit with slot decay.

    Every request takes a slot; slots are taken from Prefect ``batch`` at a time (one call to
    the Prefect API for that many Alyx requests) and spent on the next requests. The limit's
    decay is the rate all its users together keep to. ``local``, the client's own limiter,
    applies as well. Has the ``acquire`` of `one_flows.alyx.ratelimit.RateLimiter`.
    """

    def __init__(
        self,
        name: str,
        local: RateLimiter | None = None,
        *,
        batch: int = SHARED_LIMIT_BATCH,
        timeout_seconds: float | None = None,
    ) -> None:
        if batch < 1:
            raise ValueError(f"batch must be at least 1, not {batch}")
        self.name = name
        self.local = local
        self.batch = batch
        self.timeout_seconds = timeout_seconds
        self._left = 0
        # Held while waiting for Prefect, so the client's threads take their turns in order.
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait until a request may start, and return the seconds waited.

        Raises
        ------
        TimeoutError
            The slots were not granted within ``timeout_seconds``.
        """
        waited = self.local.acquire() if self.local is not None else 0.0
        with self._lock:
            if self._left == 0:
                started = time.monotonic()
                rate_limit(self.name, occupy=self.batch, timeout_seconds=self.timeout_seconds)
                waited += time.monotonic() - started
                self._left = self.batch
            self._left -= 1
        return waited


def pace_by_shared_limit(client: AlyxClient, timeout_seconds: float | None = None) -> bool:
    """Make ``client`` keep to its server's shared rate limit too, if the Prefect server has an
    active one with slot decay, named `alyx_rate_limit_name`; returns whether it does.

    Create the limit once for all workers, e.g. for at most 530 requests in any minute::

        prefect gcl create alyx:alyx.example.org --limit 50 --slot-decay-per-second 8
    """
    name = alyx_rate_limit_name(client.base_url)
    try:
        with get_client(sync_client=True) as prefect:
            limit = prefect.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        return False
    if not limit.active:
        return False
    if not limit.slot_decay_per_second:
        logger.warning("global concurrency limit %s has no slot decay, so no rate: ignored", name)
        return False
    client.rate_limiter = SharedRateLimit(
        name,
        client.rate_limiter,
        batch=min(SHARED_LIMIT_BATCH, limit.limit),
        timeout_seconds=timeout_seconds,
    )
    return True
