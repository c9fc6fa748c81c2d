"""A typed REST client for Alyx, the database behind the International Brain Laboratory's ONE.

`AlyxClient(url, username=..., password=...)` sends authenticated requests;
`client.list_all("/sessions", {"subject": "algernon"})` reads every page of a list.
"""

from one_flows.alyx.client import DEFAULT_PAGE_SIZE, DEFAULT_TIMEOUT, AlyxClient
from one_flows.alyx.encoding import encode_json, encode_params, encode_value
from one_flows.alyx.errors import (
    AlyxAuthError,
    AlyxError,
    AlyxNotFound,
    AlyxRequestError,
    AlyxServerError,
    AlyxTransientError,
    is_transient,
)
from one_flows.alyx.ratelimit import RateLimiter
from one_flows.alyx.retry import RetryPolicy, can_resend, is_idempotent
from one_flows.alyx.secret import Secret
from one_flows.alyx.settings import AlyxSettings, one_params, resolve_settings

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_TIMEOUT",
    "AlyxAuthError",
    "AlyxClient",
    "AlyxError",
    "AlyxNotFound",
    "AlyxRequestError",
    "AlyxServerError",
    "AlyxSettings",
    "AlyxTransientError",
    "RateLimiter",
    "RetryPolicy",
    "Secret",
    "can_resend",
    "encode_json",
    "encode_params",
    "encode_value",
    "is_idempotent",
    "is_transient",
    "one_params",
    "resolve_settings",
]
