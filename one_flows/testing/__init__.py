"""An Alyx-compatible HTTP server for tests: Alyx semantics on loopback, with fault injection."""

from .faults import FaultInjector
from .server import AlyxTestServer

__all__ = ["AlyxTestServer", "FaultInjector"]
