"""A typed REST client for Alyx, the database behind the International Brain Laboratory's ONE.

`AlyxClient(url, username=..., password=...)` sends authenticated requests;
`client.list_all("/sessions", {"subject": "algernon"})` reads every page of a list.
"""

from one_flows.alyx.client import AlyxClient
from one_flows.alyx.errors import (
    AlyxAuthError,
    AlyxError,
    AlyxNotFound,
    AlyxRequestError,
    AlyxServerError,
    AlyxTransientError,
    AlyxUnavailable,
    is_transient,
)
from one_flows.alyx.retry import RetryPolicy
from one_flows.alyx.secret import Secret

__all__ = [
    "AlyxAuthError",
    "AlyxClient",
    "AlyxError",
    "AlyxNotFound",
    "AlyxRequestError",
    "AlyxServerError",
    "AlyxTransientError",
    "AlyxUnavailable",
    "RetryPolicy",
    "Secret",
    "is_transient",
]
