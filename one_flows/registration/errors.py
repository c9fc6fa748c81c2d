"""Exceptions that stop the registration of a session (per-file problems are outcomes)."""

from __future__ import annotations

import os
from typing import Any

from one_flows.errors import OneFlowsError

__all__ = [
    "MemberNotFound",
    "RegistrationError",
    "RunFailed",
    "SessionFailed",
    "SessionFolderUnreadable",
    "SubjectNotFound",
]


class RegistrationError(OneFlowsError):
    """A session cannot be registered."""


class MemberNotFound(RegistrationError, LookupError):
    """A named record (a user, a lab, a repository...) does not exist in the target."""

    def __init__(self, member: str, endpoint: str) -> None:
        super().__init__(f'"{member}" does not exist in {endpoint}')
        self.member = member
        self.endpoint = endpoint


class SessionFolderUnreadable(RegistrationError):
    """A folder of the session cannot be listed (no permission, a path longer than the system
    allows...): which files it holds is unknown, so the session is not registered."""

    def __init__(self, folder: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"cannot list {os.fsdecode(folder)}: {reason}")
        self.folder = os.fsdecode(folder)
        self.reason = reason


class SubjectNotFound(MemberNotFound):
    """The subject does not exist in the target."""

    def __init__(self, member: str, endpoint: str = "subjects") -> None:
        super().__init__(member, endpoint)


class SessionFailed(RegistrationError):
    """A registration run gave a session up; the message names the session and the reason."""


class RunFailed(RegistrationError):
    """A registration run ended with sessions failed, quarantined, or left pending by an
    outage; the message counts them and names the first, ``summary`` says what happened to
    every session."""

    def __init__(self, message: str, summary: Any) -> None:
        super().__init__(message)
        self.summary = summary
