"""The test server as a data repository's HTTP server: registered files served from a folder.

Alyx gives each file record a ``data_url``: the repository's ``data_url`` plus the file's relative
path with the dataset's UUID before the extension
(``…/algernon/2026-07-04/001/alf/spikes.times.<uuid>.npy``), as FlatIron stores files. A lab
serves its plain data folder instead, with a web server that drops the UUID from the name (see
``deployments/nginx``). `FileServer` does the same for tests: ``GET <prefix><path>`` answers the
file ``root/<path>`` with any UUID removed from its name, with byte ranges (``Range``, so that
clients can resume) and optional HTTP basic auth. ONE-api's downloads from its
``HTTP_DATA_SERVER`` setting (``<server>/<lab>/Subjects/<relative path with UUID>``) land on the
same files when the root holds ``<lab>/Subjects/...`` folders.

``AlyxTestServer.serve_files(root)`` turns it on; faults of the server's injector apply to these
requests too, including ``truncate`` (the connection drops half-way through the file) and
``corrupt`` (one byte of the file arrives changed).
"""

from __future__ import annotations

import base64
import hmac
import os
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from one_flows.alf import remove_uuid_string

from .protocol import NOT_FOUND_HTML, Response

__all__ = ["FileServer"]

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_OCTETS = "application/octet-stream"


class FileServer:
    """Answers ``GET``/``HEAD`` under ``prefix`` with the files of ``root`` (UUIDs dropped).

    With ``username`` and ``password``, requests need them as HTTP basic auth (401 otherwise,
    with the ``WWW-Authenticate`` challenge that urllib's and browsers' clients wait for).
    ``requests`` lists what was asked: (URL path, ``Range`` header or None, status).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        prefix: str = "/data/",
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        if not prefix.startswith("/") or not prefix.endswith("/"):
            raise ValueError(f"the prefix must start and end with '/', not {prefix!r}")
        if (username is None) != (password is None):
            raise ValueError("basic auth needs both a username and a password")
        self.root = Path(root).resolve()
        self.prefix = prefix
        self._credentials = None if username is None else f"{username}:{password}".encode()
        self.requests: list[tuple[str, str | None, int]] = []

    def __repr__(self) -> str:
        return f"FileServer({str(self.root)!r}, prefix={self.prefix!r})"

    def path_of(self, url_path: str) -> Path | None:
        """The file a URL path (already unquoted) stands for, or None outside ``root``."""
        relative = PurePosixPath(url_path[len(self.prefix) :])
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            return None
        return self.root.joinpath(*remove_uuid_string(relative).parts)

    def answer(self, method: str, url_path: str, headers: Mapping[str, str]) -> Response:
        """The answer to a request for ``url_path`` (which starts with ``prefix``)."""
        response = self._answer(method, url_path, headers)
        self.requests.append((url_path, headers.get("Range"), response.status))
        return response

    def _answer(self, method: str, url_path: str, headers: Mapping[str, str]) -> Response:
        if method not in ("GET", "HEAD"):
            return Response.html(405, "405 Method Not Allowed", {"Allow": "GET, HEAD"})
        if not self._authorised(headers.get("Authorization")):
            return Response.html(
                401, "401 Authorization Required", {"WWW-Authenticate": 'Basic realm="data"'}
            )
        path = self.path_of(url_path)
        if path is None or not path.is_file():
            return Response.html(404, NOT_FOUND_HTML)
        data = path.read_bytes()
        size = len(data)
        wanted = headers.get("Range")
        found = _RANGE.fullmatch(wanted.strip()) if wanted else None
        if found is None or not any(found.groups()):
            return Response(200, data, _OCTETS, {"Accept-Ranges": "bytes"})
        first, last = found.groups()
        start = int(first) if first else max(size - int(last), 0)
        end = min(int(last), size - 1) if first and last else size - 1
        if start >= size or start > end:
            return Response.html(416, "416 Range Not Satisfiable", {"Content-Range": f"*/{size}"})
        return Response(
            206,
            data[start : end + 1],
            _OCTETS,
            {"Accept-Ranges": "bytes", "Content-Range": f"bytes {start}-{end}/{size}"},
        )

    def _authorised(self, authorization: str | None) -> bool:
        if self._credentials is None:
            return True
        scheme, _, encoded = (authorization or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(encoded.strip(), validate=True)
        except ValueError:
            return False
        return hmac.compare_digest(given, self._credentials)
