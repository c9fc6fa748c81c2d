"""A thread-safe client-side limit on how many requests start per minute."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    """At most `max_requests` starts in any sliding window of `period` seconds.

    Alyx throttles per user over a sliding minute (550 requests by default) and answers 429
    beyond it; staying under that avoids the waits and retries a 429 costs.
    """

    def __init__(
        self,
        max_requests: int,
        period: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_requests < 1:
            raise ValueError(f"max_requests must be at least 1, not {max_requests}")
        if period <= 0:
            raise ValueError(f"period must be positive, not {period}")
        self.max_requests = max_requests
        self.period = period
        self._clock = clock
        self._sleep = sleep
        self._starts: deque[float] = deque()
        # Held while waiting, so waiting threads take their turns in order.
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait until a request may start, record its start, and return the seconds waited."""
        waited = 0.0
        with self._lock:
            now = self._clock()
            while True:
                while self._starts and now - self._starts[0] >= self.period:
                    self._starts.popleft()
                if len(self._starts) < self.max_requests:
                    break
                pause = self._starts[0] + self.period - now
                self._sleep(pause)
                waited += pause
                now = self._clock()
            self._starts.append(now)
        return waited
