"""An Alyx-compatible HTTP server for tests: Alyx semantics on loopback, with fault injection
and a latency model of a real server."""

from .faults import FaultInjector
from .latency import Cost, LatencyModel
from .server import AlyxTestServer

__all__ = ["AlyxTestServer", "Cost", "FaultInjector", "LatencyModel"]
