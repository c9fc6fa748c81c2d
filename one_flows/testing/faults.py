"""Fault injection: make chosen requests fail, stall or drop, to test a client's reliability."""

from __future__ import annotations

import dataclasses
import random
import threading
from dataclasses import dataclass, field

from .protocol import Response

KINDS = ("status", "delay", "drop", "truncate", "corrupt")
SPOILERS = ("truncate", "corrupt")
"""Kinds that let the request be answered, then spoil the answer."""

_REASONS = {
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}


@dataclass
class Fault:
    """One injection rule; ``remaining`` counts down when it was given as ``times``."""

    kind: str
    method: str | None = None
    path: str | None = None
    status: int = 503
    html: bool = False
    retry_after: int | None = None
    seconds: float = 0.0
    remaining: int | None = None
    probability: float | None = None
    rng: random.Random = field(default_factory=random.Random)

    def matches(self, method: str, path: str) -> bool:
        """Whether this rule covers a request (path is a prefix match on the URL path)."""
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path is None or path.startswith(self.path)

    @property
    def reason(self) -> str:
        """The reason phrase of ``status``."""
        return _REASONS.get(self.status, "Error")

    def spoil(self, response: Response) -> Response:
        """The answer as a ``truncate`` or ``corrupt`` fault delivers it."""
        if not response.body:
            return response
        middle = len(response.body) // 2
        if self.kind == "truncate":
            return dataclasses.replace(response, cut=middle)
        body = bytearray(response.body)
        body[middle] ^= 0xFF
        return dataclasses.replace(response, body=bytes(body))

    def html_page(self) -> str:
        """An nginx-style error page, as a reverse proxy in front of Alyx answers."""
        title = f"{self.status} {self.reason}"
        return (
            f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
            f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
            "</body>\r\n</html>\r\n"
        )


class FaultInjector:
    """Rules that make matching requests fail; the server consults it for every request."""

    def __init__(self) -> None:
        self._rules: list[Fault] = []
        self._lock = threading.Lock()

    def add(
        self,
        *,
        method: str | None = None,
        path: str | None = None,
        kind: str,
        status: int = 503,
        html: bool = False,
        retry_after: int | None = None,
        seconds: float = 0.0,
        times: int | None = None,
        probability: float | None = None,
        seed: int | None = None,
    ) -> None:
        """Inject a fault into requests matching ``method`` and the ``path`` prefix (None: any).

        ``kind`` is "status" (answer ``status``, as an HTML page when ``html``, with a
        ``Retry-After`` header when ``retry_after`` is given), "delay" (sleep ``seconds`` before
        answering normally), "drop" (close the connection without an answer), "truncate" (send
        the headers and half the body, then close the connection) or "corrupt" (answer with one
        byte in the middle of the body changed). The rule fires on
        the next ``times`` matching requests, or at random with ``probability`` (reproducibly with
        ``seed``); with both it fires at random at most ``times`` times; with neither, always.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(KINDS)}")
        if times is not None and times < 1:
            raise ValueError(f"times must be a positive count, got {times}")
        if probability is not None and not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be within [0, 1], got {probability}")
        if kind == "status" and not 400 <= status <= 599:
            raise ValueError(f"a status fault needs an error status (4xx/5xx), got {status}")
        if seconds < 0:
            raise ValueError(f"seconds must not be negative, got {seconds}")
        rule = Fault(
            kind=kind,
            method=method,
            path=path,
            status=status,
            html=html,
            retry_after=retry_after,
            seconds=seconds,
            remaining=times,
            probability=probability,
            rng=random.Random(seed),
        )
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()

    def pick(self, method: str, path: str) -> Fault | None:
        """The rule that fires for this request, if any (consuming one of its ``times``)."""
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method, path):
                    continue
                if rule.probability is not None and rule.rng.random() >= rule.probability:
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self._rules.remove(rule)
                return rule
        return None
