"""ONE-api (the test oracle) works against `AlyxTestServer` as against a real Alyx: it logs in,
registers a session and files, protects nothing by mistake, and finds what it registered."""

from __future__ import annotations

from pathlib import Path

from one.api import ONE
from one.registration import RegistrationClient

from one_flows.testing import AlyxTestServer


def test_one_api_registers_and_finds_a_session_and_its_files(tmp_path: Path) -> None:
    with AlyxTestServer() as server:
        one = ONE(
            base_url=server.url,
            username=server.username,
            password=server.password,
            silent=True,
            mode="remote",
            cache_dir=tmp_path,
            cache_rest=None,
        )
        client = RegistrationClient(one)
        session_path, eid = client.create_new_session("algernon", date="2026-01-03")
        assert session_path.relative_to(tmp_path).as_posix() == "algernon/2026-01-03/001"
        files = [
            session_path / "alf" / "_ibl_trials.table.pqt",
            session_path / "alf" / "probe00" / "spikes.times.npy",
        ]
        for file in files:
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(b"0" * 16)
        records = client.register_files(files, repository="flatiron_cortexlab")
        assert [r["dataset_type"] for r in records] == ["trials.table", "spikes.times"]
        assert all(r["file_records"][0]["exists"] for r in records)

        found = one.search(subject="algernon", date_range=["2026-01-03", "2026-01-03"])
        assert [str(e) for e in found] == [str(eid)]
        assert sorted(one.list_datasets(eid)) == [
            "alf/_ibl_trials.table.pqt",
            "alf/probe00/spikes.times.npy",
        ]
        # a second registration of the same files is get-or-create: same dataset ids
        again = client.register_files(files, repository="flatiron_cortexlab")
        assert [r["id"] for r in again] == [r["id"] for r in records]
