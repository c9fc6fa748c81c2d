"""Where to register a file whose dataset is protected: ONE-api's new-revision rules.

Alyx refuses to overwrite a protected dataset. ONE-api then moves the file into a revision
folder that is not protected and registers it there; these rules reproduce its choice, with one
fix: a revision folder that is itself protected is never chosen (ONE-api may pick today's
revision although it is protected, and fail).
"""

from __future__ import annotations

import datetime
from collections.abc import Collection

from one_flows.alf import rel_path_parts

__all__ = ["next_revision", "unprotected_rel_path"]


def next_revision(revision: str, reserved: Collection[str] = (), alpha: str = "a") -> str:
    """The first of ``revision + alpha``, ``revision + next letter``, ... not in ``reserved``.

    >>> next_revision('2020-01-01', ['2020-01-01a'])
    '2020-01-01b'
    """
    if len(alpha) != 1:
        raise ValueError(f"alpha must be one character, not {alpha!r}")
    code = ord(alpha)
    while (candidate := revision + chr(code)) in reserved:
        code += 1
    return candidate


def _is_dated(revision: str) -> bool:
    try:
        datetime.date.fromisoformat(revision[:10])
    except ValueError:
        return False
    return True


def unprotected_rel_path(
    rel_path: str, revisions: list[tuple[str, bool]], today: datetime.date | None = None
) -> str:
    """The session-relative path to register a file under, given the target's revisions of it.

    ``revisions`` are (revision name, protected) pairs, latest first, ``""`` for no revision.
    Returns ``rel_path`` itself when nothing stands in the way.
    """
    if not revisions:
        return rel_path
    collection, file_revision, *_ = rel_path_parts(rel_path)
    name = rel_path.rpartition("/")[2]
    protected = {rev for rev, is_protected in revisions if is_protected}
    today_revision = (today or datetime.date.today()).isoformat()
    if file_revision:
        if file_revision not in protected:
            return rel_path
        revision = next_revision(file_revision, protected)
    else:
        latest, latest_protected = revisions[0]
        if not latest_protected:
            if latest == "":
                return rel_path
            revision = latest if _is_dated(latest) else today_revision
        elif today_revision in latest:
            alpha = "a" if latest == today_revision else latest[-1]
            revision = next_revision(today_revision, protected, alpha)
        else:
            revision = today_revision
        if revision in protected:
            revision = next_revision(revision, protected)
    return "/".join(filter(None, [collection, f"#{revision}#", name]))
