"""Fixtures of the reliability tests: a Prefect API, a data tree of N sessions × M files, and an
audit that reads back from the Alyx server what was registered and checks it against the disk.

The full-size versions of the scenarios are marked ``slow``; bounded versions run by default.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from one_flows.alyx import AlyxClient
from one_flows.flags import FlagState, find_flags
from one_flows.testing.server import AlyxTestServer

REPO = Path(__file__).resolve().parents[2]
SUBJECT = "algernon"  # seeded by the test server, in cortexlab
DATASETS = (
    "spikes.times",
    "spikes.clusters",
    "spikes.amps",
    "clusters.depths",
    "clusters.channels",
)


@pytest.fixture
def alyx_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[AlyxTestServer], AlyxTestServer]:
    """Put a test server's login in the environment, where flows given its URL find it."""

    def use(server: AlyxTestServer) -> AlyxTestServer:
        monkeypatch.setenv("ALYX_LOGIN", server.username)
        monkeypatch.setenv("ALYX_PASSWORD", server.password)
        return server

    return use


@dataclass(frozen=True)
class Tree:
    """A data root of flagged sessions of `SUBJECT`, each with the same dataset names."""

    root: Path
    sessions: tuple[Path, ...]
    files_per_session: int

    def files(self, session: Path) -> dict[str, Path]:
        """The session's data files by path relative to the session folder."""
        return {
            p.relative_to(session).as_posix(): p
            for p in session.rglob("*.npy")
            if not p.name.startswith(".")
        }

    def flags(self, *states: FlagState) -> list:
        """The flags left under the root (every state when none is given)."""
        return list(find_flags(self.root, states=set(states or FlagState), on_error=None))


def make_tree(root: Path, n_sessions: int, n_files: int) -> Tree:
    """``n_sessions`` flagged sessions of ``n_files`` distinct datasets each, distinct contents."""
    sessions = []
    for i in range(n_sessions):
        session = root / "cortexlab" / "Subjects" / SUBJECT / f"2026-03-{1 + i // 3:02d}"
        session = session / f"{1 + i % 3:03d}"
        for j in range(n_files):
            name = f"{DATASETS[j % len(DATASETS)]}.npy"
            path = session / "alf" / f"probe{j // len(DATASETS):02d}" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f"session {i} file {j}\n".encode() * (1 + j))
        (session / "create_me.flag").touch()
        sessions.append(session)
    return Tree(root, tuple(sessions), n_files)


@pytest.fixture
def tree_factory(tmp_path: Path) -> Callable[[int, int], Tree]:
    """Makes a `Tree` of N sessions × M files under a fresh data root."""
    return lambda n_sessions, n_files: make_tree(tmp_path / "data", n_sessions, n_files)


@dataclass
class Audit:
    """What the server holds for a tree, read back through its REST API."""

    session_records: Counter[str]
    dataset_records: Counter[tuple[str, str]]
    wrong_hashes: list[str]
    missing: list[str]

    def assert_exact(self) -> None:
        """One session record per session, one dataset per file, every hash and size right."""
        assert self.missing == []
        assert self.wrong_hashes == []
        duplicated = {k: n for k, n in self.session_records.items() if n != 1}
        assert duplicated == {}, f"session records per session: {duplicated}"
        repeated = {k: n for k, n in self.dataset_records.items() if n != 1}
        assert repeated == {}, f"dataset records per file: {repeated}"


def audit(server: AlyxTestServer, tree: Tree) -> Audit:
    """Read every session and dataset of `SUBJECT` from the server and compare with the disk."""
    with AlyxClient(server.url, username=server.username, password=server.password) as client:
        records = client.list_all("/sessions", {"subject": SUBJECT})
        by_key: dict[str, list[dict]] = {}
        for r in records:
            by_key.setdefault(f"{r['start_time'][:10]}/{int(r['number']):03d}", []).append(r)
        sessions: Counter[str] = Counter()
        datasets: Counter[tuple[str, str]] = Counter()
        wrong, missing = [], []
        for session in tree.sessions:
            key = f"{session.parent.name}/{session.name}"
            found = by_key.get(key, [])
            sessions[key] = len(found)
            held = [d for r in found for d in client.list_all("/datasets", {"session": r["id"]})]
            for d in held:
                datasets[(key, f"{d['collection']}/{d['name']}")] += 1
            by_path = {f"{d['collection']}/{d['name']}": d for d in held}
            for rel, path in tree.files(session).items():
                record = by_path.get(rel)
                if record is None:
                    missing.append(f"{key}/{rel}")
                    continue
                data = path.read_bytes()
                if record["hash"] != hashlib.md5(data).hexdigest() or record["file_size"] != len(
                    data
                ):
                    wrong.append(f"{key}/{rel}")
    return Audit(sessions, datasets, wrong, missing)


@pytest.fixture
def audit_server() -> Callable[[AlyxTestServer, Tree], Audit]:
    """`audit` as a fixture, for the test modules of this folder."""
    return audit
