"""Errors raised when a path, file name or name part does not follow the ALF specification.

Every error carries the offending input as ``path`` and, when it can be told, the name of the
ALF part that broke (``'lab'``, ``'subject'``, ``'date'``, ``'number'``, ``'collection'``,
``'revision'``, ``'namespace'``, ``'object'``, ``'attribute'``, ``'timescale'``, ``'extra'``,
``'extension'`` or ``'uuid'``) as ``part``.  Both appear in the message.

The invalid-input errors also derive from :class:`ValueError`, so code written against ONE-api
(whose ``ALFInvalid`` is a ``ValueError``) keeps catching them.
"""

from __future__ import annotations

from one_flows.errors import OneFlowsError


class ALFError(OneFlowsError):
    """Base class of every ALF error.

    Attributes
    ----------
    path : str or None
        The path, file name or value that was rejected.
    part : str or None
        The ALF part that broke, when known.
    reason : str
        What was wrong, in words.
    """

    def __init__(self, reason: str, path: str | None = None, part: str | None = None) -> None:
        self.reason = reason
        self.path = path
        self.part = part
        super().__init__(self._message())

    def _message(self) -> str:
        where = f" (part: {self.part})" if self.part else ""
        subject = f"{self.path!r}: " if self.path is not None else ""
        return f"{subject}{self.reason}{where}"


class ALFInvalid(ALFError, ValueError):
    """Some input does not follow the ALF specification."""


class ALFInvalidPath(ALFInvalid):
    """A session, folder or full dataset path does not follow the ALF specification."""


class ALFInvalidFilename(ALFInvalid):
    """A dataset file name does not follow the ALF specification."""


class ALFInvalidPart(ALFInvalid):
    """A single name part (e.g. an object or a UUID) given to compose a name is invalid."""


class ALFUUIDMismatch(ALFError, ValueError):
    """A file name already holds a different UUID than the one asked for."""
