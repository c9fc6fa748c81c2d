"""One symbolic-link policy: the cache build, registration, the flag scan and the watcher see one
tree the same way (`one_flows.walk`).

Links to folders are never followed, wherever they lead; a link to a file is read only when it
resolves inside its session folder, and otherwise skipped with the reason; hidden folders are
not data.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from one_flows.cache import load_tables, make_parquet_db
from one_flows.flags import FlagWatcher, find_flags
from one_flows.registration import RegistrationClient
from one_flows.targets import LocalTarget
from one_flows.walk import BROKEN_LINK, LINK_LEAVES_SESSION, LINK_LOOP

A = "lab/Subjects/S/2026-01-05/001"
B = "S/2026-01-06/001"

SESSIONS = {A, B}
FILES = {
    (A, "alf/spikes.times.npy"),
    (A, "alf/spikes.amps.npy"),  # a link to a file of the session
    (A, "alf/probe00/spikes.depths.npy"),
    (B, "alf/spikes.times.npy"),
}
SKIPPED = {
    (A, "alf/spikes.secret.npy"): LINK_LEAVES_SESSION,
    (A, "alf/spikes.gone.npy"): BROKEN_LINK,
    (A, "alf/spikes.loop.npy"): LINK_LOOP,
}


def _session(folder: Path, *files: str) -> Path:
    for rel_path in files:
        (folder / rel_path).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel_path).write_bytes(rel_path.encode())
    (folder / "create_me.flag").touch()
    return folder


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A data root whose two sessions hold every kind of link, with more sessions behind links
    and in a hidden folder, which no walker may see."""
    root, outside = tmp_path / "data", tmp_path / "outside"
    (outside / "secret.npy").parent.mkdir(parents=True)
    (outside / "secret.npy").write_bytes(b"not the session's")
    _session(outside / "probe", "spikes.times.npy")
    a = _session(root / A, "alf/spikes.times.npy", "alf/probe00/spikes.depths.npy")
    alf = a / "alf"
    (alf / "spikes.amps.npy").symlink_to("spikes.times.npy")
    (alf / "spikes.secret.npy").symlink_to(outside / "secret.npy")
    (alf / "spikes.gone.npy").symlink_to("nowhere.npy")
    (alf / "spikes.loop.npy").symlink_to("spikes.loop.npy")
    (alf / "probe01").symlink_to("probe00", target_is_directory=True)
    (alf / "probe02").symlink_to(outside / "probe", target_is_directory=True)
    (a / "raw").symlink_to(root, target_is_directory=True)  # a loop through the root
    _session(root / B, "alf/spikes.times.npy", "alf/.partial/spikes.times.npy")
    # Sessions that are there only through a link, or in a hidden folder
    (root / "lab/Subjects/S/2026-01-05/002").symlink_to(a, target_is_directory=True)
    _session(outside / "T/2026-01-07/001", "alf/spikes.times.npy")
    (root / "T").symlink_to(outside / "T", target_is_directory=True)
    _session(root / ".snapshot/S/2026-01-08/001", "alf/spikes.times.npy")
    return root


View = tuple[set[str], set[tuple[str, str]] | None, dict[tuple[str, str], str] | None]


def _rel(root: Path, session: str | Path) -> str:
    return Path(session).relative_to(root).as_posix()


def _cache(root: Path, tmp_path: Path) -> View:
    tables = tmp_path / "tables"
    tables.mkdir()
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        make_parquet_db(root, tables)
    loaded = load_tables(tables)
    folders = {
        eid: "/".join(filter(None, [r.lab and f"{r.lab}/Subjects", r.subject, str(r.date)]))
        + f"/{r.number:03d}"
        for eid, r in loaded.sessions.iterrows()
    }
    files = {(folders[eid], rel_path) for (eid, _), rel_path in loaded.datasets.rel_path.items()}
    skipped = {}
    for warning in warned:
        if found := re.fullmatch(r"Skipping (\S+): (.+)", str(warning.message)):
            path = Path(found[1]).relative_to(root)
            session = "/".join(path.parts[:5] if path.parts[1] == "Subjects" else path.parts[:3])
            skipped[session, Path(found[1]).relative_to(root / session).as_posix()] = found[2]
    return set(folders.values()), files, skipped


def _registration(root: Path, tmp_path: Path) -> View:
    client = RegistrationClient(LocalTarget(tmp_path / "tables"), ledger=False, digest_cache=False)
    with closing(client):
        sessions, _ = client.create_sessions(root, dry=True)
        files, skipped = set(), {}
        for session in sessions:
            found = client.find_files(session)
            files |= {(_rel(root, session), p.relative_to(session).as_posix()) for p in found}
            skipped |= {(_rel(root, session), f.rel_path): f.reason for f in found.skipped}
    return {_rel(root, s) for s in sessions}, files, skipped


def _flag_scan(root: Path, tmp_path: Path) -> View:
    return {_rel(root, f.session_path) for f in find_flags(root)}, None, None


def _watcher(root: Path, tmp_path: Path) -> View:
    return {_rel(root, s) for s in FlagWatcher(root, quiet_seconds=0).poll()}, None, None


@pytest.mark.parametrize("view", [_cache, _registration, _flag_scan, _watcher])
def test_every_walker_sees_the_tree_the_same_way(
    tree: Path, tmp_path: Path, view: Callable[[Path, Path], View]
) -> None:
    sessions, files, skipped = view(tree, tmp_path)
    assert sessions == SESSIONS
    if files is not None:
        assert files == FILES
        assert skipped == SKIPPED
