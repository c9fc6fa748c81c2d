"""ONE cache tables: build, update, read and write ``sessions.pqt`` and ``datasets.pqt``.

The tables have ONE-api's schemas, so ONE-api's ``One(cache_dir=..., mode='local')`` reads the
tables built here, and ``load_tables`` reads the tables ONE-api builds:

- ``sessions.pqt``: index ``id`` (str); columns ``lab``, ``subject`` (str), ``date``
  (``datetime.date``, stored as date32), ``number`` (uint16), ``task_protocol``, ``projects``
  (str, empty when unknown).
- ``datasets.pqt``: index (``eid``, ``id``) (str); columns ``rel_path`` (str, relative to the
  session folder: ``collection/#revision#/filename``), ``file_size`` (nullable UInt64), ``hash``
  (str md5, empty when not computed), ``exists`` (bool) and ``qc`` (ordered categorical of
  ``QC_LEVELS``).
- Both files carry the parquet key-value metadata ``one_metadata``: a JSON object with
  ``date_created`` ("YYYY-MM-DD HH:MM") and ``origin`` (the indexed folder).
- one-flows' own files are in the hidden folder ``.one_flows`` beside the tables (ONE-api reads
  only ``*.pqt`` files of the tables folder): the incremental update's state files
  (``scan_state.parquet``, ``scan_dirs.parquet``) and the writers' lock file.

Any number of threads and processes may write the tables of one folder at once
(`make_parquet_db`, `update_tables`, `save_tables`, `one_flows.targets.LocalTarget`): each
change is made under `lock_tables`, an exclusive ``flock`` of ``.one_flows/tables.lock``, by
reading the tables under the lock, so no writer loses another's rows. A writer killed mid-write
leaves the old tables and a temporary file, which the next writer removes. On NFS, Linux
clients pass ``flock`` to the server as a whole-file lock, so writers on several machines are
serialised too, and a dead machine's lock is freed when its lease expires (NFSv4: about 90 s);
a share mounted with ``local_lock=flock`` or ``local_lock=all`` (or CIFS with ``nobrl``) locks
each machine apart, and writers on two machines can then lose rows. A file system that refuses
``flock`` makes writers fail with `TablesLockError` rather than write unlocked.

Tables written by earlier versions of one-flows, whose ids were uuid5s (which ONE-api refuses
as eids), and their state files (then beside the tables) are converted by the next writer, with
nothing to do by hand: `update_tables` (``one-flows cache``, the nightly update) and
`make_parquet_db` write uuid3 ids, and a ``LocalTarget`` registration converts the ids of the
whole tables it writes. Each id keeps its rows (hashes, QC, session fields) through the change.

Differences from ONE-api's ``one.alf.cache.make_parquet_db``, each one deliberate:

- Ids are stable: ``session_id`` and ``dataset_id`` are uuid3s (name-based, as ONE's, and
  accepted by ONE-api's ``is_uuid``) of the session's canonical name
  (`one_flows.walk.SessionKey.canonical`: ``lab/subject/date/number``, number zero-padded, lab
  omitted when empty) and of the dataset's relative path, in a fixed namespace. ONE draws a
  new random namespace on each build, and gives equal dataset ids to equal relative paths of
  different sessions.
- Hashing is optional, parallel and can reuse a persistent ``DigestCache``.
- ``update_tables`` rescans only the sessions given, or those whose folders changed (state
  files in ``.one_flows`` record each file's and folder's mtime), and rehashes only files whose
  size or mtime changed. When all it finds is new sessions, it appends their rows to the files
  (`one_flows._parquet_append`) instead of re-encoding every row.
- Writes are atomic per file: a reader sees the old table or the new one, never a partial one.
  A rewritten file keeps the permissions of the one it replaces.
- Columns are zstd-compressed (ONE writes snappy): half the size for hex ids and md5s, read as
  fast, and read by the same parquet readers.
- Files under an invalid collection folder (e.g. one with a space) are skipped; ONE records them
  with the collection dropped. A session folder nested in another session is scanned as part of
  the outer session; ONE fails to build the tables in that case.
- Folders are walked as every one-flows walker walks them (`one_flows.walk`): hidden folders and
  files are left out, symbolic links to folders are not followed, and a symbolic link to a file
  is indexed only when it resolves inside its session folder (any other is skipped with a
  ``RuntimeWarning`` saying why). A session's lab is read from the folders below the data
  folder.

The modules, from the bottom up: `~one_flows.cache.errors`; `~one_flows.cache.ids` (the
stable ids); `~one_flows.cache.files` (the files of a tables folder, written atomically);
`~one_flows.cache.lock` (one writer at a time); `~one_flows.cache.tables` (schemas, reading and
saving); `~one_flows.cache.scan` (session folders and their files); `~one_flows.cache.state`
(what the last scan recorded); `~one_flows.cache.upgrade` (tables of earlier versions);
`~one_flows.cache.build` (`make_parquet_db`); `~one_flows.cache.update` (`update_tables`).
"""

from one_flows.cache.build import UpdateSummary, make_parquet_db
from one_flows.cache.errors import (
    CacheError,
    NotACacheTable,
    SessionFolderError,
    TablesFolderMissing,
    TablesLockError,
)
from one_flows.cache.ids import dataset_id, session_id
from one_flows.cache.lock import lock_tables
from one_flows.cache.tables import QC, QC_LEVELS, CacheTables, load_tables, save_tables
from one_flows.cache.update import update_tables

__all__ = [
    "QC",
    "QC_LEVELS",
    "CacheError",
    "CacheTables",
    "NotACacheTable",
    "SessionFolderError",
    "TablesFolderMissing",
    "TablesLockError",
    "UpdateSummary",
    "dataset_id",
    "load_tables",
    "lock_tables",
    "make_parquet_db",
    "save_tables",
    "session_id",
    "update_tables",
]
