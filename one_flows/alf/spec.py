"""The ALF specification: the grammar of ALF paths, its part patterns and name validators.

An ALF path names one dataset file of one experiment session::

    (lab/Subjects/)subject/date/number/(collection/)(#revision#/)(_namespace_)object.attribute(_timescale)(.extra).extension

Parts in brackets are optional.  Reading left to right:

- The *session path* ``(lab/Subjects/)subject/date/number``: an optional ``lab`` folder that,
  when present, must be followed by a literal ``Subjects`` folder; then the ``subject`` name
  (word characters, dots and hyphens), the ISO ``date`` (``YYYY-MM-DD``, checked for shape
  only) and the session ``number`` of that day (1 to 3 digits, conventionally zero-padded to 3).
  The session path may sit under any root folder, e.g. ``/mnt/data/``.
- An optional ``collection``: one or more folders (word characters, dots, hyphens) grouping
  data by device or modality, e.g. ``alf/probe00``.
- An optional ``revision`` folder wrapped in pound signs, e.g. ``#2024-01-01#``; it must be
  the last folder.
- The file name: an optional ``_namespace_`` prefix (letters and digits between underscores),
  the ``object`` (word characters), a period, the ``attribute`` (letters and digits, optionally
  ending in ``_times`` or ``_intervals``), an optional ``_timescale``, any number of
  ``.extra`` parts (e.g. a dataset UUID) and the ``.extension``.  A file name therefore holds
  at least two periods: ``spikes.times.npy`` is ALF, ``spikes.npy`` is not.

Call :func:`describe` to print the meaning of each part.
"""

from __future__ import annotations

import itertools
import re
import textwrap
from collections.abc import Iterable
from uuid import UUID

from one_flows.alf.errors import ALFInvalid, ALFInvalidFilename, ALFInvalidPart

PARTS: tuple[str, ...] = (
    "lab",
    "subject",
    "date",
    "number",
    "collection",
    "revision",
    "namespace",
    "object",
    "attribute",
    "timescale",
    "extra",
    "extension",
)
"""The twelve ALF parts in path order."""

SESSION_PARTS: tuple[str, ...] = PARTS[:4]
FOLDER_PARTS: tuple[str, ...] = PARTS[:6]
REL_PATH_PARTS: tuple[str, ...] = PARTS[4:]
FILENAME_PARTS: tuple[str, ...] = PARTS[6:]

PART_PATTERNS: dict[str, str] = {
    # ONE-api allows only word characters in a lab name; real lab names hold hyphens.
    "lab": r"[\w.-]+",
    "subject": r"[\w.-]+",
    "date": r"\d{4}-\d{2}-\d{2}",
    "number": r"\d{1,3}",
    "collection": r"[\w./-]+",
    "revision": r"[\w.-]+",
    "namespace": r"[a-zA-Z0-9]+",
    "object": r"\w+",
    # An optional attribute-level namespace (deprecated) and the two reserved suffixes that
    # keep their underscore; any other underscore starts the timescale.
    "attribute": r"(?:_[a-z]+_)?[a-zA-Z0-9]+(?:_times(?=[_.])|_intervals(?=[_.]))?",
    "timescale": r"\w+",
    "extra": r"[.\w-]+",
    "extension": r"\w+",
}
"""The regular expression each ALF part must match."""

# Templates: each {part} becomes a named group holding PART_PATTERNS[part].
# The session path starts and ends on folder boundaries, so no part is cut out of the middle
# of a folder name.
SESSION_SPEC = r"(?<![^/])(?:{lab}/Subjects/)?{subject}/{date}/{number}(?![^/])"
"""Template of a session path."""
COLLECTION_SPEC = r"(?:{collection}/)?(?:#{revision}#/)?"
"""Template of the optional collection and revision folders, each with its trailing slash."""
# The namespace must sit between two underscores: without that, '_trials.x.npy' would read as
# namespace 'trial' and object 's'.
FILE_SPEC = (
    r"_?(?:(?<=_){namespace}(?=_))?_?{object}\.{attribute}(?:_{timescale})?"
    r"(?:\.{extra})*\.{extension}\Z"
)
"""Template of a dataset file name (anchored at its end)."""
REL_PATH_SPEC = COLLECTION_SPEC + FILE_SPEC
"""Template of a path relative to the session folder."""
FULL_SPEC = SESSION_SPEC + "/" + REL_PATH_SPEC
"""Template of a whole dataset path."""

PATH_PATTERN = (
    "(lab/Subjects/)subject/date/number/(collection/)(#revision#/)"
    "(_namespace_)object.attribute(_timescale)(.extra).extension"
)
"""The ALF path pattern for display; brackets mark optional parts."""

SPEC_DESCRIPTION: dict[str, str] = {
    "lab": "The lab that collected the data (optional).  A lab folder is always followed by a "
    "'Subjects' folder.",
    "Subjects": "A literal folder dividing a lab's data by subject; required after a lab folder.",
    "subject": "The name of the experimental subject, usually an arbitrary label.",
    "date": "The day of the session in ISO format, YYYY-MM-DD.",
    "number": "The sequence number of the session on that day, from 1 to 3 digits, "
    "conventionally zero-padded to three: 001, 002, ...",
    "collection": "Optional folders grouping the files of a session by device or modality, "
    "needed when one session holds several recordings of the same kind, such as spike times "
    "from two probes.  Examples: 'alf', 'alf/probe00', 'raw_video_data'.",
    "revision": "An optional folder versioning the data, with an arbitrary label between pound "
    "signs, e.g. '#2024-01-01#'.  Revisions sort lexicographically; when a requested revision "
    "does not exist, the latest one before it is used.  It is always the last folder.",
    "namespace": "An optional file name prefix between underscores marking data that are not a "
    "community standard, or that come from one piece of hardware or software, e.g. '_ibl_', "
    "'_iblrig_', '_phy_'.",
    "object": "What the file describes.  All files of one object have the same number of rows, "
    "so together they form a table whose columns are the attributes.  Object names are "
    "camel case and plural, e.g. 'trials', 'wheelMoves', 'sparseNoise'.\nAn attribute named "
    "after another object holds row indices (from 0) into that object: 'spikes.clusters.npy' "
    "indexes the rows of 'clusters.*' files.",
    "attribute": "The quantity held by the file, e.g. 'times', 'amplitudes', 'clusters', in "
    "camel case.  Only the reserved suffixes '_times' and '_intervals' may follow an "
    "underscore, e.g. 'stimOn_times'.\n'times' holds event times in seconds on the universal "
    "timescale; 'intervals' holds two columns, start and end times; 'timestamps' holds either "
    "one time per sample or (sample index, time) synchronisation pairs to interpolate between.",
    "timescale": "An optional clock the times are expressed in, when it is not the universal "
    "one, after an underscore: 'spikes.times_ephysClock.npy', 'wheel.timestamps_bpod.csv'.",
    "extra": "Any number of optional period-separated parts with no formal meaning, e.g. a "
    "dataset UUID or a file hash.  Files that differ only in their extra parts are pieces of "
    "one dataset, concatenated in lexicographic order of the extras.",
    "extension": "The file type, e.g. 'npy' (numpy array, preferred), 'tsv' (tab-separated text "
    "with a header row), 'bin' (flat binary, described by a metadata file giving its columns "
    "and dtype).  Any file type with a notion of rows may be used.",
}
"""What each ALF part means."""


def regex(spec: str = FULL_SPEC, **patterns: str | None) -> re.Pattern[str]:
    """Compile an ALF template into a regular expression with one named group per part.

    Keyword arguments replace the pattern of a part, e.g. ``regex(FILE_SPEC, object='trials')``
    matches only trials files.
    """
    unknown = sorted(set(patterns) - set(PART_PATTERNS))
    if unknown:
        raise ALFInvalidPart(
            f"unknown ALF part; expected one of {', '.join(PARTS)}", unknown[0], part=unknown[0]
        )
    chosen = {**PART_PATTERNS, **{k: v for k, v in patterns.items() if v is not None}}
    groups = {name: f"(?P<{name}>{pattern})" for name, pattern in chosen.items()}
    return re.compile(spec.format_map(groups))


_FILENAME_RE = regex(FILE_SPEC)
_SESSION_END_RE = re.compile(regex(SESSION_SPEC).pattern + r"\Z")


def describe(part: str | None = None, width: int = 99) -> None:
    """Print the ALF path pattern and the meaning of one part, or of every part."""
    print(PATH_PATTERN)
    if part is None:
        parts: Iterable[str] = SPEC_DESCRIPTION
    elif part in SPEC_DESCRIPTION:
        # Letters only as boundaries: "_timescale" in the pattern defeats \b.
        start = re.search(rf"(?<![A-Za-z]){part}(?![A-Za-z])", PATH_PATTERN).start()
        print(" " * start + "^" * len(part))
        parts = (part,)
    else:
        raise ALFInvalidPart(
            f"unknown ALF part; expected one of {', '.join(SPEC_DESCRIPTION)}", part, part=part
        )
    for name in parts:
        print("\n" + name.upper())
        for paragraph in SPEC_DESCRIPTION[name].splitlines():
            print(textwrap.fill(paragraph, width))


def _as_posix(path: object) -> str:
    """Return a path or string as a POSIX-style string, reading backslashes as separators."""
    text = path.as_posix() if hasattr(path, "as_posix") else path
    if not isinstance(text, str):
        raise ALFInvalid(f"expected a str or path, got {type(path).__name__}", repr(path))
    return text.replace("\\", "/")


def is_valid(filename: object) -> bool:
    """Return True if the given file name (not a path) is a valid ALF dataset file name."""
    return _FILENAME_RE.match(_as_posix(filename)) is not None


def is_session_path(path_object: object) -> bool:
    """Return True if the path ends in an ALF session path (lab/Subjects/)subject/date/number.

    Only the syntax is checked; the folder need not exist.  Trailing slashes are ignored.
    """
    return _SESSION_END_RE.search(_as_posix(path_object).strip("/")) is not None


def is_uuid(uuid: object, versions: tuple[int, ...] = (4, 3)) -> bool:
    """Return True if the value is, or reads as, a UUID of one of the given versions.

    Accepts UUID objects, strings in any form :class:`uuid.UUID` understands, bytes and ints.
    """
    if isinstance(uuid, bool) or not isinstance(uuid, UUID | str | bytes | int):
        return False
    if not isinstance(uuid, UUID):
        try:
            if isinstance(uuid, str):
                uuid = UUID(uuid)
            elif isinstance(uuid, bytes):
                uuid = UUID(bytes=uuid)
            else:
                uuid = UUID(int=uuid)
        except ValueError:
            return False
    return uuid.version in versions


def is_uuid_string(string: object) -> bool:
    """Return True if the value is a canonical (lower-case, hyphenated) v3, v4 or v5 UUID string."""
    return isinstance(string, str) and is_uuid(string, (3, 4, 5)) and str(UUID(string)) == string


def _is_all_caps(word: str) -> bool:
    """True for acronyms such as 'RFM' or 'ROIs', whose case is kept when converting."""
    return re.fullmatch(r"[A-Z]+s?", word) is not None


def dromedary(string: str) -> str:
    """Convert a snake-case or space-separated string to camel case, keeping acronyms.

    A string without separators only has its first letter lower-cased.

    >>> dromedary('motion_energy'), dromedary('mpci ROIs'), dromedary('FooBar')
    ('motionEnergy', 'mpciROIs', 'fooBar')
    """
    if not string:
        return string
    first, *others = re.split(r"[_\s]", string)
    if not others:
        return first[:1].lower() + first[1:]
    head = first if _is_all_caps(first) else first.lower()
    return head + "".join(w if _is_all_caps(w) else w.capitalize() for w in others)


def readableALF(name: str, capitalize: bool = False) -> str:
    """Convert a camel-case ALF object or attribute name to lower-case words, keeping acronyms.

    >>> readableALF('sparseNoise'), readableALF('someROIDataset', capitalize=True)
    ('sparse noise', 'Some ROI dataset')
    """
    # A word starts at a capital that follows a lower-case letter or digit, or at a capital
    # that opens a lower-case run (except a plural 's' closing an acronym such as 'ROIs').
    starts = [
        m.start()
        for m in re.finditer(r"(?<=[a-z0-9])[A-Z]|[A-Z](?=[a-rt-z0-9])", name)
        if m.start() > 0
    ]
    bounds = [0, *starts, len(name)]
    words = [name[i:j] for i, j in itertools.pairwise(bounds)]
    text = " ".join(w if _is_all_caps(w) else w.lower() for w in words)
    return text[:1].upper() + text[1:] if capitalize else text


def _checked(part: str, value: str, pattern: str) -> str:
    """Return the value if it fully matches the pattern, else raise naming the part."""
    if not isinstance(value, str) or re.fullmatch(pattern, value) is None:
        raise ALFInvalidPart(f"{part} must match {pattern!r}", repr(value), part=part)
    return value


def _non_empty(items: str | Iterable[str] | None) -> list[str]:
    """Take one str or an iterable of str as a list, dropping empty entries."""
    values = [items] if isinstance(items, str) else list(items or ())
    return [value for value in values if value]


def to_alf(
    object: str,
    attribute: str,
    extension: str,
    namespace: str | None = None,
    timescale: str | Iterable[str] | None = None,
    extra: str | Iterable[str] | None = None,
) -> str:
    """Compose a valid ALF file name from its parts.

    Object, attribute and timescale are converted to camel case (``'spike_train'`` becomes
    ``'spikeTrain'``; a trailing ``_times``, ``_timestamps`` or ``_intervals`` of the attribute
    is kept).  Several timescales are joined with underscores; extras may be a period-separated
    string or a sequence.  A leading period of the extension is dropped.

    >>> to_alf('spike_train', 'ids', 'npy', namespace='ibl', timescale='ephys clock')
    '_ibl_spikeTrain.ids_ephysClock.npy'
    """
    if not extension:
        raise ALFInvalidPart("an extension is required", repr(extension), part="extension")
    extension = _checked("extension", extension.removeprefix("."), PART_PATTERNS["extension"])
    if namespace:
        _checked("namespace", namespace, PART_PATTERNS["namespace"])
    if not object or object.startswith("_"):
        raise ALFInvalidPart(
            "object must be non-empty and not start with '_'; pass a namespace instead",
            repr(object),
            part="object",
        )
    object = _checked("object", dromedary(object), r"[^\W_]\w*")
    suffix = re.search(r"_(times|timestamps|intervals)$", attribute or "")
    stem = attribute[: suffix.start()] if suffix else attribute
    attribute = _checked("attribute", dromedary(stem) + (suffix[0] if suffix else ""), r"\w+")
    scales = [_checked("timescale", dromedary(s), r"\w+") for s in _non_empty(timescale)]
    if isinstance(extra, str):
        extra = extra.split(".")
    extras = [_checked("extra", e, r"[\w-]+") for e in _non_empty(extra)]

    name = "".join(
        (
            f"_{namespace}_" if namespace else "",
            object,
            ".",
            "_".join([attribute, *scales]),
            "".join("." + e for e in extras),
            ".",
            extension,
        )
    )
    if not is_valid(name):
        raise ALFInvalidFilename("the parts do not compose a valid ALF file name", name)
    return name
