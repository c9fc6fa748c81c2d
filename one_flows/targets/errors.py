"""Errors of registration targets (their place in the whole tree: `one_flows.errors`)."""

from __future__ import annotations

from typing import Any

from one_flows.errors import OneFlowsError, Outage

__all__ = [
    "ProtectedDatasets",
    "RegistrationRefused",
    "RepositoryNotFound",
    "TargetError",
    "TargetUnavailable",
]


class TargetError(OneFlowsError):
    """A registration target could not do what it was asked."""


class ProtectedDatasets(TargetError):
    """Some files of a batch are already registered as protected datasets; nothing was done.

    ``details`` maps each file name of the batch, in batch order, to the revisions the target
    holds for it, latest first, as (revision name, protected) pairs; ``""`` is no revision and an
    empty list means the file was never registered.
    """

    def __init__(self, details: dict[str, list[tuple[str, bool]]]) -> None:
        protected = [name for name, revisions in details.items() if any(p for _, p in revisions)]
        super().__init__(f"protected datasets: {', '.join(protected) or 'none named'}")
        self.details = details


class RegistrationRefused(TargetError):
    """The target refused a batch of files (bad input or a server-side failure).

    ``status`` is the HTTP status when there is one; ``body`` the target's answer. Registration
    reports the files of a refused batch as failed instead of stopping.
    """

    def __init__(self, message: str, *, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class RepositoryNotFound(TargetError, LookupError):
    """The target has no data repository of the name a run was given: the operator's
    configuration is wrong. Neither an outage nor any session's fault, so a run stops on it
    before claiming anything. The message names the repository, the target and those it has.
    """

    def __init__(self, message: str, repository: str) -> None:
        super().__init__(message)
        self.repository = repository


class TargetUnavailable(TargetError, Outage):
    """The target cannot be used at all: unreachable, no or bad credentials, failing.

    The message names the target, the cause and what to do; ``cause`` is the cause in a few
    words (``"bad credentials"``, ``"no credentials"``, ``"unreachable"``, ``"server error
    503"``, ...). The error that showed it is the ``__cause__``.
    """

    def __init__(self, label: str, cause: str, detail: str, advice: str) -> None:
        super().__init__(f"{label}: {cause} ({detail}); {advice}")
        self.label = label
        self.cause = cause
