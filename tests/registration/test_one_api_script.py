"""A lab's script written for ONE-api's RegistrationClient runs on ours with only its import
changed, and gives the records ONE-api's own client gives.

The script is written once, as text, and run in a subprocess twice, each time against a fresh
test server seeded alike: with ONE-api's import, then with ours. Its outputs (sessions,
dataset records, request bodies, animal-care records and the types returned) are compared
modulo ids, timestamps and the servers' URLs. Where we deliberately differ, the last step
shows it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from one_flows.testing.server import AlyxTestServer

from .conftest import assert_known_part

SCRIPT = textwrap.dedent(
    """
    import json
    import sys
    from pathlib import Path

    from one.api import ONE
    {import_line}

    url, user, password, cache_dir = sys.argv[1:5]
    one = ONE(base_url=url, username=user, password=password, cache_dir=cache_dir, silent=True,
              cache_rest=None)
    client = RegistrationClient(one)
    out = {{}}

    session_path, eid = client.create_new_session("algernon", date="2026-01-03")
    out["create_new_session"] = [
        session_path.relative_to(cache_dir).as_posix(),
        isinstance(session_path, Path),
        type(eid).__name__,
    ]
    files = {{
        "alf/_ibl_trials.table.pqt": b"trials" * 100,
        "alf/probe00/spikes.times.npy": b"times" * 300,
        "alf/probe01/spikes.times.npy": b"times1" * 300,
        "raw_behavior_data/_iblrig_taskData.raw.jsonable": b"{{}}\\n" * 20,
        "raw_ephys_data/_spikeglx_sync.times.probe00.npy": b"sync" * 10,
        "notes.txt": b"not ALF",
    }}
    for rel, data in files.items():
        (session_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (session_path / rel).write_bytes(data)

    ses, recs = client.register_session(
        session_path,
        n_trials=10,
        task_protocol="choiceWorld",
        end_time="2026-01-03T11:00:00",
        projects=["ibl_neuropixel_brainwide_01"],
    )
    out["register_session"] = [ses, recs, str(eid) == ses["id"]]
    out["first_record"] = client.register_session(session_path, file_list=False)[0]["n_trials"]

    later = session_path / "alf/probe00/spikes.clusters.npy"
    later.write_bytes(b"clusters" * 50)
    out["register_one_file"] = client.register_files(later)
    other = session_path / "alf/probe01/spikes.clusters.npy"
    other.write_bytes(b"c" * 50)
    out["register_files"] = client.register_files([other, session_path / "notes.txt"])
    out["dry"] = client.register_files([other], dry=True)
    out["dry_one"] = client.register_files(other, dry=True)
    out["register_session_no_files"] = list(
        client.register_session(session_path, file_list=False, n_trials=12)
    )
    out["weight"] = client.register_weight("algernon", 21.5, date_time="2026-01-03T09:00:00")
    out["water"] = client.register_water_administration(
        "algernon", 0.5, session=eid, date_time="2026-01-03T10:00:00"
    )
    out["again"] = list(client.register_session(session_path))
    json.dump(out, sys.stdout, default=str)
    """
)
ONE_API_IMPORT = "from one.registration import RegistrationClient"
OUR_IMPORT = "from one_flows.registration import RegistrationClient"

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TIMESTAMPS = ("auto_datetime", "created_datetime")


def _run(import_line: str, tmp_path: Path) -> dict:
    """Run the script with ``import_line`` against a fresh test server; its output, with the
    server's URL, ids and timestamps replaced by placeholders."""
    with AlyxTestServer() as server:
        cache = tmp_path / import_line.split()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                SCRIPT.format(import_line=import_line),
                server.url,
                server.username,
                server.password,
                str(cache),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return _placeholders(json.loads(done.stdout), server.url)


def _placeholders(value, url: str):
    if isinstance(value, dict):
        return {
            k: "<time>" if k in _TIMESTAMPS else _placeholders(v, url) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_placeholders(v, url) for v in value]
    if isinstance(value, str):
        return _UUID.sub("<id>", value.replace(url, "<alyx>"))
    return value


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> tuple[dict, dict]:
    """(ONE-api's, ours): the script's output with each import."""
    tmp = tmp_path_factory.mktemp("script")
    return _run(ONE_API_IMPORT, tmp), _run(OUR_IMPORT, tmp)


STEPS = [
    "create_new_session",
    "register_session",
    "first_record",
    "register_one_file",
    "register_files",
    "dry",
    "dry_one",
    "register_session_no_files",
    "weight",
    "water",
]


@pytest.mark.parametrize("step", STEPS)
def test_script_gives_one_apis_records(outputs, step):
    theirs, ours = outputs
    assert ours[step] == theirs[step]


def test_script_steps_return_one_apis_shapes(outputs):
    """The comparison is not vacuous: the steps returned what ONE-api documents."""
    theirs, _ = outputs
    assert theirs["create_new_session"] == ["algernon/2026-01-03/001", True, "UUID"]
    session, records, same_eid = theirs["register_session"]
    assert same_eid and session["n_trials"] == 10 and session["users"] == ["test_user"]
    assert session["data_dataset_session_related"] == records
    assert sorted(r["name"] for r in records) == [
        "_ibl_trials.table.pqt",
        "_iblrig_taskData.raw.jsonable",
        "_spikeglx_sync.times.probe00.npy",
        "spikes.times.npy",
        "spikes.times.npy",
    ]
    assert theirs["first_record"] == 10
    assert theirs["register_one_file"]["name"] == "spikes.clusters.npy"
    assert [r and r["collection"] for r in theirs["register_files"]] == ["alf/probe01", None]
    assert theirs["dry"] == [theirs["dry_one"]]
    assert theirs["register_session_no_files"][0]["n_trials"] == 12
    assert theirs["register_session_no_files"][1] is None


def test_deliberate_difference_files_registered_as_they_are_are_not_sent_again(outputs):
    """Registering the same folder again: ONE-api sends every file again and returns the
    server's records; ours sends none (they are unchanged) and returns what it knows of each
    dataset: a subset of the keys of ONE-api's records, with the same values."""
    theirs, ours = outputs
    (their_session, their_records), (our_session, our_records) = theirs["again"], ours["again"]
    assert our_session.pop("data_dataset_session_related") == our_records
    assert their_session.pop("data_dataset_session_related") == their_records
    assert our_session == their_session
    assert len(our_records) == len(their_records) == 7
    by_path = {(r["collection"], r["name"]): r for r in their_records}
    for record in our_records:
        assert_known_part(record, by_path[record["collection"], record["name"]])
