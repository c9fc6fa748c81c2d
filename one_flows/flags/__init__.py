"""Flag files: how acquisition rigs say "this session is copied, register it".

A rig copies a session to the lab server and then drops an empty ``create_me.flag`` (register
every file) or a flag listing the files to register, one path per line relative to the session
folder (:mod:`one_flows.flags.contents`).  This package finds flags, lets exactly one run claim
each, and records how the claim ended; the Prefect layer drives it.  Its only dependency is
:mod:`one_flows.alf`.

A flag's life, by file name in the session folder (the state is the name, nothing else)::

    create_me.flag                              pending        find_flags() yields it
      │ claim(flag, run_id): one atomic os.rename; of concurrent claimers exactly one wins
      ▼
    create_me.flag.<run_id>.claimed             claimed        reap_stale_claims() takes it
      │                                                        back if <run_id> stops running
      ├─ complete(claim)         → removed, or create_me.flag.done with keep_done_marker=True
      ├─ release(claim)          → create_me.flag again (e.g. the run was cancelled)
      └─ fail(claim, reason)     → create_me.flag.failed-1     (reason appended, list kept)
                                     │ claimable again: a later scan retries it
                                     ▼ claim
                                   create_me.flag.failed-1.<run_id>.claimed
                                     └─ fail → failed-2 → ... ; the max_attempts-th failure
                                        gives create_me.flag.quarantined: reported, never retried

Before claiming, :func:`is_quiet` tells whether the session's data (its files other than flags)
stopped changing for the quiet time (:data:`QUIET_SECONDS` by default), so a half-copied session
is not registered; :class:`FlagWatcher`, the polling core of ``one-flows watch``, announces a
newly flagged session by the same rule.  Unusable flags raise (or, during scans, are reported
as) :class:`FlagError`.
"""

from one_flows.flags.claims import (
    Claim,
    claim,
    complete,
    fail,
    give_back,
    reap_stale_claims,
    release,
)
from one_flows.flags.contents import FlagContents, read_flag, write_flag
from one_flows.flags.errors import (
    ClaimLost,
    FlagConflict,
    FlagContentError,
    FlagError,
    FlagLocationError,
    FlagUnreadable,
)
from one_flows.flags.names import CLAIMABLE, DEFAULT_NAMES, Flag, FlagState, is_flag_file
from one_flows.flags.readiness import QUIET_SECONDS, is_quiet
from one_flows.flags.scan import find_flags
from one_flows.flags.watcher import FlagWatcher

__all__ = [
    "CLAIMABLE",
    "DEFAULT_NAMES",
    "QUIET_SECONDS",
    "Claim",
    "ClaimLost",
    "Flag",
    "FlagConflict",
    "FlagContentError",
    "FlagContents",
    "FlagError",
    "FlagLocationError",
    "FlagState",
    "FlagUnreadable",
    "FlagWatcher",
    "claim",
    "complete",
    "fail",
    "find_flags",
    "give_back",
    "is_flag_file",
    "is_quiet",
    "read_flag",
    "reap_stale_claims",
    "release",
    "write_flag",
]
