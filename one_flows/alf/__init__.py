"""The ALF specification: grammar, parsers and composers of ALF dataset paths.

ALF names every file and folder of an experiment session::

    (lab/Subjects/)subject/date/number/(collection/)(#revision#/)(_namespace_)object.attribute(_timescale)(.extra).extension

See :mod:`one_flows.alf.spec` for the grammar, :mod:`one_flows.alf.path` for the parsers and
:class:`DatasetPath` for a parsed dataset path.  Function names, arguments and results follow
ONE-api 3.6.1 (``one.alf.spec`` and ``one.alf.path``), and agree with it on valid ALF paths,
except for these deliberate differences, each fixing a plain bug:

1. Lab folders may hold hyphens and dots (``cortex-lab/Subjects/...``): ONE-api parses the lab
   as ``lab``, cutting it out of the middle of the folder name.
2. Session parts start and end on folder boundaries.  ONE-api reads ``a/foo bar/2020-01-01/001``
   as subject ``bar`` and ``sub/2020-01-01/0001`` as number ``000``; here the first has no
   session and the second is invalid.
3. A namespace must be closed by an underscore: ONE-api reads ``_trials.intervals.npy`` as
   namespace ``trial`` and object ``s``; here it is object ``trials`` without namespace.
4. A trailing newline is not valid at the end of a name: ONE-api's ``$`` accepts
   ``'obj.attr.npy\\n'`` as a valid file name and ``'sub/2020-01-01/001\\n'`` as a session path.
5. ``full_path_parts`` accepts folder paths ending in a nested collection
   (``sub/2020-01-01/001/alf/probe00``), which ONE-api rejects; and rejects a folder after the
   revision folder (``.../alf/#v1#/alf``), which ONE-api silently drops.
6. ``get_session_path('1/x/2020-01-01')`` is None: ONE-api wraps around to the last folder and
   returns ``Path('1')``.  Only ASCII digits count as a session number (ONE-api takes ``'²'``).
7. Backslashes are folder separators in every input on every platform, as ONE-api's own
   examples (``get_session_path('C:\\\\Data\\\\subject\\\\2020-01-01\\\\1\\\\...')``) promise but
   only deliver on Windows.
8. ``is_valid`` accepts path objects (ONE-api raises TypeError); ``readableALF('SparseNoise')``
   has no leading space.
9. Invalid input raises an :class:`ALFError` subclass (also a ValueError for invalid input)
   naming the broken part; ONE-api raises TypeError, IndexError or AttributeError in places
   (``to_alf('', ...)``, ``without_revision`` of a path with an impossible date).
10. ``to_alf`` refuses parts that would compose an invalid or ambiguous name (an empty
    attribute, a period inside a timescale, characters outside the part's pattern), where
    ONE-api returns names such as ``'spikes..npy'``.  ``add_uuid_string`` takes only UUID
    objects or canonical UUID strings (ONE-api writes ``str()`` of anything else).

Path-returning functions return plain :mod:`pathlib` classes where ONE-api returns its
``ALFPath`` subclasses; they compare equal.
"""

from one_flows.alf.dataset import DatasetPath
from one_flows.alf.errors import (
    ALFError,
    ALFInvalid,
    ALFInvalidFilename,
    ALFInvalidPart,
    ALFInvalidPath,
    ALFUUIDMismatch,
)
from one_flows.alf.path import (
    add_uuid_string,
    filename_parts,
    folder_parts,
    full_path_parts,
    get_alf_path,
    get_session_path,
    padded_sequence,
    rel_path_parts,
    remove_uuid_string,
    session_path_parts,
    with_revision,
    without_revision,
)
from one_flows.alf.spec import (
    PARTS,
    SPEC_DESCRIPTION,
    describe,
    is_session_path,
    is_uuid,
    is_uuid_string,
    is_valid,
    readableALF,
    regex,
    to_alf,
)

__all__ = [
    "PARTS",
    "SPEC_DESCRIPTION",
    "ALFError",
    "ALFInvalid",
    "ALFInvalidFilename",
    "ALFInvalidPart",
    "ALFInvalidPath",
    "ALFUUIDMismatch",
    "DatasetPath",
    "add_uuid_string",
    "describe",
    "filename_parts",
    "folder_parts",
    "full_path_parts",
    "get_alf_path",
    "get_session_path",
    "is_session_path",
    "is_uuid",
    "is_uuid_string",
    "is_valid",
    "padded_sequence",
    "readableALF",
    "regex",
    "rel_path_parts",
    "remove_uuid_string",
    "session_path_parts",
    "to_alf",
    "with_revision",
    "without_revision",
]
