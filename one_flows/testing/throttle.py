"""Request rate limits per client and scope, as Django REST framework's throttles count them."""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict, deque


class RateLimiter:
    """Sliding one-minute windows of accepted requests, keyed by (scope, client)."""

    WINDOW_SECONDS = 60.0

    def __init__(self) -> None:
        self._history: defaultdict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def wait(self, scope: str, client: str, per_minute: int) -> int | None:
        """None when the request is allowed (and counted), else the seconds until it would be."""
        now = time.monotonic()
        with self._lock:
            history = self._history[(scope, client)]
            while history and now - history[0] >= self.WINDOW_SECONDS:
                history.popleft()
            if len(history) >= per_minute:
                return max(1, math.ceil(self.WINDOW_SECONDS - (now - history[0])))
            history.append(now)
            return None
