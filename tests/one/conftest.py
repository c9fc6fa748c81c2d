"""A realistic tree of ALF sessions, as an acquisition rig and a spike sorter would leave it."""

import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

N_TRIALS = 7
N_SPIKES = 11


def _npy(data):
    return lambda path: np.save(path, np.asarray(data))


def _json(data):
    return lambda path: path.write_text(json.dumps(data))


def _text(text):
    return lambda path: path.write_text(text)


def _pqt(frame):
    return lambda path: frame.to_parquet(path)


rng = np.random.default_rng(0)
TRIALS = pd.DataFrame(
    {
        "intervals_0": np.arange(N_TRIALS, dtype=float),
        "intervals_1": np.arange(N_TRIALS, dtype=float) + 0.5,
        "choice": rng.choice([-1, 1], N_TRIALS).astype(float),
        "feedbackType": rng.choice([-1, 1], N_TRIALS).astype(float),
    }
)

ZM = "mainenlab/Subjects/ZM_1085/2019-02-12/001"
CSHL = "churchlandlab/Subjects/CSHL049/2020-01-08/001"
KS = "KS005/2019-04-01/001"

FILES = {
    # A lab/Subjects session with nested probe collections and a revision
    f"{ZM}/alf/_ibl_trials.intervals.npy": _npy(
        np.c_[np.arange(N_TRIALS), np.arange(N_TRIALS) + 1]
    ),
    f"{ZM}/alf/_ibl_trials.choice.npy": _npy(rng.choice([-1, 1], N_TRIALS)),
    f"{ZM}/alf/_ibl_trials.rewardVolume.npy": _npy(np.full(N_TRIALS, 1.5)),
    f"{ZM}/alf/_ibl_trials.intervals_bpod.npy": _npy(np.ones((N_TRIALS, 2))),
    f"{ZM}/alf/_ibl_trials.stimOn_times.npy": _npy(np.arange(N_TRIALS) * 2.0),
    f"{ZM}/alf/_ibl_wheel.position.npy": _npy(np.linspace(0, 1, 5)),
    f"{ZM}/alf/_ibl_wheel.timestamps.npy": _npy([[0, 0.0], [4, 8.0]]),
    f"{ZM}/alf/_ibl_leftCamera.times.npy": _npy(np.arange(3.0)),
    f"{ZM}/alf/probe00/spikes.times.npy": _npy(np.arange(N_SPIKES) / 10),
    f"{ZM}/alf/probe00/spikes.clusters.npy": _npy(np.arange(N_SPIKES) % 3),
    f"{ZM}/alf/probe00/#2024-01-01#/spikes.times.npy": _npy(np.arange(N_SPIKES) / 20),
    f"{ZM}/alf/probe00/clusters.depths.npy": _npy([10.0, 20.0, 30.0]),
    f"{ZM}/alf/probe00/pykilosort/spikes.times.npy": _npy(np.arange(N_SPIKES) / 30),
    f"{ZM}/alf/probe00/pykilosort/spikes.clusters.npy": _npy(np.zeros(N_SPIKES)),
    f"{ZM}/alf/probe01/clusters.depths.npy": _npy([5.0, 15.0]),
    f"{ZM}/alf/probe01/clusters.channels.npy": _npy([1, 2]),
    f"{ZM}/raw_behavior_data/_iblrig_taskSettings.raw.json": _json({"PYBPOD_PROTOCOL": "x"}),
    f"{ZM}/raw_ephys_data/_spikeglx_sync.times.probe00.npy": _npy(np.arange(4.0)),
    f"{ZM}/notes.txt": _text("not an ALF file"),
    "mainenlab/Subjects/ZM_1085/2019-02-13/001/alf/_ibl_trials.choice.npy": _npy([1, -1]),
    "mainenlab/Subjects/ZM_1085/2019-02-13/002/alf/_ibl_wheel.position.npy": _npy([0.0, 1.0]),
    "mainenlab/Subjects/ZM_1086/2019-02-13/001/alf/_ibl_trials.choice.npy": _npy([1]),
    # A session whose trials are one table, revised once, plus text formats
    f"{CSHL}/alf/_ibl_trials.table.pqt": _pqt(TRIALS),
    f"{CSHL}/alf/#2023-05-01#/_ibl_trials.table.pqt": _pqt(TRIALS * 2),
    f"{CSHL}/alf/_ibl_trials.goCue_times.npy": _npy(np.arange(N_TRIALS) + 0.1),
    f"{CSHL}/alf/_ibl_passivePeriods.intervalsTable.csv": _text("start,stop\n0,1\n2,3\n"),
    f"{CSHL}/alf/licks.times.ssv": _text("t\n0.5\n1.5\n"),
    f"{CSHL}/alf/probes.description.json": _json([{"label": "probe00"}]),
    f"{CSHL}/alf/_ibl_trials.stimOn_times_bpod.npy": _npy(np.arange(N_TRIALS) + 0.2),
    # Subject/date/number sessions without a lab folder
    f"{KS}/alf/_ibl_trials.choice.npy": _npy([1, 1, -1]),
    f"{KS}/alf/#2020-06-01#/_ibl_trials.choice.npy": _npy([2, 2, -2]),
    f"{KS}/alf/#2021-01-01#/_ibl_trials.choice.npy": _npy([3, 3, -3]),
    f"{KS}/alf/_ibl_wheel.position.npy": _npy(np.arange(4.0)),
    f"{KS}/alf/_ibl_wheel.timestamps.npy": _npy(np.arange(4.0) / 10),
    f"{KS}/alf/_ibl_wheel.position.metadata.json": _json({"units": "rad"}),
    "KS005/2019-04-02/001/alf/_ibl_trials.choice.npy": _npy([1]),
    "KS006/2019-04-01/001/alf/_ibl_trials.choice.npy": _npy([-1]),
    "KS006/2019-04-01/001/alf/_ibl_trials.feedbackType.npy": _npy([1]),
}


def build_tree(root: Path) -> Path:
    """Write the ALF tree under ``root`` and return ``root``."""
    for rel, write in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path)
    return root


SESSIONS = {"ZM": ZM, "CSHL": CSHL, "KS": KS}


@pytest.fixture(scope="session")
def tree_builder():
    """The function writing the ALF tree under a folder."""
    return build_tree


@pytest.fixture(scope="session")
def sessions() -> dict[str, str]:
    """Relative paths of the tree's main sessions, by short name (ZM, CSHL, KS)."""
    return SESSIONS


@pytest.fixture
def alf_tree(tmp_path: Path) -> Path:
    """A fresh copy of the tree, for tests that modify it."""
    return build_tree(tmp_path / "data")


def age(root: Path) -> None:
    """Date every file and folder an hour back, as data written before the last scan is."""
    when = time.time() - 3600
    for folder, _, files in os.walk(root):
        for name in files:
            os.utime(os.path.join(folder, name), (when, when))
        os.utime(folder, (when, when))


def as_written_by_uuid5_versions(root: Path) -> dict[str, str]:
    """Turn the tables and scan state that one-flows wrote in ``root`` into what its earlier
    versions wrote: ids by the old rule (uuid5s of the same names in the same namespace), and
    the state files beside the tables. Returns {uuid3 id: uuid5 id}."""
    import hashlib
    import json
    import shutil
    import uuid

    import pyarrow as pa
    import pyarrow.parquet as pq

    from one_flows import cache
    from one_flows._parquet_append import footer
    from one_flows.walk import SessionKey

    def old_id(name: str) -> str:
        return str(uuid.uuid5(cache.ids.ID_NAMESPACE, name))

    def renamed(table: pa.Table, column: str, ids: dict[str, str]) -> pa.Table:
        i = table.schema.get_field_index(column)
        values = [ids[v] for v in table.column(column).to_pylist()]
        return table.set_column(i, table.schema.field(i), pa.array(values, table.field(i).type))

    sessions = pq.read_table(root / "sessions.pqt")
    datasets = pq.read_table(root / "datasets.pqt")
    rows = sessions.select(["id", "lab", "subject", "date", "number"]).to_pylist()
    keys = {
        r["id"]: SessionKey.of(r["subject"], r["date"], r["number"], r["lab"]).canonical
        for r in rows
    }
    ids = {eid: old_id(key) for eid, key in keys.items()}
    for r in datasets.select(["eid", "id", "rel_path"]).to_pylist():
        ids[r["id"]] = old_id(f"{keys[r['eid']]}/{r['rel_path']}")
    pq.write_table(renamed(sessions, "id", ids), root / "sessions.pqt")
    pq.write_table(renamed(renamed(datasets, "eid", ids), "id", ids), root / "datasets.pqt")
    with open(root / "datasets.pqt", "rb") as f:
        footer_md5 = hashlib.md5(footer(f)[0]).hexdigest()
    for old_name, column, now in (
        ("_scan_state.parquet", "id", cache.files.STATE_FILE),
        ("_scan_dirs.parquet", "eid", cache.files.DIRS_FILE),
    ):
        state = pq.read_table(root / now)
        meta = json.loads(state.schema.metadata[b"one_metadata"])
        meta["datasets_footer_md5"] = footer_md5
        state = renamed(state, column, ids)
        state = state.replace_schema_metadata({b"one_metadata": json.dumps(meta).encode()})
        pq.write_table(state, root / old_name)
    shutil.rmtree(root / cache.files.STATE_DIR)
    return ids


# -- a lab registered on an Alyx test server, its data folder served over HTTP -----------------

REMOTE_SESSIONS = {
    "cortexlab/Subjects/algernon/2026-07-04/001": {
        "fields": {
            "task_protocol": "_iblrig_tasks_ephysChoiceWorld6.4.2",
            "projects": ["ibl_neuropixel_brainwide_01"],
        },
        "files": {
            "alf/_ibl_trials.probabilityLeft.npy": np.linspace(0.2, 0.8, N_TRIALS),
            "alf/_ibl_trials.intervals.npy": np.c_[np.arange(N_TRIALS), np.arange(N_TRIALS) + 1.0],
            "alf/probe00/spikes.times.npy": np.arange(N_SPIKES) / 10,
            "alf/probe00/spikes.clusters.npy": np.arange(N_SPIKES) % 3,
            "alf/probe00/spikes.amps.npy": np.linspace(1, 2, N_SPIKES),
            "alf/probe01/spikes.times.npy": np.arange(N_SPIKES) / 30,
            "alf/probe01/spikes.clusters.npy": np.zeros(N_SPIKES, dtype=int),
            "alf/probe01/spikes.depths.npy": np.linspace(0, 3840, 40_000),  # 320 kB
        },
        "revised": {"alf/probe00/#2026-07-05#/spikes.times.npy": np.arange(N_SPIKES) / 20},
    },
    "cortexlab/Subjects/algernon/2026-07-05/001": {
        "fields": {"task_protocol": "_iblrig_tasks_trainingChoiceWorld8.0.0"},
        "files": {
            "alf/_ibl_trials.probabilityLeft.npy": np.full(N_TRIALS, 0.5),
            "alf/probe00/spikes.times.npy": np.arange(N_SPIKES) / 40,
            "alf/probe00/spikes.clusters.npy": np.ones(N_SPIKES, dtype=int),
        },
        "revised": {},
    },
}


def write_remote_lab(root: Path) -> Path:
    """Write the sessions of REMOTE_SESSIONS under ``root`` (a lab's data folder)."""
    for rel, session in REMOTE_SESSIONS.items():
        for name, data in {**session["files"], **session["revised"]}.items():
            path = root / rel / name
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, data)
    return root


def register_remote_lab(server, root: Path, repository: str) -> dict[str, str]:
    """Register the sessions written by ``write_remote_lab`` on ``server`` with our
    RegistrationClient, their files into ``repository``; the eids by session path."""
    from one_flows.alyx import AlyxClient
    from one_flows.registration import RegistrationClient

    eids = {}
    with AlyxClient(server.url, username=server.username, password=server.password) as alyx:
        client = RegistrationClient(alyx, digest_cache=False, ledger=False)
        for rel, session in REMOTE_SESSIONS.items():
            files = [root / rel / name for name in session["files"]]
            report = client.register_session(
                root / rel, file_list=files, repository=repository, **session["fields"]
            )
            revised = [root / rel / name for name in session["revised"]]
            if revised:  # registered after the first version, so it becomes the default
                client.register_files(revised, repository=repository)
            eids[rel] = report.session["id"]
    return eids


@pytest.fixture
def remote_lab(alyx_server, tmp_path):
    """An Alyx test server on which REMOTE_SESSIONS are registered into ``flatiron_cortexlab``,
    whose ``data_url`` is the server's file service over the lab's data folder.

    Returns (server, data folder, {relative session path: eid}).
    """
    root = write_remote_lab(tmp_path / "lab-server")
    alyx_server.set_data_url(
        "flatiron_cortexlab", alyx_server.serve_files(root) + "cortexlab/Subjects/"
    )
    return alyx_server, root, register_remote_lab(alyx_server, root, "flatiron_cortexlab")


@pytest.fixture
def remote_sessions() -> dict:
    """REMOTE_SESSIONS: per session path, its fields, files and revised files (name → array)."""
    return REMOTE_SESSIONS


@pytest.fixture
def lab_registration():
    """(write_remote_lab, register_remote_lab), for tests that serve the lab's folder otherwise."""
    return write_remote_lab, register_remote_lab
