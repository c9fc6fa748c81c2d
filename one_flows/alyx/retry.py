"""When a failed Alyx request may be sent again, and after how long.

Whether a fault is transient is decided by `is_transient` alone; this module adds how many
times, how long to wait, and whether sending again is safe at all. Alyx creates a second
session when `POST /sessions` arrives twice, so a request that may have reached the server is
only sent again when it is idempotent: GET, PUT, PATCH, DELETE, and POSTs to get-or-create
endpoints such as `/register-file`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import requests

from one_flows.alyx.errors import (
    AlyxServerError,
    AlyxTransientError,
    is_transient,
    parse_retry_after,
)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})
IDEMPOTENT_POST_ENDPOINTS = frozenset({"register-file"})
"""POST endpoints that get-or-create, so that posting the same body twice does no harm."""


def is_idempotent(method: str, path: str) -> bool:
    """Whether sending this request twice has the same effect as sending it once."""
    if method.upper() in IDEMPOTENT_METHODS:
        return True
    endpoint = path.split("?", 1)[0].strip("/").split("/")[-1]
    return method.upper() == "POST" and endpoint in IDEMPOTENT_POST_ENDPOINTS


def can_resend(exc: BaseException, *, idempotent: bool) -> bool:
    """Whether sending the failed request again cannot duplicate its effect.

    Always for idempotent requests; otherwise only when the server surely did not act on it
    (the connection was never made, or the request was throttled).
    """
    return idempotent or (isinstance(exc, AlyxTransientError) and not exc.may_have_run)


def retry_after(exc: BaseException) -> float | None:
    """The wait in seconds that the server asked for, if any."""
    if isinstance(exc, AlyxTransientError):
        return exc.retry_after
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return parse_retry_after(exc.response.headers.get("Retry-After"))
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before sending a failed request again.

    Transient faults (see `is_transient`) are retried up to `max_attempts` attempts in all,
    waiting `base * 2**(attempt - 1)` seconds plus up to `jitter` of that at random, at most
    `cap`. A `Retry-After` from the server is waited for in full; one longer than `cap` ends
    the retries instead, leaving the caller to decide. Server errors (500) are retried only
    `server_error_retries` times, since they are mostly caused by the input; 4xx never.
    """

    max_attempts: int = 4
    base: float = 1.0
    cap: float = 60.0
    jitter: float = 0.25
    server_error_retries: int = 2

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")
        if self.base < 0 or self.cap < 0 or self.jitter < 0 or self.server_error_retries < 0:
            raise ValueError("base, cap, jitter and server_error_retries cannot be negative")

    def delay(self, exc: BaseException, attempt: int) -> float | None:
        """Seconds to wait after attempt number `attempt` (from 1) failed with `exc`.

        None means give up: the fault is not worth retrying or the attempts are used up.
        """
        if attempt >= self.max_attempts:
            return None
        if isinstance(exc, AlyxServerError):
            if attempt > self.server_error_retries:
                return None
        elif not is_transient(exc):
            return None
        backoff = self.base * 2 ** (attempt - 1)
        backoff = min(self.cap, backoff * (1 + random.uniform(0, self.jitter)))
        asked = retry_after(exc)
        if asked is None:
            return backoff
        if asked > self.cap:
            return None
        return max(backoff, asked)
