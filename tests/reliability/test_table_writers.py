"""Many writers of one folder of ONE cache tables at once: processes registering disjoint and
overlapping trees (each with several threads) and a ``one-flows cache`` run of the folder. Every
session and dataset is there exactly once afterwards, with the fields its registration gave it,
and ONE-api reads the tables.

Bounded here; ``-m slow`` adds more and larger writers, and real ``one-flows register`` runs of
flagged trees beside them, as in issue 13.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from one.api import One

from one_flows.alf import is_valid
from one_flows.cache import load_tables
from one_flows.flags import is_flag_file
from one_flows.walk import SessionKey

from .conftest import REPO

REGISTER = """
import sys
from one_flows.registration import Outcome, RegistrationClient
from one_flows.targets import LocalTarget

tables, protocol, threads, *sessions = sys.argv[1:]
client = RegistrationClient(
    LocalTarget(tables), digest_cache=False, ledger=False, max_workers=int(threads)
)
reports = client.register_sessions(sessions, task_protocol=protocol)
client.close()
bad = [r for r in reports if r.error is not None or r.counts.get(Outcome.FAILED)]
sys.exit(f"not registered: {[r.summary() for r in bad]}" if bad else 0)
"""


def _tree(root: Path, group: int, n_sessions: int, n_files: int) -> list[Path]:
    """Sessions of a subject of their own under ``root/group<group>``, ``n_files`` files each."""
    sessions = []
    for i in range(n_sessions):
        session = root / f"group{group}" / "cortexlab" / "Subjects" / f"mouse{group}"
        session = session / f"2026-04-{1 + i // 3:02d}" / f"{1 + i % 3:03d}"
        for j in range(n_files):
            collection = session / "alf" / f"probe{j // 4:02d}"
            collection.mkdir(parents=True, exist_ok=True)
            np.save(collection / f"spikes.attr{j % 4}.npy", np.arange(group * 100 + i + j))
        sessions.append(session)
    return sessions


def _env(tmp_path: Path, name: str) -> dict[str, str]:
    home = tmp_path / "homes" / name
    home.mkdir(parents=True)
    return os.environ | {"HOME": str(home), "PREFECT_HOME": str(home / ".prefect")}


def _writers_at_once(
    tmp_path: Path, root: Path, groups: list[list[Path]], threads: int, extra: list[list[str]]
) -> None:
    """Process p registers groups p and p+1 (with ``threads`` threads) with task protocol
    ``p<p>``; a ``one-flows cache`` run of ``root`` and the ``extra`` commands run meanwhile."""
    commands = []
    for p in range(len(groups)):
        sessions = groups[p] + groups[(p + 1) % len(groups)]
        commands.append(
            [sys.executable, "-c", REGISTER, str(root), f"p{p}", str(threads), *map(str, sessions)]
        )
    one_flows = str(Path(sys.executable).with_name("one-flows"))
    commands += [[one_flows, "cache", str(root)], *extra]
    running = [
        subprocess.Popen(
            command,
            cwd=REPO,
            env=_env(tmp_path, str(i)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i, command in enumerate(commands)
    ]
    for process, command in zip(running, commands, strict=True):
        out, _ = process.communicate(timeout=1800)
        assert process.returncode == 0, f"{command[:3]}...: {out[-3000:]}"


def _key(session: Path) -> str:
    lab, _, subject, date, number = session.parts[-5:]
    return SessionKey.of(subject, date, number, lab).canonical


def _assert_exactly_once(root: Path, sessions: list[Path], registered: list[Path]) -> None:
    """The tables hold ``sessions``, each once, and each of their ALF files once with its md5;
    the ``registered`` ones have the task protocol of one of their registrations; ONE-api
    reads the tables."""
    tables = load_tables(root)
    assert tables.sessions.index.is_unique and tables.datasets.index.is_unique
    keys = {
        SessionKey.of(r["subject"], r["date"], r["number"], r["lab"]).canonical: eid
        for eid, r in tables.sessions.iterrows()
    }
    by_key = {_key(s): s for s in sessions}
    assert sorted(keys) == sorted(by_key)
    one = One(cache_dir=root, mode="local")
    assert sorted(map(str, one.search())) == sorted(keys.values())
    for key, session in by_key.items():
        eid = keys[key]
        files = {
            p.relative_to(session).as_posix(): p
            for p in session.rglob("*")
            if p.is_file() and is_valid(p.name) and not is_flag_file(p.name)
        }
        rows = tables.datasets.xs(eid, level="eid")
        assert sorted(rows["rel_path"]) == sorted(files), key
        for rel_path, md5 in zip(rows["rel_path"], rows["hash"], strict=True):
            assert md5 == hashlib.md5(files[rel_path].read_bytes()).hexdigest(), rel_path
        assert sorted(one.list_datasets(eid)) == sorted(files)
    for session in registered:
        assert tables.sessions.loc[keys[_key(session)], "task_protocol"].startswith("p")


def test_processes_threads_and_a_cache_run_writing_one_folder_lose_nothing(tmp_path):
    root = tmp_path / "data"
    groups = [_tree(root, g, 5, 3) for g in range(3)]
    _writers_at_once(tmp_path, root, groups, threads=2, extra=[])
    sessions = [s for group in groups for s in group]
    _assert_exactly_once(root, sessions, sessions)


def _flagged_sample(root: Path, seed: int) -> Path:
    """A `one-flows sample` tree, its labs renamed so that no two trees share a session."""
    from one_flows.sample import make_sample_tree

    tree = make_sample_tree(root / f"sample{seed}", sessions_per_subject=8, seed=seed)
    for lab in [p for p in tree.root.iterdir() if p.is_dir()]:
        lab.rename(lab.with_name(f"{lab.name}{seed}"))
    return tree.root


@pytest.mark.slow
def test_many_writers_and_one_flows_register_runs_lose_nothing(tmp_path):
    root = tmp_path / "data"
    groups = [_tree(root, g, 20, 8) for g in range(6)]
    samples = [_flagged_sample(root, seed) for seed in (1, 2)]
    flagged = sorted(p.parent for sample in samples for p in sample.rglob("create_me.flag"))
    one_flows = str(Path(sys.executable).with_name("one-flows"))
    extra = [[one_flows, "register", str(sample), "--cache-dir", str(root)] for sample in samples]
    _writers_at_once(tmp_path, root, groups, threads=3, extra=extra)
    assert list(root.rglob("create_me.flag*")) == []
    registered = [s for group in groups for s in group]
    _assert_exactly_once(root, registered + flagged, registered)
