"""`AlyxTarget`: registration into an Alyx database over its REST API."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection
from typing import Any
from urllib.parse import quote

from one_flows.alyx import (
    AlyxAuthError,
    AlyxClient,
    AlyxError,
    AlyxNotFound,
    AlyxTransientError,
    AlyxUnavailable,
    is_transient,
)
from one_flows.targets.base import (
    DatasetType,
    FileBatch,
    RegisteredDataset,
    preferred_session,
)
from one_flows.targets.errors import (
    ProtectedDatasets,
    RegistrationRefused,
    RepositoryNotFound,
    TargetUnavailable,
)

__all__ = ["CREATE_SETTLE_WAITS", "AlyxTarget"]

logger = logging.getLogger(__name__)

CREATE_SETTLE_WAITS = (0.25, 0.5, 1.0, 2.0, 4.0)
"""Seconds between look-ups for a session whose creation request timed out, before giving up."""

_PROTECTED_ERROR = "One or more datasets is protected"
_NOT_PROVIDED = "Authentication credentials were not provided."


class AlyxTarget:
    """Registers into the Alyx server that ``client`` talks to.

    Request bodies are those ONE-api's RegistrationClient sends. The dataset types and data
    formats are read once, on first use, and kept for the life of the target.
    """

    def __init__(self, client: AlyxClient) -> None:
        self.client = client
        self._lock = threading.Lock()
        self._formats_lock = threading.Lock()  # data formats are read while types are
        self._dataset_types: list[DatasetType] | None = None
        self._extensions: frozenset[str] | None = None

    def __repr__(self) -> str:
        return f"AlyxTarget({self.client.base_url!r})"

    @property
    def user(self) -> str | None:
        """The user the client logs in as."""
        return self.client.username

    @property
    def label(self) -> str:
        """``alyx:<base url>``."""
        return f"alyx:{self.client.base_url}"

    def check(self, repository: str | None = None) -> None:
        """Log in if need be and read the dataset types, kept for later use: one authenticated
        request (whatever was read before); with a ``repository``, look it up as well.

        Parameters
        ----------
        repository : str or None
            The name of a data repository files will be registered into.

        Raises
        ------
        TargetUnavailable
            the server cannot be reached, refuses or lacks the credentials, denies the user
            (403) or fails; the message says which and what to do.
        RepositoryNotFound
            the server has no data repository named ``repository``; the message lists those
            it has.
        """
        try:
            types = self._read_dataset_types()
            if repository and self.lookup("data-repository", repository) is None:
                names = [r["name"] for r in self.client.list_all("/data-repository")]
                raise RepositoryNotFound(
                    f"no data repository named {repository} on {self.client.base_url}; "
                    f"the ones there: {', '.join(names) or 'none'}",
                    repository,
                )
        except AlyxError as exc:
            raise self._unavailable(exc) from exc
        with self._lock:
            self._dataset_types = types

    def _unavailable(self, exc: AlyxError) -> TargetUnavailable:
        """The `TargetUnavailable` that says why ``exc`` keeps the server from being used."""
        url = self.client.base_url
        body = exc.response_body if isinstance(exc.response_body, dict) else {}
        if isinstance(exc, AlyxAuthError):
            if exc.status is None or body.get("detail") == _NOT_PROVIDED:
                cause = "no credentials"
                advice = "give a user name and password (or a token) in an AlyxCredentials block"
            else:
                cause = "bad credentials"
                advice = f"check the password (or token) of {self.client.username or 'the user'}"
            advice += ", or ALYX_LOGIN and ALYX_PASSWORD"
        elif isinstance(exc, AlyxTransientError) and exc.status is None:
            cause = "unreachable"
            advice = f"check the URL {url} and that the server is up; flags are left for later"
        elif isinstance(exc, AlyxUnavailable) and (exc.status or 0) >= 429:
            cause = "throttled (429)" if exc.status == 429 else f"server error {exc.status}"
            advice = "the server is failing: see its logs; flags are left for a later run"
        elif exc.status == 403:
            cause = f"refused (status {exc.status})"
            advice = f"check the permissions of {self.client.username or 'the user'} on {url}"
        else:
            cause = "not an Alyx server"
            advice = f"check that {url} is the URL of Alyx's REST API, and its TLS certificate"
        return TargetUnavailable(self.label, cause, exc.message, advice)

    def holds(self, eid: str, dataset_ids: Collection[str]) -> bool:
        """True: asking would cost the requests the ledger saves (see the ledger's limits)."""
        return True

    def dataset_types(self) -> list[DatasetType]:
        """All dataset types (one ``GET /dataset-types``, then kept)."""
        with self._lock:
            if self._dataset_types is None:
                self._dataset_types = self._read_dataset_types()
            return list(self._dataset_types)

    def _read_dataset_types(self) -> list[DatasetType]:
        return [
            DatasetType(t["name"], t.get("filename_pattern") or "")
            for t in self.client.list_all("/dataset-types")
        ]

    def file_extensions(self) -> frozenset[str]:
        """The extensions of the server's data formats (one ``GET /data-formats``, then kept)."""
        with self._formats_lock:
            if self._extensions is None:
                self._extensions = frozenset(
                    f["file_extension"]
                    for f in self.client.list_all("/data-formats")
                    if f.get("file_extension")
                )
            return self._extensions

    def lookup(self, endpoint: str, member: str) -> dict[str, Any] | None:
        """``GET /<endpoint>/<member>``; None when the server answers 404."""
        try:
            return self.client.get(f"/{endpoint.strip('/')}/{quote(str(member), safe='')}")
        except AlyxNotFound:
            return None

    def find_sessions(
        self, subject: str, date: str, number: int | None = None, lab: str | None = None
    ) -> list[dict[str, Any]]:
        """``GET /sessions?subject=&date_range=<date>,<date>`` (and ``number``, ``lab``)."""
        params: dict[str, Any] = {"subject": subject, "date_range": f"{date},{date}"}
        if number is not None:
            params["number"] = int(number)
        if lab:
            params["lab"] = lab
        return self.client.list_all("/sessions", params)

    def session_record(self, eid: str) -> dict[str, Any] | None:
        """``GET /sessions/<eid>``; None when the server answers 404."""
        return self.lookup("sessions", eid)

    def create_session(self, record: dict[str, Any]) -> dict[str, Any]:
        """``POST /sessions``; when the request times out, the record the server created.

        The server may still be creating the session when the request was sent and no answer
        came (a read timeout, a connection dropped after sending), and a retry that looked for
        it at once would post another: the session is looked for a few times
        (`CREATE_SETTLE_WAITS`), and the error is raised only if it never shows. A request
        that never reached the server (a connect timeout, a refused connection) is not.

        Raises
        ------
        AlyxTransientError
            The request failed, or got no answer and no session showed.
        """
        try:
            return self.client.post("/sessions", record)
        except AlyxTransientError as exc:
            if exc.status is not None or not exc.may_have_run:
                raise
            session = self._await_created(record)
            if session is None:
                raise
            return session

    def _await_created(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """The session a timed-out creation of ``record`` made, once the server shows it."""
        subject, date = record["subject"], str(record["start_time"])[:10]
        for wait in CREATE_SETTLE_WAITS:
            time.sleep(wait)
            try:
                found = self.find_sessions(subject, date, record["number"])
            except AlyxTransientError:
                continue
            if found:
                session = preferred_session(found)
                logger.info(
                    "%s/%s/%s: the timed-out request created %s",
                    subject,
                    date,
                    record["number"],
                    session["id"],
                )
                return session
        return None

    def update_session(self, eid: str, changes: dict[str, Any]) -> dict[str, Any]:
        """``PATCH /sessions/<eid>``: only the given fields change."""
        return self.client.patch(f"/sessions/{eid}", changes)

    def session_datasets(self, eid: str) -> list[RegisteredDataset]:
        """``GET /datasets?session=<eid>``."""
        datasets = []
        for d in self.client.list_all("/datasets", {"session": eid}):
            folders = [d.get("collection") or "", f"#{d['revision']}#" if d.get("revision") else ""]
            rel_path = "/".join([*filter(None, folders), d["name"]])
            datasets.append(
                RegisteredDataset(
                    id=d.get("id") or d["url"].rstrip("/")[-36:],
                    rel_path=rel_path,
                    hash=d.get("hash") or None,
                    file_size=d.get("file_size"),
                    repositories=frozenset(
                        r["data_repository"]
                        for r in d.get("file_records") or ()
                        if r.get("exists", True)
                    ),
                )
            )
        return datasets

    def mark_missing(self, eid: str, rel_paths: list[str]) -> bool:
        """Nothing: whether a file gone from the lab server is lost or was moved on (to another
        repository, to archive) is for the lab to say, so its file records stay as they are."""
        return False

    def register_files(self, batch: FileBatch) -> list[dict[str, Any]]:
        """``POST /register-file`` with ONE-api's body.

        Raises
        ------
        ProtectedDatasets
            the server refused because some files are protected (403).
        RegistrationRefused
            any other answer that sending again will not change.
        AlyxError
            transient faults and refused credentials, unchanged.
        """
        try:
            records = self.client.post("/register-file", batch.payload())
        except AlyxError as exc:
            if is_transient(exc) or isinstance(exc, AlyxAuthError):
                raise
            body = exc.response_body
            if (
                exc.status == 403
                and isinstance(body, dict)
                and body.get("error") == _PROTECTED_ERROR
            ):
                raise ProtectedDatasets(_protection_details(body.get("details"))) from exc
            raise RegistrationRefused(str(exc), status=exc.status, body=body) from exc
        if not isinstance(records, list) or len(records) != len(batch.filenames):
            raise RegistrationRefused(
                f"POST /register-file answered {type(records).__name__} instead of "
                f"{len(batch.filenames)} dataset records",
                body=records,
            )
        return records

    def register_weight(self, record: dict[str, Any]) -> dict[str, Any]:
        """``POST /weighings``."""
        return self.client.post("/weighings", record)

    def register_water_administration(self, record: dict[str, Any]) -> dict[str, Any]:
        """``POST /water-administrations``."""
        return self.client.post("/water-administrations", record)


def _protection_details(details: Any) -> dict[str, list[tuple[str, bool]]]:
    """Alyx's ``[{filename: [{revision: protected}, ...]}, ...]`` as an ordered dict."""
    parsed: dict[str, list[tuple[str, bool]]] = {}
    for item in details or ():
        for name, revisions in item.items():
            parsed[name] = [(rev, bool(p)) for entry in revisions for rev, p in entry.items()]
    return parsed
