"""A parsed ALF dataset path as a typed, immutable value."""

from __future__ import annotations

import pathlib
import re
from dataclasses import asdict, dataclass

from one_flows.alf.errors import ALFInvalidFilename, ALFInvalidPart
from one_flows.alf.path import full_path_parts, rel_path_parts, session_path_parts
from one_flows.alf.spec import PART_PATTERNS, PARTS

# Parts checked on their own; the others are checked by parsing the composed path, since their
# patterns depend on their neighbours.
_WHOLE_VALUE_PATTERNS = {
    **{name: PART_PATTERNS[name] for name in ("lab", "subject", "date", "number", "revision")},
    "collection": r"[\w.-]+(?:/[\w.-]+)*",
    "namespace": PART_PATTERNS["namespace"],
    "timescale": PART_PATTERNS["timescale"],
    "extension": PART_PATTERNS["extension"],
}


@dataclass(frozen=True, kw_only=True)
class DatasetPath:
    """The twelve parts of an ALF dataset path; optional parts are None.

    Construction validates the parts: composing them and parsing the result gives the same
    parts back, else :class:`ALFInvalidPart` names the first part that does not survive.

    >>> p = DatasetPath.parse('/data/sub/2020-01-01/001/alf/_ibl_trials.intervals.npy')
    >>> p.subject, p.collection, p.object, p.relative_path
    ('sub', 'alf', 'trials', 'alf/_ibl_trials.intervals.npy')
    """

    lab: str | None = None
    subject: str | None = None
    date: str | None = None
    number: str | None = None
    collection: str | None = None
    revision: str | None = None
    namespace: str | None = None
    object: str
    attribute: str
    timescale: str | None = None
    extra: str | None = None
    extension: str

    def __post_init__(self) -> None:
        for name in PARTS:
            value = getattr(self, name)
            required = name in ("object", "attribute", "extension")
            if (value is not None or required) and (not isinstance(value, str) or not value):
                raise ALFInvalidPart("must be a non-empty str", repr(value), part=name)
        for name, pattern in _WHOLE_VALUE_PATTERNS.items():
            value = getattr(self, name)
            if value is not None and re.fullmatch(pattern, value) is None:
                raise ALFInvalidPart(f"{name} must match {pattern!r}", repr(value), part=name)
        session = (self.subject, self.date, self.number)
        if None in session and any(v is not None for v in (self.lab, *session)):
            missing = next(n for n in ("subject", "date", "number") if getattr(self, n) is None)
            raise ALFInvalidPart(
                "a session needs subject, date and number together", None, part=missing
            )
        reparsed = self._parse_parts(self.path)
        for name in PARTS:
            if reparsed[name] != getattr(self, name):
                raise ALFInvalidPart(
                    f"does not fit the ALF grammar: {self.path!r} parses with {name}="
                    f"{reparsed[name]!r}",
                    repr(getattr(self, name)),
                    part=name,
                )

    @staticmethod
    def _parse_parts(path: str | pathlib.PurePath, assert_valid: bool = False) -> dict:
        """All twelve parts of a path that has a session, or of a session-relative path."""
        if session_path_parts(path, assert_valid=False)[1] is not None:
            return dict(full_path_parts(path, as_dict=True, assert_valid=assert_valid))
        relative = rel_path_parts(path, as_dict=True, assert_valid=assert_valid)
        return {**dict.fromkeys(PARTS), **relative}

    @classmethod
    def parse(cls, path: str | pathlib.PurePath) -> DatasetPath:
        """Parse a dataset path: a full path (with any root), a relative path or a file name.

        Raises an :class:`~one_flows.alf.errors.ALFInvalid` subclass naming the broken part.
        """
        parts = cls._parse_parts(path, assert_valid=True)
        if parts["object"] is None:
            raise ALFInvalidFilename("is an ALF folder, not a dataset path", str(path), "object")
        return cls(**parts)

    @property
    def session_path(self) -> str | None:
        """The session path ``(lab/Subjects/)subject/date/number``, or None."""
        if self.subject is None:
            return None
        lab = f"{self.lab}/Subjects/" if self.lab else ""
        return f"{lab}{self.subject}/{self.date}/{self.number}"

    @property
    def filename(self) -> str:
        """The file name ``(_namespace_)object.attribute(_timescale)(.extra).extension``."""
        return "".join(
            (
                f"_{self.namespace}_" if self.namespace else "",
                f"{self.object}.{self.attribute}",
                f"_{self.timescale}" if self.timescale else "",
                f".{self.extra}" if self.extra else "",
                f".{self.extension}",
            )
        )

    @property
    def relative_path(self) -> str:
        """The path relative to the session: ``(collection/)(#revision#/)filename``."""
        folders = [self.collection, f"#{self.revision}#" if self.revision else None]
        return "/".join([*filter(None, folders), self.filename])

    @property
    def path(self) -> str:
        """The whole ALF path: session path (when known) and relative path."""
        return "/".join(filter(None, (self.session_path, self.relative_path)))

    def as_dict(self) -> dict[str, str | None]:
        """The twelve parts by name, in path order, as ONE-api's parsers return them."""
        return asdict(self)

    def __str__(self) -> str:
        return self.path
