"""Create sessions and register their files: ONE-api's RegistrationClient, with outcomes.

>>> client = RegistrationClient(AlyxClient("https://alyx.example.org", username=..., password=...))
>>> report = client.register_session("/data/cortexlab/Subjects/algernon/2026-01-03/001")
>>> report.counts
{<Outcome.CREATED: 'created'>: 12, <Outcome.UNCHANGED: 'unchanged'>: 0, ...}
>>> session, records = report  # as ONE-api's register_session returns them

A script written for ONE-api's ``RegistrationClient(one)`` runs with only its import changed
(``from one_flows.registration import RegistrationClient``): see `RegistrationClient`.
"""

from one_flows.registration.client import (
    DEFAULT_BATCH_SIZE,
    RegistrationClient,
    default_digest_cache_path,
    default_ledger_path,
    default_lock_folder,
)
from one_flows.registration.errors import (
    MemberNotFound,
    RegistrationError,
    RunFailed,
    SessionFailed,
    SessionFolderUnreadable,
    SubjectNotFound,
)
from one_flows.registration.files import DatasetTypeMatcher, FoundFiles, scan_files
from one_flows.registration.ledger import LedgerFile, LedgerSession, RegistrationLedger
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
from one_flows.registration.revisions import next_revision, unprotected_rel_path
from one_flows.registration.sessions import ensure_ISO8601, make_session_folder
from one_flows.walk import SessionKey

__all__ = [
    "AMBIGUOUS_TYPE",
    "DEFAULT_BATCH_SIZE",
    "LINK_LOOP",
    "NOT_ALF",
    "NOT_IN_SESSION",
    "NOT_UTF8",
    "NO_DATASET_TYPE",
    "PROTECTED",
    "UNKNOWN_EXTENSION",
    "DatasetTypeMatcher",
    "FileOutcome",
    "FoundFiles",
    "LedgerFile",
    "LedgerSession",
    "MemberNotFound",
    "Outcome",
    "RegisteredFiles",
    "RegistrationClient",
    "RegistrationError",
    "RegistrationLedger",
    "RunFailed",
    "SessionFailed",
    "SessionFolderUnreadable",
    "SessionKey",
    "SessionReport",
    "SubjectNotFound",
    "default_digest_cache_path",
    "default_ledger_path",
    "default_lock_folder",
    "ensure_ISO8601",
    "make_session_folder",
    "next_revision",
    "scan_files",
    "unprotected_rel_path",
]
