"""The downloader: files from a data repository's HTTP server into the local cache, checked.

``Downloader().download(transfers)`` fetches several files at once (``workers`` threads sharing
a pool of connections), each streamed to a hidden ``.<name>.part`` file beside its target and
renamed into place once its size and md5 match what was registered. A transfer that breaks off
(a dropped connection, a timeout, a 5xx or 429) is resumed from the bytes already on disk with an
HTTP ``Range`` request, a few times, and so is a ``.part`` left by an interrupted process. Two
processes fetching the same file take turns (the ``.part`` is locked while written), and the
second finds the file in place. A file whose size or md5 differs from the registered ones raises
`DownloadMismatch` naming it, and the bad copy is deleted.

Progress goes to an optional callback as `DownloadProgress` snapshots (the CLI draws a bar with
them, a flow can turn them into a progress artifact). HTTP basic auth is sent when given, as
ONE-api's ``HTTP_DATA_SERVER_LOGIN``/``HTTP_DATA_SERVER_PWD``; it never appears in logs,
exceptions or reprs.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from one_flows.alyx import Secret
from one_flows.alyx.errors import redact_url
from one_flows.errors import OneFlowsError

from .errors import DatasetHashMismatch

__all__ = [
    "DownloadAuthError",
    "DownloadError",
    "DownloadMismatch",
    "DownloadProgress",
    "Downloader",
    "FileTransfer",
]

logger = logging.getLogger("one_flows.one")

_TRANSIENT = frozenset({429, 500, 502, 503, 504})
_CHUNK = 1 << 16


class DownloadError(OneFlowsError):
    """A file could not be fetched from the data server.

    Attributes
    ----------
    url : str
        The file's URL (any user name or password removed).
    path : Path
        Where it was to be written.
    status : int or None
        The HTTP status, None when no answer came.
    transient : bool
        Whether trying again later may succeed (an outage, not a fault of the file).
    """

    def __init__(
        self,
        message: str,
        *,
        url: str,
        path: Path,
        status: int | None = None,
        transient: bool = False,
    ) -> None:
        super().__init__(message)
        self.url = url
        self.path = path
        self.status = status
        self.transient = transient


class DownloadAuthError(DownloadError):
    """The data server refused the HTTP basic auth credentials (or asked for some)."""


class DownloadMismatch(DownloadError, DatasetHashMismatch):
    """The downloaded file's size or md5 is not the registered one; the copy was deleted."""


@dataclass(frozen=True)
class FileTransfer:
    """One file to fetch: from ``url`` to ``path``, expected ``size`` and ``md5`` when known."""

    url: str
    path: Path
    size: int | None = None
    md5: str | None = None


@dataclass(frozen=True)
class DownloadProgress:
    """Where a `Downloader.download` call stands."""

    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int

    @property
    def fraction(self) -> float:
        """Done, from 0 to 1 (by bytes when the sizes are known, else by files)."""
        if self.bytes_total:
            return min(self.bytes_done / self.bytes_total, 1.0)
        return self.files_done / self.files_total if self.files_total else 1.0


ProgressCallback = Callable[[DownloadProgress], None]


class _Tally:
    """Progress shared by the worker threads of one download call."""

    def __init__(self, transfers: Sequence[FileTransfer], callback: ProgressCallback | None):
        self._lock = threading.Lock()
        self._callback = callback
        self._state = [0, len(transfers), 0, sum(t.size or 0 for t in transfers)]

    def add(self, nbytes: int = 0, files: int = 0) -> None:
        if self._callback is None:
            return
        with self._lock:
            self._state[0] += files
            self._state[2] += nbytes
            self._callback(DownloadProgress(*self._state))


class Downloader:
    """Fetches files over HTTP in parallel, resumably, checked against size and md5.

    Parameters
    ----------
    auth : tuple[str, str | Secret] or None
        HTTP basic auth (login, password) for the data server; None for none.
    workers : int
        Files fetched at once.
    timeout : float or tuple[float, float]
        Seconds to connect and to wait for each read.
    attempts : int
        Tries per file when transfers break off or the server fails transiently.
    progress : ProgressCallback or None
        Called with a `DownloadProgress` as bytes arrive (from worker threads).
    verify : bool or str
        Check TLS certificates (or a CA bundle path).
    """

    def __init__(
        self,
        *,
        auth: tuple[str, str | Secret] | None = None,
        workers: int = 16,
        timeout: float | tuple[float, float] = (5.0, 60.0),
        attempts: int = 4,
        progress: ProgressCallback | None = None,
        verify: bool | str = True,
    ) -> None:
        if workers < 1 or attempts < 1:
            raise ValueError("workers and attempts must be at least 1")
        self.workers = workers
        self.timeout = timeout
        self.attempts = attempts
        self.progress = progress
        self._auth = None if auth is None else (auth[0], Secret(auth[1]))
        self._verify = verify
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=workers, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def __repr__(self) -> str:
        login = None if self._auth is None else self._auth[0]
        return f"Downloader(workers={self.workers}, login={login!r})"

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    def download(
        self, transfers: Sequence[FileTransfer], progress: ProgressCallback | None = None
    ) -> list[Path]:
        """Fetch every file; return their paths in order.

        All transfers are attempted; the first failure (in the given order) is then raised.

        Raises
        ------
        DownloadMismatch
            A file's size or md5 differs from the expected ones.
        DownloadAuthError
            The server wants other credentials.
        DownloadError
            The server could not give a file.
        """
        tally = _Tally(transfers, progress or self.progress)
        if len(transfers) <= 1:
            outcomes = [self._attempt(t, tally) for t in transfers]
        else:
            with ThreadPoolExecutor(min(self.workers, len(transfers))) as pool:
                outcomes = list(pool.map(lambda t: self._attempt(t, tally), transfers))
        failures = [o for o in outcomes if isinstance(o, DownloadError)]
        if failures:
            if len(failures) > 1:
                failures[0].add_note(f"{len(failures) - 1} other files failed too")
            raise failures[0]
        return [t.path for t in transfers]

    def _attempt(self, transfer: FileTransfer, tally: _Tally) -> Path | DownloadError:
        try:
            return self._fetch(transfer, tally)
        except DownloadError as exc:
            return exc

    def _fetch(self, transfer: FileTransfer, tally: _Tally) -> Path:
        path = transfer.path
        path.parent.mkdir(parents=True, exist_ok=True)
        part_path = path.with_name(f".{path.name}.part")
        with open(part_path, "ab+") as file:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX)
            if _complete(path, transfer.size):  # another process finished it while we waited
                part_path.unlink(missing_ok=True)
                tally.add(transfer.size or 0, 1)
                return path
            part = _Part(file)
            tally.add(part.size)
            for attempt in range(1, self.attempts + 1):
                try:
                    self._receive(transfer, part, tally)
                    break
                except _Retry as retry:
                    if attempt == self.attempts:
                        raise retry.error from retry
                    logger.info("%s; resuming (attempt %d)", retry.error, attempt + 1)
                    time.sleep(0.1 * 2**attempt)
            try:
                _check(transfer, part.size, part.md5.hexdigest())
            except DownloadMismatch:
                part_path.unlink(missing_ok=True)
                raise
            os.replace(part_path, path)
        tally.add(files=1)
        logger.debug("downloaded %s", redact_url(transfer.url))
        return path

    def _receive(self, transfer: FileTransfer, part: _Part, tally: _Tally) -> None:
        """Append the rest of the file to ``part``, from where it stops."""
        offset = part.size
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        auth = None if self._auth is None else (self._auth[0], self._auth[1].reveal())
        where = redact_url(transfer.url)
        try:
            with self._session.get(
                _quoted(transfer.url),
                headers=headers,
                auth=auth,
                stream=True,
                timeout=self.timeout,
                verify=self._verify,
            ) as answer:
                if answer.status_code == 416 and offset and offset == transfer.size:
                    return  # the .part already holds the whole file
                _raise_for_status(answer.status_code, where, transfer.path)
                if offset and answer.status_code == 200:  # the server ignored the range
                    part.reset()
                    tally.add(-offset)
                for chunk in answer.iter_content(_CHUNK):
                    part.write(chunk)
                    tally.add(len(chunk))
        except requests.RequestException as exc:
            error = DownloadError(
                f"{where}: transfer broke off after {part.size} bytes ({type(exc).__name__})",
                url=where,
                path=transfer.path,
                transient=True,
            )
            raise _Retry(error) from exc
        finally:
            part.file.flush()


class _Part:
    """A ``.part`` file opened for appending, and the md5 of what it holds."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.md5 = hashlib.md5()
        file.seek(0)
        while chunk := file.read(_CHUNK):
            self.md5.update(chunk)

    @property
    def size(self) -> int:
        return self.file.tell()

    def write(self, chunk: bytes) -> None:
        self.file.write(chunk)
        self.md5.update(chunk)

    def reset(self) -> None:
        self.file.seek(0)
        self.file.truncate()
        self.md5 = hashlib.md5()


class _Retry(Exception):
    """A transient failure: the transfer may be resumed."""

    def __init__(self, error: DownloadError) -> None:
        super().__init__(str(error))
        self.error = error


def _quoted(url: str) -> str:
    """The URL with its path percent-encoded (``#`` of revision folders included)."""
    parts = urlsplit(url, allow_fragments=False)
    return urlunsplit(parts._replace(path=quote(parts.path, safe="/%")))


def _complete(path: Path, size: int | None) -> bool:
    try:
        actual = path.stat().st_size
    except FileNotFoundError:
        return False
    return size is None or actual == size


def _raise_for_status(status: int, where: str, path: Path) -> None:
    if status in (200, 206):
        return
    if status in (401, 403):
        raise DownloadAuthError(
            f"{where}: the data server answered {status}; check the data server login "
            "(HTTP_DATA_SERVER_LOGIN / HTTP_DATA_SERVER_PWD)",
            url=where,
            path=path,
            status=status,
        )
    error = DownloadError(
        f"{where}: the data server answered {status}",
        url=where,
        path=path,
        status=status,
        transient=status in _TRANSIENT,
    )
    if error.transient:
        raise _Retry(error)
    raise error


def _check(transfer: FileTransfer, size: int, md5: str) -> None:
    where = redact_url(transfer.url)
    if transfer.size is not None and size != transfer.size:
        problem = f"is {size} bytes, not the registered {transfer.size}"
    elif transfer.md5 and md5 != transfer.md5:
        problem = f"has md5 {md5}, not the registered {transfer.md5}"
    else:
        return
    raise DownloadMismatch(
        f"{transfer.path.name} downloaded from {where} {problem}; the copy was deleted",
        url=where,
        path=transfer.path,
    )
