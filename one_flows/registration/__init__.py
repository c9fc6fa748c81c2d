"""Create sessions and register their files: ONE-api's RegistrationClient, with outcomes.

>>> client = RegistrationClient(AlyxClient("https://alyx.example.org", username=..., password=...))
>>> report = client.register_session("/data/cortexlab/Subjects/algernon/2026-01-03/001")
>>> report.counts
{<Outcome.CREATED: 'created'>: 12, <Outcome.UNCHANGED: 'unchanged'>: 0, ...}
>>> session, records = report  # as ONE-api's register_session returns them

A script written for ONE-api's ``RegistrationClient(one)`` runs with only its import changed
(``from one_flows.registration import RegistrationClient``): see `RegistrationClient`.

The package exports the client, what it answers (`SessionReport`, `RegisteredFiles`,
`FileOutcome`, `Outcome` and the skip reasons), its errors, the ledger it may be given and where
digests are kept by default. The modules: ``client`` (the ONE-compatible facade), ``batch``
(the scheduling of many sessions), ``pipeline`` (a file's way from candidate to outcome),
``ledger`` (what this machine registered, and the fast path it allows), ``care`` (weighings and
water), ``files`` (which files are registrable), ``sessions`` (session folders and records),
``revisions``, ``outcomes`` and ``errors``.
"""

from one_flows.registration.client import RegistrationClient, default_digest_cache_path
from one_flows.registration.errors import (
    MemberNotFound,
    RegistrationError,
    RunFailed,
    SessionFailed,
    SessionFolderUnreadable,
    SubjectNotFound,
)
from one_flows.registration.files import FoundFiles
from one_flows.registration.ledger import RegistrationLedger
from one_flows.registration.outcomes import (
    AMBIGUOUS_TYPE,
    LINK_LOOP,
    NO_DATASET_TYPE,
    NOT_ALF,
    NOT_IN_SESSION,
    NOT_UTF8,
    PROTECTED,
    UNKNOWN_EXTENSION,
    FileOutcome,
    Outcome,
    RegisteredFiles,
    SessionReport,
)

__all__ = [
    "AMBIGUOUS_TYPE",
    "LINK_LOOP",
    "NOT_ALF",
    "NOT_IN_SESSION",
    "NOT_UTF8",
    "NO_DATASET_TYPE",
    "PROTECTED",
    "UNKNOWN_EXTENSION",
    "FileOutcome",
    "FoundFiles",
    "MemberNotFound",
    "Outcome",
    "RegisteredFiles",
    "RegistrationClient",
    "RegistrationError",
    "RegistrationLedger",
    "RunFailed",
    "SessionFailed",
    "SessionFolderUnreadable",
    "SessionReport",
    "SubjectNotFound",
    "default_digest_cache_path",
]
