"""What requests cost a real Alyx: a latency model for `AlyxTestServer`, and its workers.

A real Alyx answers from a fixed pool of workers (gunicorn's sync workers): each request holds
one worker for its service time, and requests beyond the pool wait in the accept queue, that wait
being part of their latency. `LatencyModel` gives each request a service time (a fixed cost per
request of its endpoint class, plus a cost per file it names for ``POST /register-file``) and the
number of workers; `ServerWorkers` makes the test server keep to it (a semaphore of ``workers``
slots, each held for the request's service time) and accounts for every request served.

``LatencyModel.preset("alyx-3.6")`` holds the figures of Alyx 3.6 on PostgreSQL under gunicorn
with 4 workers on the project's machines: a read 30–45 ms, a session created in ~40 ms, and
``POST /register-file`` 78 ms for 1 file, 390 ms for 10 and 1.39 s for 40.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

ENDPOINT_CLASSES = ("read", "session_create", "register_file", "write")
"""The classes a request's cost is set by: GET/HEAD/OPTIONS anywhere; ``POST /sessions``;
``POST /register-file``; any other write (``POST /auth-token``, PATCH, DELETE, ...)."""


@dataclass(frozen=True)
class Cost:
    """A request's service time: ``seconds`` per request plus ``per_file`` per file it names."""

    seconds: float = 0.0
    per_file: float = 0.0

    def __post_init__(self) -> None:
        if self.seconds < 0 or self.per_file < 0:
            raise ValueError(f"costs must not be negative: {self}")

    def of(self, files: int = 0) -> float:
        """The service time of a request naming ``files`` files."""
        return self.seconds + self.per_file * files


def endpoint_class(method: str, path: str) -> str:
    """The class of `ENDPOINT_CLASSES` a request to ``path`` (no query string) belongs to."""
    method = method.upper()
    if method in ("GET", "HEAD", "OPTIONS"):
        return "read"
    path = path.rstrip("/")
    if method == "POST" and path == "/sessions":
        return "session_create"
    if method == "POST" and path == "/register-file":
        return "register_file"
    return "write"


def files_named(body: bytes) -> int:
    """How many files a request body names in its ``filenames`` (a JSON list or one name)."""
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        return 0
    names = data.get("filenames") if isinstance(data, dict) else None
    if isinstance(names, list):
        return len(names)
    return 1 if isinstance(names, str) and names else 0


@dataclass(frozen=True)
class LatencyModel:
    """Service times by endpoint class, and how many requests the server serves at once.

    ``workers`` None serves every request at once (the test server's own behaviour); with a
    number, requests beyond it wait for a free worker. ``per_file`` costs count the files a
    request names in ``filenames``.
    """

    read: Cost = field(default_factory=Cost)
    session_create: Cost = field(default_factory=Cost)
    register_file: Cost = field(default_factory=Cost)
    write: Cost = field(default_factory=Cost)
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be at least 1 (or None), not {self.workers}")

    @classmethod
    def preset(cls, name: str) -> LatencyModel:
        """A named model of `PRESETS`, e.g. ``"alyx-3.6"``."""
        try:
            return PRESETS[name]
        except KeyError:
            known = ", ".join(sorted(PRESETS))
            raise ValueError(f"unknown latency preset {name!r}; known: {known}") from None

    @classmethod
    def of(cls, latency: LatencyModel | str | None) -> LatencyModel:
        """``latency`` as a model: itself, the preset of that name, or none (no cost, no bound)."""
        if latency is None:
            return cls()
        return cls.preset(latency) if isinstance(latency, str) else latency

    def cost(self, method: str, path: str, files: int = 0) -> float:
        """The service time of one request naming ``files`` files."""
        return getattr(self, endpoint_class(method, path)).of(files)

    def floor(self, requests: Iterable[tuple[str, str, int]]) -> float:
        """The least time the server needs to serve ``requests`` (method, path, files).

        Their service times spread over the workers, but never less than the longest one: a
        request is served by one worker. With unbounded workers, the longest request alone.
        """
        costs = [self.cost(*request) for request in requests]
        if not costs:
            return 0.0
        if self.workers is None:
            return max(costs)
        return max(sum(costs) / self.workers, max(costs))


PRESETS: dict[str, LatencyModel] = {
    "alyx-3.6": LatencyModel(
        read=Cost(0.038),
        session_create=Cost(0.040),
        # Fitted to the three measured points: 1 file 78 ms, 10 files 390 ms, 40 files 1.39 s.
        register_file=Cost(0.045, per_file=0.0335),
        write=Cost(0.040),
        workers=4,
    ),
}
"""Named latency models; ``"alyx-3.6"``: Alyx 3.6 on PostgreSQL, gunicorn with 4 sync workers."""


@dataclass(frozen=True)
class ServedRequest:
    """One request as the server's workers saw it (monotonic seconds).

    ``queued`` is True when it found every worker busy and waited; ``cost`` is its modelled
    service time.
    """

    method: str
    path: str
    files: int
    cost: float
    arrived: float
    started: float
    finished: float
    queued: bool

    @property
    def waited(self) -> float:
        """Seconds spent waiting for a worker."""
        return self.started - self.arrived


class ServerWorkers:
    """Serves requests as a `LatencyModel` says: at most ``workers`` at once, each for its cost.

    `serve` wraps the handling of one request; `served` lists what it accounted for.
    """

    def __init__(self, model: LatencyModel | None = None) -> None:
        self.model = model or LatencyModel()
        self._slots = (
            None if self.model.workers is None else threading.BoundedSemaphore(self.model.workers)
        )
        self._lock = threading.Lock()
        self._in_service = 0
        self._max_in_service = 0
        self._served: list[ServedRequest] = []

    @contextlib.contextmanager
    def serve(self, method: str, path: str, body: bytes = b"") -> Iterator[None]:
        """Hold a worker while the request is handled and until its modelled cost has passed."""
        kind = endpoint_class(method, path)
        files = files_named(body) if getattr(self.model, kind).per_file else 0
        cost = self.model.cost(method, path, files)
        arrived = time.monotonic()
        queued = False
        if self._slots is not None and not self._slots.acquire(blocking=False):
            queued = True
            self._slots.acquire()
        started = time.monotonic()
        with self._lock:
            self._in_service += 1
            self._max_in_service = max(self._max_in_service, self._in_service)
        try:
            yield
            left = cost - (time.monotonic() - started)
            if left > 0:
                time.sleep(left)
        finally:
            finished = time.monotonic()
            with self._lock:
                self._in_service -= 1
                self._served.append(
                    ServedRequest(method, path, files, cost, arrived, started, finished, queued)
                )
            if self._slots is not None:
                self._slots.release()

    @property
    def served(self) -> list[ServedRequest]:
        """Every request served so far, in the order they finished."""
        with self._lock:
            return list(self._served)

    @property
    def max_in_service(self) -> int:
        """The most requests ever served at once."""
        with self._lock:
            return self._max_in_service

    def reset(self) -> None:
        """Forget the requests served so far."""
        with self._lock:
            self._served.clear()
            self._max_in_service = self._in_service
