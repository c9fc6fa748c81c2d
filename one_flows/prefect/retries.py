"""When a failed step is run again, and after how long.

Steps that talk to the target retry what `one_flows.alyx.is_transient` calls transient (429,
502, 503, 504, dropped and refused connections, timeouts) with exponential backoff and jitter,
and wait at least as long as a ``Retry-After`` from the server asks; a 500 is retried at most
`SERVER_ERROR_RETRIES` times, and 4xx never. `RetrySettings` sets the number and the delays, and
flows take it as a parameter, so each deployment can choose.
"""

from __future__ import annotations

import time
from typing import Any

from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from pydantic import BaseModel, ConfigDict, Field

from one_flows.alyx import AlyxServerError, is_transient
from one_flows.alyx.retry import retry_after
from one_flows.targets import TargetUnavailable

__all__ = ["MAX_RETRY_AFTER", "SERVER_ERROR_RETRIES", "RetrySettings", "retry_if_transient"]

SERVER_ERROR_RETRIES = 2
"""Retries of a server error (500), which the input usually causes, so more seldom help."""
MAX_RETRY_AFTER = 120.0
"""The longest ``Retry-After`` (seconds) a task waits for; a longer one fails the attempt."""


def retry_if_transient(task: Any, task_run: TaskRun, state: State) -> bool:
    """Prefect's ``retry_condition_fn``: whether a failed task run is worth running again.

    Transient faults are; a server error (500) only for the first `SERVER_ERROR_RETRIES` runs;
    anything else is not. When the server asked for a longer wait (``Retry-After``) than the
    task's next retry delay, the difference is waited here, up to `MAX_RETRY_AFTER`.
    """
    exc = state.result(raise_on_failure=False)
    if not isinstance(exc, BaseException):
        return False
    if isinstance(exc, TargetUnavailable) and exc.__cause__ is not None:
        exc = exc.__cause__  # a failed check is retried as the fault that failed it
    if isinstance(exc, AlyxServerError):
        return task_run.run_count <= SERVER_ERROR_RETRIES
    if not is_transient(exc):
        return False
    asked = retry_after(exc)
    if asked is None:
        return True
    if asked > MAX_RETRY_AFTER:
        return False
    time.sleep(max(0.0, asked - _next_delay(task.retry_delay_seconds, task_run.run_count)))
    return True


def _next_delay(delays: float | list[float] | None, run_count: int) -> float:
    """The delay Prefect waits before run number ``run_count + 1`` of a task."""
    if not delays:
        return 0.0
    if isinstance(delays, int | float):
        return float(delays)
    return float(delays[min(run_count - 1, len(delays) - 1)])


class RetrySettings(BaseModel):
    """How often, and after how long, a step that failed transiently is run again."""

    model_config = ConfigDict(frozen=True)

    retries: int = Field(
        default=4, ge=0, le=20, title="Retries", description="Retries of a step, at most."
    )
    delay_seconds: float = Field(
        default=2.0,
        ge=0,
        title="First delay (s)",
        description="Wait before the first retry; doubled for each next one.",
    )
    max_delay_seconds: float = Field(
        default=60.0, ge=0, title="Longest delay (s)", description="Longest wait."
    )
    jitter_factor: float = Field(
        default=0.5,
        ge=0,
        title="Jitter",
        description="Random spread of each wait, as a fraction of it.",
    )

    def task_options(self) -> dict[str, Any]:
        """Keyword arguments of ``Task.with_options`` that apply these settings."""
        delays = [
            min(self.max_delay_seconds, self.delay_seconds * 2**i) for i in range(self.retries)
        ]
        return {
            "retries": self.retries,
            "retry_delay_seconds": delays or 0,
            "retry_jitter_factor": self.jitter_factor or None,
        }
