"""The root of every error one-flows raises.

Each layer has its own tree under `OneFlowsError` (`one_flows.alf.ALFError`,
`one_flows.alyx.AlyxError`, `one_flows.flags.FlagError`,
`one_flows.registration.RegistrationError`), so ``except OneFlowsError`` catches anything
one-flows raises on purpose and lets programming errors through.
"""

from __future__ import annotations

__all__ = ["OneFlowsError"]


class OneFlowsError(Exception):
    """Base class of every error raised by one-flows."""
