"""Claiming flags, and ending claims: release, complete, fail (then quarantine), reap.

Exclusivity: a claim is one ``os.rename`` of the flag to ``<flag>.<run_id>.claimed`` in the same
folder.  The kernel lets exactly one rename of a name succeed, so of many concurrent claimers
(threads or processes, on one host or, on NFS v3+ and SMB, several) one wins and the others find
the flag gone and get None.  Who holds the claim is in the name, so the claim has no crash window:
before the rename nothing happened, after it the claim is complete.

Ending a claim moves the flag to a name another flag could already hold (a rig may drop a new
flag while the old one is claimed), so those moves never overwrite: they hard-link the new name
(which fails if it exists) and then remove the old one.  A crash between the two steps leaves two
names for one file; the next move of the claimed name notices and just removes it.  File systems
without hard links fall back to ``os.rename`` after checking that the new name is free.

A history line (see :mod:`one_flows.flags.contents`) is appended to the claimed flag *before*
it moves on, so a ``failed-<n>`` flag always holds its reason.  Crash windows: a crash after the
line is written and before the move leaves a claimed flag with one line too many; the reaper then
returns it to the pool under its previous name, and the attempt is not counted.

Dead holders: a process holding a claim also holds an exclusive ``flock`` on a hidden lock file
beside it (``.<claimed name>.lock``), taken before the claiming rename.  The kernel drops the
lock when the process dies, however it dies, so a reaper that can take the lock knows the holder
is gone even when the run's orchestrator still believes it running (a SIGKILLed ``one-flows
register``).  A lock that is busy, or missing (no ``flock``: Windows), leaves the decision to
``is_running``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from one_flows.flags.contents import (
    append_record,
    parse_flag_text,
    read_flag_text,
)
from one_flows.flags.errors import ClaimLost, FlagConflict, FlagError
from one_flows.flags.names import DEFAULT_NAMES, Flag, FlagState, check_run_id, is_flag_file
from one_flows.flags.scan import ErrorHandler, find_flags, log_flag_error

try:
    import fcntl
except ImportError:  # Windows: no flock; is_running alone decides
    fcntl = None  # type: ignore[assignment]

_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.ENOSYS}

_log = logging.getLogger(__name__)

_HELD: dict[Path, int] = {}
"""Lock files of the claims this process holds, and their open descriptors."""
_HELD_LOCK = threading.Lock()


@dataclass(frozen=True)
class Claim:
    """A flag held by one run.

    Attributes
    ----------
    flag : Flag
        The flag in its claimed state (``flag.path`` is the ``.claimed`` file).
    source : Flag
        The flag as it was before the claim; :func:`release` puts it back there.
    claimed_at : datetime
        When the claim was made (UTC).
    """

    flag: Flag
    source: Flag
    claimed_at: datetime

    @property
    def run_id(self) -> str:
        """The run holding the claim."""
        assert self.flag.run_id is not None
        return self.flag.run_id

    @property
    def session_path(self) -> Path:
        """The session folder of the claimed flag."""
        return self.flag.session_path


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _move(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst`` unless ``dst`` exists.

    Raises FileExistsError if ``dst`` holds another file and FileNotFoundError if ``src`` is gone.
    """
    try:
        os.link(src, dst, follow_symlinks=False)
    except FileExistsError:
        if not _same_file(src, dst):
            raise
        # Left by a move interrupted between link and unlink: finish it.
    except OSError as error:
        if error.errno not in _NO_HARD_LINKS:
            raise
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "file exists", os.fspath(dst)) from None
        os.rename(src, dst)
        return
    # A concurrent mover of the same claim (two reapers) may have removed it first.
    with contextlib.suppress(FileNotFoundError):
        os.unlink(src)


def _lock_path(claimed: Path) -> Path:
    return claimed.with_name(f".{claimed.name}.lock")


def is_claim_lock(file_name: str) -> bool:
    """Whether ``file_name`` is the lock file that a claim keeps beside its flag."""
    return (
        file_name.startswith(".")
        and file_name.endswith(".lock")
        and is_flag_file(file_name[1 : -len(".lock")])
    )


def _hold(claimed: Path) -> None:
    """Lock the lock file of a claim about to be made, for as long as this process holds it."""
    if fcntl is None:
        return
    path = _lock_path(claimed)
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return  # the claim itself will fail, or live without a lock as before
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(descriptor)
        return
    with _HELD_LOCK:
        _HELD[path] = descriptor


def _let_go(claimed: Path) -> None:
    """Remove a claim's lock file and drop the lock, once the claim has ended."""
    path = _lock_path(claimed)
    with _HELD_LOCK:
        descriptor = _HELD.pop(path, None)
    with contextlib.suppress(OSError):
        os.unlink(path)
    if descriptor is not None:
        os.close(descriptor)


def _lock_of_dead_holder(claimed: Path) -> int | None:
    """The locked descriptor of a claim's lock file when its holder is dead, else None."""
    if fcntl is None:
        return None
    try:
        descriptor = os.open(_lock_path(claimed), os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(descriptor)
        return None
    return descriptor


def _lost(claim: Claim) -> ClaimLost:
    return ClaimLost(
        claim.flag.path, f"the claim of run {claim.run_id} is gone (reaped or removed)"
    )


def claim(flag: Flag, run_id: str) -> Claim | None:
    """Claim a pending or failed flag for run ``run_id``; None if another claimer got it first.

    Raises ValueError for a flag that is not claimable or an invalid run id, FlagConflict if this
    run already holds a claim under the same name, and FlagError if the rename fails otherwise.
    """
    if not flag.claimable:
        raise ValueError(f"{flag.path}: a {flag.state.value} flag cannot be claimed")
    claimed = flag.moved(FlagState.CLAIMED, flag.attempt, check_run_id(run_id))
    if os.path.lexists(claimed.path):
        raise FlagConflict(claimed.path, f"run {run_id} already holds this claim")
    _hold(claimed.path)
    try:
        os.rename(flag.path, claimed.path)
    except FileNotFoundError:
        _let_go(claimed.path)
        return None
    except OSError as error:
        _let_go(claimed.path)
        raise FlagError(flag.path, f"cannot claim: {error.strerror or error}") from None
    return Claim(claimed, flag, datetime.now(UTC))


def claim_of(flag: Flag) -> Claim:
    """Return the :class:`Claim` that a claimed flag found on disk stands for.

    ``claimed_at`` is the flag's last status change, which the claiming rename set.
    """
    if flag.state is not FlagState.CLAIMED or flag.run_id is None:
        raise ValueError(f"{flag.path}: a {flag.state.value} flag is not a claim")
    state = FlagState.FAILED if flag.attempt else FlagState.PENDING
    try:
        changed = datetime.fromtimestamp(flag.path.lstat().st_ctime, UTC)
    except FileNotFoundError:
        raise ClaimLost(flag.path, "the claim is gone") from None
    return Claim(flag, flag.moved(state, flag.attempt), changed)


def _merge_or_refuse(claim: Claim, target: Flag) -> Flag:
    """Drop the claimed flag when the flag already at ``target`` asks for all it asks for."""
    try:
        ours = parse_flag_text(read_flag_text(claim.flag.path), claim.flag.path)
        theirs = parse_flag_text(read_flag_text(target.path), target.path)
    except FlagError as error:
        raise FlagConflict(claim.flag.path, f"{target.path.name} exists: {error}") from None
    if not theirs.covers(ours):
        raise FlagConflict(
            claim.flag.path,
            f"cannot become {target.path.name}: that flag exists and does not list every file "
            "this one does; merge them by hand",
        )
    os.unlink(claim.flag.path)
    return target


def _record_and_move(claim: Claim, target: Flag, record: dict[str, object]) -> Flag:
    try:
        moved = _record_and_move_flag(claim, target, record)
    except ClaimLost:
        _let_go(claim.flag.path)
        raise
    _let_go(claim.flag.path)
    return moved


def _record_and_move_flag(claim: Claim, target: Flag, record: dict[str, object]) -> Flag:
    try:
        append_record(claim.flag.path, {"run_id": claim.run_id, "at": _now(), **record})
        _move(claim.flag.path, target.path)
    except FileNotFoundError:
        raise _lost(claim) from None
    except FileExistsError:
        if target.state is FlagState.QUARANTINED:
            _append_to_quarantine(claim, target)
            return target
        return _merge_or_refuse(claim, target)
    return target


def _append_to_quarantine(claim: Claim, target: Flag) -> None:
    # Quarantined flags are never claimed, so appending to one races with nobody but other
    # quarantining runs, whose appends are atomic (O_APPEND, one write each).
    data = claim.flag.path.read_bytes()
    if data and not data.endswith(b"\n"):
        data += b"\n"
    descriptor = os.open(target.path, os.O_WRONLY | os.O_APPEND)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(data)
    os.unlink(claim.flag.path)


def release(claim: Claim, reason: str = "released") -> Flag:
    """Give a claimed flag back to the pool, unchanged but for a history line; return it.

    Raises ClaimLost if the claim is gone and FlagConflict if a different flag now holds the
    name to return to.
    """
    return _record_and_move(claim, claim.source, {"event": "released", "reason": reason})


def give_back(
    claims: Iterable[Claim],
    reason: str,
    log: logging.Logger | logging.LoggerAdapter | None = None,
) -> None:
    """Release every claim with ``reason``, as a run that stops before settling them must.

    A claim that cannot be given back (`ClaimLost`, `FlagConflict`) is logged as a warning on
    ``log`` (this module's logger by default), and the others are still given back.
    """
    for claim in claims:
        try:
            release(claim, reason)
        except FlagError as exc:
            (log or _log).warning("%s: claim not given back: %s", claim.flag.path, exc)


def complete(claim: Claim, keep_done_marker: bool = False) -> Path | None:
    """End a successful claim: remove the flag, or rename it to ``<flag>.done`` and return that.

    Raises ClaimLost if the claim is gone.
    """
    if not keep_done_marker:
        try:
            os.unlink(claim.flag.path)
        except FileNotFoundError:
            raise _lost(claim) from None
        finally:
            _let_go(claim.flag.path)
        return None
    done = claim.flag.moved(FlagState.DONE, 0)
    try:
        append_record(claim.flag.path, {"event": "done", "run_id": claim.run_id, "at": _now()})
        os.replace(claim.flag.path, done.path)  # an older done marker carries no information
    except FileNotFoundError:
        raise _lost(claim) from None
    finally:
        _let_go(claim.flag.path)
    return done.path


def fail(claim: Claim, reason: str, max_attempts: int = 3) -> Flag:
    """End a failed claim: the flag becomes ``<flag>.failed-<n>`` (claimable again) or, on the
    ``max_attempts``-th failure, ``<flag>.quarantined``; return it.

    The reason and the run are appended to the flag, whose file list is kept.  Raises ClaimLost
    if the claim is gone and FlagConflict if a different flag already holds the failed name.
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    attempt = claim.flag.attempt + 1
    if attempt >= max_attempts:
        target = claim.flag.moved(FlagState.QUARANTINED, 0)
    else:
        target = claim.flag.moved(FlagState.FAILED, attempt)
    record = {"event": "failed", "attempt": attempt, "reason": str(reason)}
    return _record_and_move(claim, target, record)


def reap_stale_claims(
    root: str | os.PathLike[str],
    is_running: Callable[[str], bool],
    names: Collection[str] = DEFAULT_NAMES,
    on_error: ErrorHandler | None = log_flag_error,
) -> list[Flag]:
    """Return to the pool every claim under ``root`` whose run is no longer running.

    A claim whose holding process is gone (its lock is free) is taken back at once; for the
    others ``is_running(run_id)`` is asked once per run id; an exception from it propagates, so
    no claim is taken back on a guess.  Claims that another reaper takes back first are skipped;
    claims that cannot go back (FlagConflict) go to ``on_error``.  Returns the released flags.
    """
    running: dict[str, bool] = {}
    released = []
    for flag in list(find_flags(root, names, {FlagState.CLAIMED}, on_error)):
        assert flag.run_id is not None
        dead_lock = _lock_of_dead_holder(flag.path)
        try:
            if dead_lock is not None:
                reason = f"the process of run {flag.run_id} is gone"
            else:
                if flag.run_id not in running:
                    running[flag.run_id] = bool(is_running(flag.run_id))
                if running[flag.run_id]:
                    continue
                reason = f"run {flag.run_id} is not running"
            released.append(release(claim_of(flag), reason=reason))
        except ClaimLost:
            continue
        except FlagError as error:
            if on_error is not None:
                on_error(error)
        finally:
            if dead_lock is not None:
                os.close(dead_lock)
    return released
