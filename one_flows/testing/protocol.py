"""Request, response and error types shared by the test server's router and endpoint handlers."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

UUID_RE = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

NOT_FOUND_HTML = (
    '\n<!doctype html>\n<html lang="en">\n<head>\n  <title>Not Found</title>\n</head>\n<body>\n'
    "  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>\n"
    "</body>\n</html>\n"
)

HTML = "text/html; charset=utf-8"


@dataclass
class Request:
    """One parsed HTTP request, plus the user it authenticated as (None when anonymous)."""

    method: str
    path: str
    query_string: str
    headers: Mapping[str, str]
    body: bytes = b""
    user: dict[str, Any] | None = None
    query: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        # Like Django's QueryDict.get: the last value of a repeated key wins.
        self.query = {
            k: v[-1] for k, v in parse_qs(self.query_string, keep_blank_values=True).items()
        }

    @property
    def host(self) -> str:
        """The Host header the client sent, used to build absolute links."""
        return self.headers.get("Host") or "localhost"

    def absolute(self, path: str) -> str:
        """An absolute URL on this server for ``path``."""
        return f"http://{self.host}{path}"

    def data(self) -> dict[str, Any]:
        """The body as a dict: a JSON object or form fields; empty when there is no body."""
        if not self.body:
            return {}
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if content_type == "application/x-www-form-urlencoded":
            return {
                k: v[-1] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()
            }
        try:
            parsed = json.loads(self.body)
        except ValueError as exc:
            raise ApiError(400, {"detail": f"JSON parse error - {exc}"}) from exc
        if not isinstance(parsed, dict):
            raise ApiError(
                400,
                {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]},
            )
        return parsed

    def page_link(self, offset: int | None, limit: int) -> str:
        """Absolute link to another page of this list, keeping the other query parameters."""
        params = parse_qs(self.query_string, keep_blank_values=True)
        params["limit"] = [str(limit)]
        if offset is None:
            params.pop("offset", None)
        else:
            params["offset"] = [str(offset)]
        # Django REST framework sorts the parameters when it rebuilds the link.
        return self.absolute(f"{self.path}?{urlencode(sorted(params.items()), doseq=True)}")


@dataclass
class Response:
    """An HTTP answer: status, body bytes, content type and extra headers.

    With ``cut``, only the body's first ``cut`` bytes are sent (the headers still announce the
    whole body), then the connection is closed: a transfer dropped half-way.
    """

    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)
    cut: int | None = None

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
        """A JSON answer."""
        body = json.dumps(payload).encode()
        return cls(status, body, "application/json", dict(headers or {}))

    @classmethod
    def html(cls, status: int, text: str, headers: dict[str, str] | None = None) -> Response:
        """An HTML answer."""
        return cls(status, text.encode(), HTML, dict(headers or {}))


class ApiError(Exception):
    """An error answered as JSON; ``body`` is the full JSON object, including ``status_code``."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body)
        self.status = status
        self.body = body if "status_code" in body else {**body, "status_code": status}

    def response(self) -> Response:
        """The JSON answer for this error."""
        return Response.json(self.status, self.body)


def field_errors(errors: dict[str, list[str]]) -> ApiError:
    """A 400 listing every bad field, as Django REST framework validation does."""
    return ApiError(400, dict(errors))


def not_found(model: str) -> ApiError:
    """The 404 of a detail route whose object does not exist."""
    return ApiError(404, {"detail": f"No {model} matches the given query."})


def server_error(message: str) -> ApiError:
    """A 500 as Alyx answers an unhandled exception in a view."""
    return ApiError(500, {"status_code": 500, "detail": message})


Handler = Callable[..., Response]


@dataclass(frozen=True)
class Route:
    """One URL pattern with the handler per HTTP method.

    ``public`` routes need no credentials; a route with a throttling ``scope`` (the HTML /docs/
    page) has its own rate limit and answers a throttled request with an HTML page.
    """

    pattern: str
    methods: Mapping[str, Handler]
    public: bool = False
    scope: str | None = None

    def match(self, path: str) -> dict[str, str] | None:
        """The path parameters when ``path`` routes here (optional trailing slash), else None."""
        found = re.fullmatch(self.pattern + "/?", path)
        return found.groupdict() if found else None


def paginate(req: Request, items: list[Any], default_limit: int = 250) -> Response:
    """A ``{count, next, previous, results}`` page of ``items`` following ``limit``/``offset``."""
    limit = _non_negative(req.query.get("limit"), default_limit) or default_limit
    offset = _non_negative(req.query.get("offset"), 0)
    count = len(items)
    next_link = req.page_link(offset + limit, limit) if offset + limit < count else None
    if offset <= 0:
        previous_link = None
    elif offset - limit <= 0:
        previous_link = req.page_link(None, limit)
    else:
        previous_link = req.page_link(offset - limit, limit)
    page = items[offset : offset + limit]
    return Response.json(
        200, {"count": count, "next": next_link, "previous": previous_link, "results": page}
    )


def _non_negative(value: str | None, default: int) -> int:
    try:
        return max(int(value), 0) if value is not None else default
    except ValueError:
        return default
