"""The root of every error one-flows raises, the whole tree, and whose fault each one is.

Every error one-flows raises on purpose derives from `OneFlowsError`, so ``except
OneFlowsError`` catches them all and lets programming errors through. Each layer keeps its
branch in its own module; the whole tree (a builtin in brackets is a second base class, kept so
that code written against ONE-api goes on catching what it caught)::

    OneFlowsError
    ├── ALFError                        one_flows.alf: a path or name breaks the ALF spec
    │   ├── ALFInvalid [ValueError]
    │   │   ├── ALFInvalidPath
    │   │   ├── ALFInvalidFilename
    │   │   └── ALFInvalidPart
    │   ├── ALFUUIDMismatch [ValueError]
    │   ├── ALFObjectNotFound           one_flows.one: a query found no such dataset
    │   ├── ALFMultipleObjectsFound
    │   ├── ALFMultipleCollectionsFound
    │   ├── ALFMultipleRevisionsFound
    │   ├── DatasetHashMismatch
    │   ├── NotInSource [ValueError]    the query's source holds nothing to answer with
    │   └── NoCacheTables [FileNotFoundError]   no cache tables to query
    ├── DownloadError                   one_flows.one.download: a file not fetched
    │   ├── DownloadAuthError           the data server refused the credentials
    │   └── DownloadMismatch [DatasetHashMismatch]   the copy's size or md5 is wrong
    ├── AlyxError                       one_flows.alyx: a failure talking to Alyx
    │   ├── AlyxRequestError            4xx: the request itself is wrong
    │   │   ├── AlyxAuthError           bad or missing credentials                  (outage)
    │   │   └── AlyxNotFound            404
    │   └── AlyxUnavailable             the server cannot serve us: TLS, no Alyx    (outage)
    │       ├── AlyxTransientError      429, 502/503/504, connections, timeouts
    │       └── AlyxServerError         500 and the other 5xx
    ├── TargetError                     one_flows.targets: a registration target's answer
    │   ├── ProtectedDatasets           files already registered as protected
    │   ├── RegistrationRefused         a batch of files refused
    │   ├── RepositoryNotFound [LookupError]   no data repository of the name given
    │   └── TargetUnavailable           cannot reach or log in to the target        (outage)
    ├── RegistrationError               one_flows.registration: a session cannot be registered
    │   ├── MemberNotFound [LookupError]
    │   │   └── SubjectNotFound
    │   ├── SessionFolderUnreadable     a folder of the session cannot be listed
    │   ├── SessionFailed               a registration run gave a session up
    │   └── RunFailed                   sessions of a registration run failed or are pending
    ├── FlagError                       one_flows.flags: a flag file cannot be used
    │   ├── FlagLocationError
    │   ├── FlagUnreadable
    │   ├── FlagContentError
    │   ├── ClaimLost
    │   └── FlagConflict
    ├── CacheError                      one_flows.cache: the cache tables cannot be used
    │   ├── TablesFolderMissing [NotADirectoryError]                                (outage)
    │   ├── NotACacheTable [ValueError]
    │   ├── SessionFolderError [ValueError]
    │   └── TablesLockError [OSError]       the tables folder cannot be locked      (outage)
    ├── ParquetAppendError [ValueError] one_flows._parquet_append: not appendable parquet
    ├── PrefectAPIError [RuntimeError]  one_flows._prefect_api: the Prefect API did not start
    └── Outage                          the infrastructure failed, not the session

Whose fault a failure is decides what happens to the session it stopped: an outage (`Outage`,
the second base class of the errors marked "(outage)" above) is the infrastructure's, so the
session is left pending for a later run and its attempts are not spent; anything else is the
session's own (an unknown subject, user, lab or project, a 4xx about its data, a file the
server refuses, a flag that cannot be read) and counts towards its quarantine. `is_outage` is
the one place that decides it.
"""

from __future__ import annotations

import sys

__all__ = ["OneFlowsError", "Outage", "is_outage"]


class OneFlowsError(Exception):
    """Base class of every error raised by one-flows."""


class Outage(OneFlowsError):
    """The infrastructure failed: the target is unreachable, refuses the credentials, or fails.

    A second base class of the errors that say so (`one_flows.alyx.AlyxAuthError`,
    `one_flows.alyx.AlyxUnavailable`, `one_flows.targets.TargetUnavailable`,
    `one_flows.cache.TablesFolderMissing`, `one_flows.cache.TablesLockError`).
    """


def is_outage(exc: BaseException) -> bool:
    """Whether a failure is the infrastructure's (an outage) rather than the session's own.

    Outages are `Outage` errors: no or bad credentials, an unreachable server, connection
    faults and transient faults that outlasted the retries, server errors (5xx), cache tables
    that cannot be found, locked or written. Connection faults and timeouts raised bare count
    as well: the standard library's `ConnectionError` and `TimeoutError`, those of `requests`
    and httpx's transport errors (from the Prefect API). Everything else is the session's own
    failure.
    """
    if isinstance(exc, Outage | ConnectionError | TimeoutError):
        return True
    # An exception of a library exists only once the library is imported: this module, which
    # every layer imports, does not import them itself.
    requests = sys.modules.get("requests")
    if requests is not None and isinstance(exc, requests.ConnectionError | requests.Timeout):
        return True
    httpx = sys.modules.get("httpx")
    return httpx is not None and isinstance(exc, httpx.TransportError)
