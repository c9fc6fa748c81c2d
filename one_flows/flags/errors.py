"""Errors raised for flag files that cannot be used as they are.

Every error names the flag file (``flag``) and says what is wrong (``reason``); both appear in
the message.  Scans never stop on these errors: they hand them to an ``on_error`` callback and go
on with the next flag.
"""

from __future__ import annotations

import os

from one_flows.errors import OneFlowsError


class FlagError(OneFlowsError):
    """Base class of every flag error.

    Attributes
    ----------
    flag : str
        The flag file's path.
    reason : str
        What was wrong, in words.
    """

    def __init__(self, flag: str | os.PathLike[str], reason: str) -> None:
        self.flag = os.fspath(flag)
        self.reason = reason
        super().__init__(f"{self.flag}: {reason}")


class FlagLocationError(FlagError):
    """The flag is not a regular file in a session folder (wrong folder, symlink, directory)."""


class FlagUnreadable(FlagError):
    """The flag could not be read: an OS error, undecodable bytes or an oversized file."""


class FlagContentError(FlagError):
    """A line of the flag is not acceptable, e.g. a path that leaves the session folder.

    Attributes
    ----------
    line : int
        The 1-based number of the offending line.
    text : str
        The offending line as written.
    """

    def __init__(self, flag: str | os.PathLike[str], line: int, text: str, reason: str) -> None:
        self.line = line
        self.text = text
        super().__init__(flag, f"line {line} {text!r}: {reason}")


class ClaimLost(FlagError):
    """The claimed flag is gone: another process reaped, completed or removed it."""


class FlagConflict(FlagError):
    """A flag cannot move to its next name because another flag already holds that name."""
