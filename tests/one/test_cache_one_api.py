"""ONE-api's own calls on every session of tables one-flows wrote: by a build, by `LocalTarget`
registrations, and by an update converting the uuid5 tables of earlier versions.

ONE-api takes only uuid3 and uuid4 strings as eids (``one.alf.spec.is_uuid``): on tables with
uuid5 ids its ``eid2path`` raises for every session.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from one.alf.path import rel_path_parts
from one.api import One

from one_flows.cache import load_tables, make_parquet_db, update_tables
from one_flows.registration import RegistrationClient
from one_flows.targets import LocalTarget

from .conftest import as_written_by_uuid5_versions


def _session_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("**/[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]/[0-9]*"))


def _built(root: Path) -> None:
    make_parquet_db(root, hash_files=True)


def _registered(root: Path) -> None:
    client = RegistrationClient(LocalTarget(root), digest_cache=False)
    try:
        for folder in _session_folders(root):
            client.register_session(folder)
    finally:
        client.close()


def _converted(root: Path) -> None:
    make_parquet_db(root, hash_files=True)
    as_written_by_uuid5_versions(root)
    update_tables(root)


@pytest.mark.parametrize("write", [_built, _registered, _converted])
def test_one_api_calls_work_on_every_session_of_our_tables(tmp_path, tree_builder, write):
    root = tree_builder(tmp_path / "data")
    write(root)
    ours = load_tables(root)
    assert len(ours.sessions) == len(_session_folders(root)) == 8

    one = One(cache_dir=root, mode="local")
    for eid, row in ours.sessions.iterrows():
        path = one.eid2path(eid)
        lab, subject = row["lab"], row["subject"]
        rel = "/".join(filter(None, [lab, "Subjects" if lab else "", subject]))
        assert path == root / rel / str(row["date"]) / f"{row['number']:03d}"
        assert str(one.path2eid(path)) == eid
        details = one.get_details(eid)
        assert (details["subject"], details["date"], details["number"]) == (
            subject,
            row["date"],
            row["number"],
        )

        datasets = ours.datasets.xs(eid, level="eid")
        listed = one.list_datasets(eid)
        assert sorted(listed) == sorted(datasets["rel_path"])
        # Every object of every collection loads (its files outside revisions at least).
        objects: dict[tuple[str, str], set[str]] = {}
        for rel_path in datasets["rel_path"]:
            parts = rel_path_parts(rel_path, as_dict=True)
            attributes = objects.setdefault((parts["collection"], parts["object"]), set())
            if not parts["revision"] and parts["attribute"] != "table":  # a table: its columns
                attributes.add("_".join(filter(None, [parts["attribute"], parts["timescale"]])))
        for (collection, obj), attributes in objects.items():
            loaded = one.load_object(eid, obj, collection=collection)
            assert attributes <= {k.split(".")[0] for k in loaded}, (eid, collection, obj)
    # Dataset ids are ONE-api's too
    cache = one._cache.datasets.reset_index()
    assert set(map(str, cache["id"])) == set(ours.datasets.index.get_level_values("id"))
    assert pd.Index(cache["id"]).is_unique
