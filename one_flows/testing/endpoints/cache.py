"""The ONE cache tables that Alyx serves (``/cache/info/``); this server has none."""

from __future__ import annotations

from ..protocol import HTML, Request, Response, Route, server_error
from ..store import Store

TABLES_ROOT = "/var/lib/alyx/alyx/tables"
"""Where Alyx would keep the tables (its ``TABLES_ROOT``): named in the missing-file error."""


def cache_info(store: Store, req: Request) -> Response:
    """GET /cache/info/: Django redirects the path without its slash (301); with no tables, the
    view fails with 500 naming the missing ``cache_info.json``."""
    if not req.path.endswith("/"):
        return Response(301, b"", HTML, {"Location": f"{req.path}/"})
    raise server_error(f"[Errno 2] No such file or directory: '{TABLES_ROOT}/cache_info.json'")


ROUTES = (Route(r"/cache/info", {"GET": cache_info}),)
