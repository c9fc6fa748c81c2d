"""`AlyxClient`: authenticated JSON requests to an Alyx server's REST API."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from one_flows.alyx.encoding import encode_json, encode_params
from one_flows.alyx.errors import (
    BODY_TEXT_LIMIT,
    AlyxAuthError,
    AlyxError,
    AlyxUnavailable,
    error_from_exception,
    error_from_response,
    redact_url,
    summarise_html,
)
from one_flows.alyx.ratelimit import RateLimiter
from one_flows.alyx.retry import RetryPolicy, can_resend, is_idempotent
from one_flows.alyx.secret import Secret
from one_flows.alyx.settings import resolve_settings

logger = logging.getLogger("one_flows.alyx")

DEFAULT_TIMEOUT = (5.0, 60.0)
"""Seconds to wait for the connection, then for each read of the response."""
DEFAULT_PAGE_SIZE = 1000
DEFAULT_MAX_REQUESTS_PER_MINUTE = 300
"""Below the 550 a minute per user at which Alyx starts answering 429."""

Timeout = float | tuple[float, float]


class AlyxClient:
    """A connection to one Alyx server, safe to share between threads.

    The URL and credentials come from the arguments, then the environment, then ONE-api's
    parameter files (see `one_flows.alyx.settings`). With a password the token is fetched on
    the first request, and fetched again once if the server later refuses it. Requests only
    ever go to the configured server: an absolute URL (such as a page's `next` link, which
    names the server as it sees itself behind a proxy) is sent to the same path and query on
    the configured base URL.

    Parameters
    ----------
    base_url : str or None
        The server, e.g. `https://alyx.example.org`.
    username, password
        Log in through `POST /auth-token`.
    token : str or Secret or None
        An API token, used as is; with a password as well, it is replaced if refused.
    timeout : Timeout
        Seconds to connect and to read, or one number for both.
    verify : bool or str
        Check TLS certificates (or a CA bundle path); turning it off logs a warning.
    retries : int or RetryPolicy
        Client-side retries of transient faults: a count, or a `RetryPolicy`. Off by
        default, since Prefect tasks retry on their own. A request that may have reached
        the server is resent only when idempotent (see `one_flows.alyx.retry`).
    max_requests_per_minute : int or None
        A client-side rate limit shared by all threads; None for none.
    pool_size : int
        Connections kept open, which bounds useful parallelism from threads.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        username: str | None = None,
        password: str | Secret | None = None,
        token: str | Secret | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        verify: bool | str = True,
        retries: int | RetryPolicy = 0,
        max_requests_per_minute: int | None = DEFAULT_MAX_REQUESTS_PER_MINUTE,
        pool_size: int = 16,
    ) -> None:
        settings = resolve_settings(base_url, username, password, token)
        if settings.password is not None and not settings.username:
            raise ValueError("a password was given without a username to log in with")
        self.base_url = settings.base_url
        self.username = settings.username
        self._password = settings.password
        self._token = settings.token
        self._token_lock = threading.Lock()
        self.timeout = timeout
        self._verify = verify
        if verify is False:
            logger.warning("TLS certificate verification is off for %s", self.base_url)
        if isinstance(retries, RetryPolicy):
            self.retry_policy: RetryPolicy | None = retries
        elif retries < 0:
            raise ValueError(f"retries cannot be negative, not {retries}")
        else:
            self.retry_policy = RetryPolicy(max_attempts=retries + 1) if retries else None
        self.rate_limiter: RateLimiter | None = (
            RateLimiter(max_requests_per_minute) if max_requests_per_minute is not None else None
        )
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool_size, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def __repr__(self) -> str:
        return f"AlyxClient(base_url={self.base_url!r}, username={self.username!r})"

    def __enter__(self) -> AlyxClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    # -- requests ---------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: Timeout | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        """Send a request and return the parsed JSON answer (None for an empty one).

        `path` is an endpoint (`"/sessions"`, `"sessions/<id>"`) or an absolute URL. `params`
        are encoded as Alyx reads them (see `one_flows.alyx.encoding`); `json` is sent as a JSON
        body, `data` form-encoded. `idempotent` overrides whether a failed request may be sent
        again when it may have reached the server (only with client-side retries on).

        Raises
        ------
        AlyxError
            The subclass says what went wrong; see `one_flows.alyx.errors`.
        """
        method = method.upper()
        if json is not None and data is not None:
            raise ValueError("send either a json or a data body, not both")
        url = self._url(path, params)
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        body: bytes | None = None
        content_type: str | None = None
        if json is not None:
            body, content_type = encode_json(json), "application/json"
        elif data is not None:
            body = urlencode(encode_params(data)).encode("ascii")
            content_type = "application/x-www-form-urlencoded"
        send_again_ok = is_idempotent(method, parts.path) if idempotent is None else idempotent
        extra = dict(headers or {})
        if content_type:
            extra["Content-Type"] = content_type
        attempt = 1
        while True:
            try:
                response = self._send_authenticated(
                    method, url, target, body, extra, timeout or self.timeout
                )
                return _parse(response, method, target)
            except AlyxError as exc:
                delay = None
                if self.retry_policy is not None and can_resend(exc, idempotent=send_again_ok):
                    delay = self.retry_policy.delay(exc, attempt)
                if delay is None:
                    raise
                logger.warning("%s; retrying in %.1f s (attempt %d)", exc, delay, attempt + 1)
                time.sleep(delay)
                attempt += 1

    def get(self, path: str, params: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        """GET `path`; see `request`."""
        return self.request("GET", path, params=params, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        """POST `path`; see `request`."""
        return self.request("POST", path, json=json, **kwargs)

    def put(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        """PUT `path`; see `request`."""
        return self.request("PUT", path, json=json, **kwargs)

    def patch(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        """PATCH `path`; see `request`."""
        return self.request("PATCH", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        """DELETE `path`; see `request`."""
        return self.request("DELETE", path, **kwargs)

    # -- lists ------------------------------------------------------------------------------

    def iter_pages(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[list[Any]]:
        """Yield a list endpoint's results one page at a time, fetching each page when needed.

        `limit` and `offset` in `params` take precedence over `page_size` and the start.
        """
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, not {page_size}")
        page = self.get(path, params={"limit": page_size, **(params or {})})
        while True:
            if not isinstance(page, dict) or not isinstance(page.get("results"), list):
                raise AlyxUnavailable(f"GET {path} did not answer a list or a page of results")
            yield page["results"]
            if not page.get("next") or not page["results"]:
                return
            page = self.get(page["next"])

    def paginate(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[Any]:
        """Yield a list endpoint's records one by one, holding one page at a time."""
        for page in self.iter_pages(path, params, page_size=page_size):
            yield from page

    def list_all(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> list[Any]:
        """All the records of a list endpoint, every page fetched."""
        return list(self.paginate(path, params, page_size=page_size))

    # -- authentication ---------------------------------------------------------------------

    def authenticate(self) -> None:
        """Fetch a new token with the password now, replacing any token held.

        Raises
        ------
        AlyxAuthError
            No password to log in with, or the server refused the credentials.
        """
        with self._token_lock:
            self._login()

    def _login(self) -> None:
        """Fetch a token; the caller holds the token lock."""
        if self._password is None or not self.username:
            raise AlyxAuthError(
                f"cannot log in to {self.base_url}: no username and password",
                method="POST",
                url=f"{self.base_url}/auth-token",
            )
        url = f"{self.base_url}/auth-token"
        body = urlencode({"username": self.username, "password": self._password.reveal()})
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        response = self._send("POST", url, "/auth-token", None, body.encode(), headers, None)
        if not response.ok:
            raise error_from_response(response, "POST", "/auth-token", login=True)
        answer = _parse(response, "POST", "/auth-token")
        if not isinstance(answer, dict) or not isinstance(answer.get("token"), str):
            raise AlyxAuthError(
                "POST /auth-token answered no token", method="POST", url=url, status=200
            )
        self._token = Secret(answer["token"])
        logger.debug("logged in to %s as %s", self.base_url, self.username)

    def _current_token(self) -> Secret | None:
        if self._token is None and self._password is not None:
            with self._token_lock:
                if self._token is None:
                    self._login()
        return self._token

    def _replace_token(self, rejected: Secret | None) -> Secret | None:
        """Log in again unless another thread already replaced the rejected token."""
        with self._token_lock:
            if self._token is rejected:
                self._login()
        return self._token

    def _send_authenticated(
        self,
        method: str,
        url: str,
        target: str,
        body: bytes | None,
        headers: Mapping[str, str],
        timeout: Timeout,
    ) -> requests.Response:
        token = self._current_token()
        response = self._send(method, url, target, token, body, headers, timeout)
        if self._password is not None and _token_refused(response):
            logger.info("%s refused the token; logging in again", self.base_url)
            token = self._replace_token(token)
            response = self._send(method, url, target, token, body, headers, timeout)
        return response

    def _send(
        self,
        method: str,
        url: str,
        target: str,
        token: Secret | None,
        body: bytes | None,
        headers: Mapping[str, str],
        timeout: Timeout | None,
    ) -> requests.Response:
        if self.rate_limiter is not None:
            self.rate_limiter.acquire()
        all_headers = {"Accept": "application/json", **headers}
        if token is not None:
            all_headers["Authorization"] = f"Token {token.reveal()}"
        started = time.perf_counter()
        try:
            response = self._session.request(
                method,
                url,
                data=body,
                headers=all_headers,
                timeout=timeout or self.timeout,
                verify=self._verify,
            )
        except requests.RequestException as exc:
            elapsed = (time.perf_counter() - started) * 1000
            logger.debug("%s %s → %s after %.1f ms", method, target, type(exc).__name__, elapsed)
            raise error_from_exception(exc, method, target, url) from exc
        elapsed = (time.perf_counter() - started) * 1000
        logger.debug("%s %s → %d in %.1f ms", method, target, response.status_code, elapsed)
        return response

    def _url(self, path: str, params: Mapping[str, Any] | None) -> str:
        """The full URL of an endpoint or absolute URL, on the configured server."""
        base = urlsplit(self.base_url)
        if "://" in path:
            parts = urlsplit(path)
            route = parts.path
            if base.path and not route.startswith(f"{base.path}/"):
                route = base.path + route
            url = urlunsplit((base.scheme, base.netloc, route, parts.query, ""))
        else:
            url = f"{self.base_url}/{path.lstrip('/')}"
        query = urlencode(encode_params(params))
        if query:
            url += ("&" if "?" in url else "?") + query
        return url


def _token_refused(response: requests.Response) -> bool:
    if response.status_code == 401:
        return True
    if response.status_code != 403 or "json" not in response.headers.get("Content-Type", ""):
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("detail") == "Invalid token."


def _parse(response: requests.Response, method: str, target: str) -> Any:
    """The JSON answer of a response, or the exception for an error response."""
    if response.status_code >= 400:
        raise error_from_response(response, method, target)
    if response.status_code == 204 or not response.content:
        return None
    content_type = response.headers.get("Content-Type", "")
    try:
        if "json" in content_type:
            return response.json()
    except ValueError:
        problem = "invalid JSON"
    else:
        problem = f"{content_type or 'no content type'} instead of JSON"
    raise AlyxUnavailable(
        f"{method} {target} → {response.status_code}: {problem}: {summarise_html(response.text)}",
        status=response.status_code,
        method=method,
        url=redact_url(response.url),
        response_body=response.text[:BODY_TEXT_LIMIT],
    )
