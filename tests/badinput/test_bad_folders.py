"""A bad file harms only itself, a bad folder only its session (issue #13.3).

A folder inside a session that cannot be listed (no permission, a path longer than PATH_MAX) fails
that session, naming the folder and the reason; the scan and the other sessions go on. Symbolic
link loops and file names that are not valid UTF-8 are skipped with the reason, the other files
registered and the session completed, on every run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from one_flows.flags import FlagState, find_flags
from one_flows.prefect.register import register_new_sessions
from one_flows.registration import (
    LINK_LOOP,
    NOT_UTF8,
    Outcome,
    RegistrationClient,
    SessionFolderUnreadable,
)
from one_flows.targets import LocalTarget

GOOD = {"alf/spikes.times.npy": b"times", "alf/spikes.amps.npy": b"amps"}
NOBODY = 65534


def _session(root: Path, number: int, files: dict[str, bytes] = GOOD) -> Path:
    session = root / "cortexlab" / "Subjects" / "algernon" / "2026-03-01" / f"{number:03d}"
    for rel, data in files.items():
        (session / rel).parent.mkdir(parents=True, exist_ok=True)
        (session / rel).write_bytes(data)
    (session / "create_me.flag").touch()
    return session


def _too_deep(session: Path) -> str:
    """Make folders inside ``session`` until the path is longer than PATH_MAX, with a file at
    the bottom; returns the first folder that cannot be listed by its path."""
    limit = os.pathconf(session, "PC_PATH_MAX")
    fd = os.open(session, os.O_RDONLY)
    path = str(session)
    try:
        while len(os.fsencode(path)) <= limit:
            os.mkdir("d" * 200, dir_fd=fd)
            deeper = os.open("d" * 200, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd, path = deeper, f"{path}/{'d' * 200}"
        os.close(os.open("spikes.depths.npy", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
    finally:
        os.close(fd)
    return path


def _loops_and_bad_names(session: Path) -> None:
    (session / "alf/spikes.clusters.npy").symlink_to("spikes.clusters.npy")
    (session / "alf/a.b.npy").symlink_to("b.c.npy")
    (session / "alf/b.c.npy").symlink_to("a.b.npy")
    with open(os.fsencode(session / "alf") + b"/clusters.d\xe9pths.npy", "wb") as f:
        f.write(b"latin-1")


def test_a_folder_longer_than_path_max_fails_its_session_alone_in_a_run(prefect_api, tmp_path):
    """The run goes on: the good session is registered, bad files and all; the bad one's flag is
    failed with the folder and the reason."""
    root = tmp_path / "data"
    good = _session(root, 1)
    _loops_and_bad_names(good)
    bad = _session(root, 2)
    too_long = _too_deep(bad)

    state = register_new_sessions(
        root, cache_dir=tmp_path / "tables", quiet_seconds=0, return_state=True
    )

    assert state.is_failed()  # a session failed: the run says so, and names it
    summary = state.result(raise_on_failure=False).summary
    assert str(bad) in state.message
    status = {Path(s.session_path): s for s in summary.sessions}
    assert status[good].status == "registered"
    reasons = {f.path: (f.status, f.reason) for f in status[good].files}
    assert reasons["alf/spikes.times.npy"] == ("created", None)
    assert reasons["alf/spikes.clusters.npy"] == ("skipped", LINK_LOOP)
    assert reasons["alf/a.b.npy"] == reasons["alf/b.c.npy"] == ("skipped", LINK_LOOP)
    assert [r for r in reasons.values() if r[1] and r[1].startswith(NOT_UTF8)] == [
        ("skipped", f"{NOT_UTF8}: alf/clusters.d\\xe9pths.npy")
    ]
    assert status[bad].status == "failed"
    assert too_long in status[bad].reason and "File name too long" in status[bad].reason
    flags = {f.session_path: f.state for f in find_flags(root, states=set(FlagState))}
    assert flags == {bad: FlagState.FAILED}

    # Every later run completes the good session again the same way.
    (good / "create_me.flag").touch()
    again = register_new_sessions(
        root, cache_dir=tmp_path / "tables", quiet_seconds=0, return_state=True
    )
    assert again.is_failed()
    sessions = again.result(raise_on_failure=False).summary.sessions
    assert {Path(s.session_path): s.status for s in sessions} == {
        good: "registered",
        bad: "failed",
    }


def _register_twice(session: Path, tables: Path) -> list[dict[str, str | None]]:
    """The skipped files of each of two registrations of a session, which must succeed (the
    first is recorded in the ledger, the second read back from it)."""
    skipped = []
    with closing(RegistrationClient(LocalTarget(tables))) as client:
        for _ in range(2):
            report = client.register_session(session)
            assert report.ok
            registered = report.by_status(Outcome.CREATED) + report.by_status(Outcome.UNCHANGED)
            assert sorted(f.rel_path for f in registered) == sorted(GOOD)
            skipped.append({f.path.name: f.reason for f in report.by_status(Outcome.SKIPPED)})
    return skipped


def test_symlink_loops_are_skipped_on_every_run(tmp_path):
    session = _session(tmp_path / "data", 1)
    (session / "alf/spikes.clusters.npy").symlink_to("spikes.clusters.npy")
    (session / "alf/a.b.npy").symlink_to("b.c.npy")
    (session / "alf/b.c.npy").symlink_to("a.b.npy")
    loops = dict.fromkeys(["a.b.npy", "b.c.npy", "spikes.clusters.npy"], LINK_LOOP)
    assert _register_twice(session, tmp_path / "tables") == [loops, loops]


def test_names_that_are_not_utf8_are_skipped_naming_them_escaped(tmp_path):
    session = _session(tmp_path / "data", 1)
    bad_folder = os.fsencode(session) + b"/alf/probe\xff"
    os.mkdir(bad_folder)
    for name in (b"/alf/clusters.d\xe9pths.npy", b"/alf/probe\xff/spikes.times.npy"):
        with open(os.fsencode(session) + name, "wb") as f:
            f.write(b"latin-1")
    skipped = {
        "clusters.d\udce9pths.npy": f"{NOT_UTF8}: alf/clusters.d\\xe9pths.npy",
        "spikes.times.npy": f"{NOT_UTF8}: alf/probe\\xff/spikes.times.npy",
    }
    assert _register_twice(session, tmp_path / "tables") == [skipped, skipped]


def test_a_folder_that_cannot_be_listed_fails_its_session_naming_it(tmp_path):
    session = _session(tmp_path / "data", 1)
    too_long = _too_deep(session)
    client = RegistrationClient(LocalTarget(tmp_path / "tables"))
    with closing(client), pytest.raises(SessionFolderUnreadable) as failed:
        client.register_session(session)
    assert failed.value.folder == too_long and "File name too long" in str(failed.value)


_UNPRIVILEGED_SCAN = """
import json, os, sys
from pathlib import Path
from one_flows.flags import find_flags, is_quiet
from one_flows.registration import RegistrationClient
from one_flows.targets import LocalTarget

root, warm_up, tables = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
# Registering once loads what registration imports on first use, while the interpreter's own
# files (perhaps under /root) can still be read.
RegistrationClient(LocalTarget(warm_up / "tables"), ledger=False).register_session(warm_up)
if os.geteuid() == 0:  # root reads whatever the modes say: become someone they stop
    os.setgroups([])
    os.setgid({nobody})
    os.setuid({nobody})
client = RegistrationClient(LocalTarget(tables), digest_cache=False, ledger=False)
# What the flows' find_flagged_sessions step does: flagged sessions whose files are quiet.
found = [f.session_path for f in find_flags(root) if is_quiet(f.session_path, 0)]
reports = client.register_sessions(found)
print(json.dumps({{str(r.session_path): r.summary() for r in reports}}))
"""


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A temporary folder that user nobody may enter (pytest's own is private to its user)."""
    folder = Path(tempfile.mkdtemp(prefix="one-flows-unreadable-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        for path in folder.rglob("*"):
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
        shutil.rmtree(folder)


def test_an_unreadable_folder_fails_its_session_alone(shared_tmp):
    """Mode 000 stops only a user who is not root: as root (as in CI), the scan runs in a process
    that drops to user nobody once it has imported what it needs."""
    root = shared_tmp / "data"
    good, bad = _session(root, 1), _session(root, 2)
    (bad / "raw_ephys_data").mkdir()
    (bad / "raw_ephys_data" / "_spikeglx_ephysData.raw.meta").write_bytes(b"meta")
    warm_up = _session(shared_tmp / "warm-up", 1)
    (shared_tmp / "cache" / "session-locks").mkdir(parents=True)
    if os.geteuid() == 0:
        for path in [shared_tmp, *shared_tmp.rglob("*")]:
            os.chown(path, NOBODY, NOBODY, follow_symlinks=False)
    (bad / "raw_ephys_data").chmod(0)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(_UNPRIVILEGED_SCAN.format(nobody=NOBODY)),
            str(root),
            str(warm_up),
            str(shared_tmp / "tables"),
        ],
        env={**os.environ, "ONE_FLOWS_CACHE_DIR": str(shared_tmp / "cache")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    summaries = json.loads(done.stdout)
    assert sorted(summaries) == [str(good), str(bad)]
    assert "files: 2 created" in summaries[str(good)]
    assert summaries[str(bad)] == (
        f"{bad}: failed: cannot list {bad / 'raw_ephys_data'}: Permission denied"
    )


def test_a_folder_the_cache_cannot_list_leaves_out_only_its_own_files(tmp_path):
    """`one-flows cache` indexes every session and the readable files of the bad one, warning
    of the folder it cannot list."""
    from one_flows.cache import load_tables, make_parquet_db, update_tables

    root = tmp_path / "data"
    _session(root, 1)
    bad = _session(root, 2)
    deep = _too_deep(bad)
    with pytest.warns(RuntimeWarning, match="Cannot list .*File name too long") as caught:
        make_parquet_db(root)
    assert any(deep[:100] in str(w.message) for w in caught)
    with pytest.warns(RuntimeWarning, match="Cannot list"):
        update_tables(root)

    datasets = load_tables(root).datasets
    assert sorted(datasets["rel_path"]) == sorted([*GOOD, *GOOD])
    assert len(load_tables(root).sessions) == 2
