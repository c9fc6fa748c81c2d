"""Exceptions raised by the Alyx client, and the one rule that decides which faults are transient.

The hierarchy (its place in the whole tree, and what "outage" means, is drawn in
`one_flows.errors`)::

    AlyxError                      any failure talking to Alyx
    ├── AlyxRequestError           4xx: the request itself is wrong; retrying will not help
    │   ├── AlyxAuthError          bad or no credentials, or a token refused after        (outage)
    │   │                          re-authenticating
    │   └── AlyxNotFound           404
    └── AlyxUnavailable            the server cannot serve us: a TLS failure, answers     (outage)
        │                          that are not Alyx's JSON
        ├── AlyxTransientError     429, 502/503/504, connection refused/reset/dropped, timeouts
        └── AlyxServerError        500 and other 5xx: a server bug, often triggered by bad input
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from urllib3.exceptions import NewConnectionError

from one_flows.errors import OneFlowsError, Outage

BODY_TEXT_LIMIT = 500
"""How many characters of a non-JSON body an exception keeps."""

TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})

# DRF's authentication failures; other 403s (a protected dataset, a permission) are not about
# who the caller is.
_AUTH_DETAILS = frozenset(
    {
        "Authentication credentials were not provided.",
        "Invalid token.",
        "Invalid token header. No credentials provided.",
        "Invalid token header. Token string should not contain spaces.",
        "Invalid token header. Token string should not contain invalid characters.",
        "User inactive or deleted.",
        "Incorrect authentication credentials.",
    }
)
# Keys of an Alyx error body that carry the message rather than naming a bad field.
_MESSAGE_KEYS = ("detail", "error", "details")


class AlyxError(OneFlowsError):
    """A failure talking to Alyx.

    Attributes
    ----------
    status : int or None
        The HTTP status, or None when no response arrived.
    method : str or None
        The HTTP method of the failed request.
    url : str or None
        The request URL, with any user name or password removed.
    response_body : Any
        The parsed JSON body, or the first 500 characters of a text body.
    errors : dict[str, list[str]] or None
        Field name -> messages, when the server rejected individual fields.
    message : str
        The server's message (or a summary of its HTML page), without the prefix.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        url: str | None = None,
        response_body: Any = None,
        errors: dict[str, list[str]] | None = None,
        server_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.method = method
        self.url = url
        self.response_body = response_body
        self.errors = errors or {}
        self.message = server_message if server_message is not None else message


class AlyxRequestError(AlyxError):
    """The server refused the request (4xx); sending it again unchanged will not help."""


class AlyxAuthError(AlyxRequestError, Outage):
    """Bad or no credentials, or a token that the server refused even after re-authenticating."""


class AlyxNotFound(AlyxRequestError):
    """The record or route does not exist (404)."""


class AlyxUnavailable(AlyxError, Outage):
    """The server cannot serve us: a TLS failure, an answer that is not Alyx's JSON (such as a
    proxy's login page), or one of the subclasses' faults."""


class AlyxServerError(AlyxUnavailable):
    """The server failed (500 or another non-transient 5xx), often because of the input."""


class AlyxTransientError(AlyxUnavailable):
    """A fault that may go away: throttling, a proxy error, a dropped connection, a timeout.

    Attributes
    ----------
    retry_after : float or None
        Seconds the server asked the client to wait (429), else None.
    may_have_run : bool
        False when the server surely did not act on the request (the connection
        was never made, or the request was throttled), so even a non-idempotent request can
        be sent again safely.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        may_have_run: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        self.may_have_run = may_have_run


def is_transient(exc: BaseException) -> bool:
    """Whether a fault may go away if the same request is sent again later.

    This is the single place that decides it: throttling (429), proxy and gateway errors
    (502/503/504), refused, reset or dropped connections and timeouts count, whether raised as
    an `AlyxError` or as a raw `requests`/socket exception. 4xx, 500 and TLS failures do not.

    Prefect disables retries silently when `retry_condition_fn` is a `functools.partial` or a
    callable object, so build the condition as a plain module-level function on top of this::

        def retry_if_transient(task, task_run, state) -> bool:
            return is_transient(state.result(raise_on_failure=False))
    """
    if isinstance(exc, AlyxTransientError):
        return True
    if isinstance(exc, AlyxError):
        return False
    if isinstance(exc, requests.HTTPError):
        return exc.response is not None and exc.response.status_code in TRANSIENT_STATUSES
    if isinstance(exc, requests.exceptions.SSLError | requests.exceptions.InvalidURL):
        return False
    # The builtin ConnectionError covers resets, refusals and http.client.RemoteDisconnected.
    return isinstance(
        exc, requests.ConnectionError | requests.Timeout | ConnectionError | TimeoutError
    )


def redact_url(url: str) -> str:
    """The URL without any user name or password in its network location."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def summarise_html(text: str, limit: int = 200) -> str:
    """A one-line summary of an HTML or text page: its title, else its first text."""
    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    if title and title.group(1).strip():
        found = title.group(1)
    else:
        without_code = re.sub(
            r"<(script|style)[^>]*>.*?</\1>", " ", text, flags=re.IGNORECASE | re.DOTALL
        )
        found = re.sub(r"<[^>]+>", " ", without_code)
    summary = " ".join(html.unescape(found).split())
    return summary[:limit] if summary else "(empty body)"


def _messages(value: Any) -> list[str]:
    if isinstance(value, list):
        return [m if isinstance(m, str) else str(m) for m in value]
    return [value if isinstance(value, str) else str(value)]


def _field_errors(body: dict[str, Any]) -> dict[str, list[str]]:
    return {
        key: _messages(value)
        for key, value in body.items()
        if key != "status_code" and key not in _MESSAGE_KEYS
    }


def _json_message(body: Any) -> str:
    """The server's message from an Alyx JSON error body, fields named."""
    if not isinstance(body, dict):
        return str(body)[:BODY_TEXT_LIMIT]
    parts = [
        " ".join(_messages(body[key]))
        for key in _MESSAGE_KEYS
        if key in body and body[key] not in (None, "")
    ]
    for field, messages in _field_errors(body).items():
        text = " ".join(messages)
        parts.append(text if field == "non_field_errors" else f"{field}: {text}")
    return "; ".join(parts)[:BODY_TEXT_LIMIT] or "(no message)"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or HTTP-date), else None."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _error_class(status: int, body: Any, *, login: bool) -> type[AlyxError]:
    if status in TRANSIENT_STATUSES:
        return AlyxTransientError
    if status >= 500:
        return AlyxServerError
    if status == 404:
        return AlyxNotFound
    if status == 401 or (login and status == 400):
        return AlyxAuthError
    if status == 403 and isinstance(body, dict) and body.get("detail") in _AUTH_DETAILS:
        return AlyxAuthError
    return AlyxRequestError


def error_from_response(
    response: requests.Response, method: str, path: str, *, login: bool = False
) -> AlyxError:
    """The exception for an error response; `path` names the request in the message.

    `login` marks a response from the token endpoint, where 400 means bad credentials.
    """
    status = response.status_code
    content_type = response.headers.get("Content-Type", "")
    body: Any
    errors: dict[str, list[str]] = {}
    if "json" in content_type:
        try:
            body = response.json()
        except ValueError:
            body = response.text[:BODY_TEXT_LIMIT]
            server_message = summarise_html(body)
        else:
            server_message = _json_message(body)
            if isinstance(body, dict):
                errors = _field_errors(body)
    else:
        body = response.text[:BODY_TEXT_LIMIT]
        server_message = summarise_html(response.text)
    cls = _error_class(status, body, login=login)
    kwargs: dict[str, Any] = {
        "status": status,
        "method": method,
        "url": redact_url(response.url or path),
        "response_body": body,
        "errors": errors,
        "server_message": server_message,
    }
    if cls is AlyxTransientError:
        kwargs["retry_after"] = parse_retry_after(response.headers.get("Retry-After"))
        # A throttled request is refused before Django runs the view.
        kwargs["may_have_run"] = status != 429
    return cls(f"{method} {path} → {status}: {server_message}", **kwargs)


def error_from_exception(
    exc: requests.RequestException, method: str, path: str, url: str
) -> AlyxError:
    """The exception for a request that got no HTTP response; `path` names it in the message."""
    kwargs: dict[str, Any] = {"method": method, "url": redact_url(url)}
    if isinstance(exc, requests.exceptions.SSLError):
        return AlyxUnavailable(f"{method} {path} → TLS failure: {exc}", **kwargs)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        what, may_have_run = "timed out connecting", False
    elif isinstance(exc, requests.Timeout):
        what, may_have_run = "timed out waiting for the response", True
    elif isinstance(exc, requests.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        refused = isinstance(reason, NewConnectionError)
        what = "could not connect" if refused else "connection dropped before a response"
        may_have_run = not refused
    else:
        return AlyxUnavailable(f"{method} {path} → {type(exc).__name__}: {exc}", **kwargs)
    return AlyxTransientError(
        f"{method} {path} → {what}", may_have_run=may_have_run, server_message=what, **kwargs
    )
