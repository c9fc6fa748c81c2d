"""`AlyxTestServer`: an Alyx-compatible REST server on loopback, for tests.

It answers as Alyx 3.6 does (see ``tests/contract``), stores its data in SQLite, and can inject
faults, count requests, forget tokens and restart on the same port with its data kept.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

from . import seed as seeding
from .endpoints import ROUTES
from .faults import SPOILERS, Fault, FaultInjector
from .files import FileServer
from .latency import LatencyModel, ServerWorkers
from .protocol import NOT_FOUND_HTML, ApiError, Request, Response, Route
from .store import Store
from .throttle import RateLimiter

_NO_CREDENTIALS = {"detail": "Authentication credentials were not provided."}


class AlyxTestServer:
    """An Alyx-compatible HTTP server with a seeded SQLite database, for tests.

    ``db_path`` None keeps the database in memory; a file keeps it across server objects. With
    ``seed`` an empty database gets the contract's starting state. ``throttle_per_minute`` limits
    each user's requests per minute (None: no limit; real Alyx allows 550). ``latency`` makes
    requests cost what they cost a real server (a `LatencyModel` or a preset's name, e.g.
    ``"alyx-3.6"``: 4 workers, a read 38 ms, ``POST /register-file`` 45 ms + 33.5 ms per file);
    None answers at once, as many requests at a time as arrive. Downloads from the data server
    role (`serve_files`) are not Alyx's work and cost nothing.
    """

    USERNAME = "test_user"
    PASSWORD = "TapetesBloc18"
    DOCS_PER_MINUTE = 20

    def __init__(
        self,
        db_path: str | os.PathLike[str] | None = None,
        *,
        seed: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        throttle_per_minute: int | None = None,
        latency: LatencyModel | str | None = None,
    ) -> None:
        self.store = Store(db_path)
        if seed and self.store.is_empty():
            seeding.seed(self.store, self.PASSWORD)
        self.host = host
        self.port = port
        self.throttle_per_minute = throttle_per_minute
        self.username = self.USERNAME
        self.password = self.PASSWORD
        self.faults = FaultInjector()
        self.files: FileServer | None = None
        self.workers = ServerWorkers(LatencyModel.of(latency))
        self._limiter = RateLimiter()
        self._counts: Counter[tuple[str, str]] = Counter()
        self._counts_lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    # lifecycle

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8123`` (no trailing slash)."""
        if self._httpd is None:
            raise RuntimeError("the server is not started; call start() first")
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the server is accepting requests."""
        return self._httpd is not None

    def start(self) -> AlyxTestServer:
        """Bind (a free port when ``port`` is 0) and serve in a background thread."""
        if self._httpd is not None:
            return self
        httpd = _HTTPServer((self.host, self.port), _Handler)
        httpd.app = self  # type: ignore[attr-defined]
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"alyx-test-server-{self.port}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open connections; the data are kept."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        with self._connections_lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        httpd.server_close()
        if self._thread is not None:
            self._thread.join()

    def restart(self) -> None:
        """Stop, then serve again on the same port with the same data."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop and close the database."""
        self.stop()
        self.store.close()

    def __enter__(self) -> AlyxTestServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # test controls

    def expire_tokens(self) -> None:
        """Forget every issued token: the next request with one answers 403 "Invalid token."."""
        self.store.execute("DELETE FROM tokens")

    def request_count(self, method: str | None = None, path: str | None = None) -> int:
        """Requests received (faulted ones included), by method and by path prefix."""
        with self._counts_lock:
            return sum(
                n
                for (m, p), n in self._counts.items()
                if (method is None or m == method.upper()) and (path is None or p.startswith(path))
            )

    def add_user(
        self, username: str, password: str | None = None, *, email: str | None = None
    ) -> str:
        """Add a lab member (with the seeded password unless given); returns its id."""
        return seeding.add_user(self.store, username, password or self.PASSWORD, email=email)

    def add_lab(
        self,
        name: str,
        *,
        repositories: list[str] | tuple[str, ...] = (),
        institution: str = "",
        timezone: str = "Europe/London",
    ) -> None:
        """Add a lab served by existing repositories (see ``add_repository``)."""
        seeding.add_lab(
            self.store, name, repositories=repositories, institution=institution, timezone=timezone
        )

    def add_repository(self, name: str, data_url: str, *, globus_path: str = "") -> None:
        """Add a data repository whose files download from ``data_url``."""
        seeding.add_repository(self.store, name, data_url, globus_path=globus_path)

    def add_subject(
        self,
        nickname: str,
        *,
        lab: str = "cortexlab",
        responsible_user: str | None = None,
        birth_date: str | None = "2019-01-01",
        projects: list[str] | tuple[str, ...] = (),
        **fields: Any,
    ) -> str:
        """Add a subject; returns its id."""
        return seeding.add_subject(
            self.store,
            nickname,
            lab=lab,
            responsible_user=responsible_user or self.USERNAME,
            birth_date=birth_date,
            projects=projects,
            **fields,
        )

    def add_dataset_type(self, name: str, filename_pattern: str = "", description: str = "") -> str:
        """Add a dataset type (pattern kept as given, as for seeded types); returns its id."""
        return seeding.add_dataset_type(
            self.store, name, filename_pattern=filename_pattern, description=description
        )

    def serve_files(
        self,
        root: str | os.PathLike[str],
        *,
        username: str | None = None,
        password: str | None = None,
    ) -> str:
        """Serve the files under ``root`` as a data repository's server does (see
        `one_flows.testing.files`), behind HTTP basic auth when given; returns its base URL."""
        self.files = FileServer(root, username=username, password=password)
        return self.url + self.files.prefix

    def set_data_url(self, repository: str, data_url: str) -> None:
        """Point a data repository's ``data_url`` (and its file records') at ``data_url``."""
        if not self.store.execute(
            "UPDATE repositories SET data_url = ? WHERE name = ?", (data_url, repository)
        ):
            raise ValueError(f"no data repository named {repository!r}")

    # request handling

    def handle(self, method: str, target: str, headers: Any, body: bytes) -> Response | None:
        """The answer to one request, or None to drop the connection without one."""
        split = urlsplit(target, allow_fragments=False)
        path = unquote(split.path)
        with self._counts_lock:
            self._counts[(method, path)] += 1
        fault = self.faults.pick(method, path)
        if fault is not None:
            if fault.kind == "drop":
                return None
            if fault.kind == "delay":
                time.sleep(fault.seconds)
            elif fault.kind not in SPOILERS:
                return _fault_response(fault)
        answer = self._answer(method, path, split.query, headers, body)
        return fault.spoil(answer) if fault is not None and fault.kind in SPOILERS else answer

    def _answer(self, method: str, path: str, query: str, headers: Any, body: bytes) -> Response:
        if self.files is not None and path.startswith(self.files.prefix):
            return self.files.answer(method, path, headers)
        with self.workers.serve(method, path, body):
            return self._dispatch(method, path, query, headers, body)

    def _dispatch(self, method: str, path: str, query: str, headers: Any, body: bytes) -> Response:
        """The answer of the Alyx endpoint ``path`` routes to."""
        for route in ROUTES:
            params = route.match(path)
            if params is not None:
                break
        else:
            return Response.html(404, NOT_FOUND_HTML)
        handler = route.methods.get(method)
        if handler is None:
            return Response.json(
                405, {"detail": f'Method "{method}" not allowed.', "status_code": 405}
            )
        req = Request(method, path, query, headers, body)
        try:
            req.user = self._authenticate(headers.get("Authorization"))
            if req.user is None and not route.public:
                raise ApiError(403, _NO_CREDENTIALS)
            throttled = self._throttle(route, req)
            if throttled is not None:
                return throttled
            with self.store.lock:
                return handler(self.store, req, **params)
        except ApiError as error:
            return error.response()
        except Exception as error:  # Alyx answers any unhandled exception with a JSON 500
            return Response.json(500, {"status_code": 500, "detail": str(error)})

    def _authenticate(self, authorization: str | None) -> dict[str, Any] | None:
        """The user of a ``Token`` header; other schemes count as no credentials."""
        scheme, _, key = (authorization or "").partition(" ")
        if scheme.lower() != "token":
            return None
        user = self.store.one(
            "SELECT u.* FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.key = ?",
            (key.strip(),),
        )
        if user is None:
            raise ApiError(403, {"detail": "Invalid token."})
        return user

    def _throttle(self, route: Route, req: Request) -> Response | None:
        client = req.user["username"] if req.user else "anonymous"
        if self.throttle_per_minute is not None:
            wait = self._limiter.wait("user", client, self.throttle_per_minute)
            if wait is not None:
                body = {
                    "detail": f"Request was throttled. Expected available in {wait} seconds.",
                    "status_code": 429,
                }
                return Response.json(429, body, {"Retry-After": str(wait)})
        if route.scope is not None:
            wait = self._limiter.wait(route.scope, client, self.DOCS_PER_MINUTE)
            if wait is not None:
                return Response.html(429, "429 Too Many Requests", {"Retry-After": str(wait)})
        return None

    def _track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)


def _fault_response(fault: Fault) -> Response:
    headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
    if fault.html:
        return Response.html(fault.status, fault.html_page(), headers)
    return Response.json(
        fault.status, {"detail": fault.reason, "status_code": fault.status}, headers
    )


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # gunicorn's listen backlog. socketserver's 5 drops the connections of a burst of clients
    # while the accept loop is busy, and they connect again only after TCP's 1 s SYN retry.
    request_queue_size = 2048

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that went away (a read timeout fired); report anything else."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Reads one HTTP request, lets the server answer it, writes the answer."""

    protocol_version = "HTTP/1.1"
    server_version = "AlyxTestServer"
    sys_version = ""

    @property
    def app(self) -> AlyxTestServer:
        return self.server.app  # type: ignore[attr-defined]

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's algorithm holds the
        # body until the client's delayed ACK (40 ms on Linux) on a kept-alive connection.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.app._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.app._track(self.connection, False)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        response = self.app.handle(self.command, self.path, self.headers, body)
        if response is None:
            self.close_connection = True
            return
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body[: response.cut])
        if response.cut is not None:
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests read request counts, not logs."""
