"""Exceptions that stop the registration of a session (per-file problems are outcomes)."""

from __future__ import annotations

import os

from one_flows.errors import OneFlowsError

__all__ = ["MemberNotFound", "RegistrationError", "SessionFolderUnreadable", "SubjectNotFound"]


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
