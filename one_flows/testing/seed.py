"""The test server's starting state (the contract's seeded database) and helpers to add to it."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from .store import Store, dumps, new_id


def load(name: str) -> list[dict[str, Any]]:
    """One of the package's seed data files (``data/<name>.json``)."""
    text = resources.files(__package__).joinpath("data", f"{name}.json").read_text("utf-8")
    return json.loads(text)


def seed(store: Store, password: str) -> None:
    """Fill an empty store with the recorded starting state; the seeded users get ``password``."""
    with store.transaction():
        for user in load("users"):
            add_user(store, user["username"], password, email=user["email"])
        for repo in load("repositories"):
            store.insert(
                "repositories",
                {
                    **repo,
                    "json": dumps(repo["json"]),
                    "globus_is_personal": repo["globus_is_personal"],
                },
            )
        for lab in load("labs"):
            add_lab(
                store,
                lab["name"],
                repositories=lab["repositories"],
                institution=lab["institution"],
                timezone=lab["timezone"],
            )
        for project in load("projects"):
            store.insert(
                "projects", {"name": project["name"], "description": project["description"]}
            )
            for username in project["users"]:
                store.insert("project_users", {"project": project["name"], "username": username})
        for location in load("locations"):
            store.insert("locations", {**location, "json": dumps(location["json"])})
        for procedure in load("procedures"):
            store.insert(
                "procedures", {**procedure, "id": new_id(), "json": dumps(procedure["json"])}
            )
        for water_type in load("water_types"):
            store.insert("water_types", {**water_type, "json": dumps(water_type["json"])})
        for data_format in load("data_formats"):
            store.insert(
                "data_formats", {**data_format, "id": new_id(), "json": dumps(data_format["json"])}
            )
        for dataset_type in load("dataset_types"):
            add_dataset_type(store, **dataset_type)
        for subject in load("subjects"):
            add_subject(store, **subject)


def add_user(store: Store, username: str, password: str, *, email: str | None = None) -> str:
    """Add a lab member; returns its id."""
    user_id = new_id()
    store.insert(
        "users",
        {
            "id": user_id,
            "username": username,
            "email": f"{username}@example.com" if email is None else email,
            "password": password,
        },
    )
    return user_id


def add_lab(
    store: Store,
    name: str,
    *,
    repositories: list[str] | tuple[str, ...] = (),
    institution: str = "",
    timezone: str = "Europe/London",
) -> None:
    """Add a lab served by the named (existing) data repositories."""
    store.insert(
        "labs",
        {
            "name": name,
            "institution": institution,
            "address": "",
            "timezone": timezone,
            "reference_weight_pct": 0.0,
            "zscore_weight_pct": 0.0,
            "json": None,
        },
    )
    for repository in repositories:
        store.insert("lab_repositories", {"lab": name, "repository": repository})


def add_repository(store: Store, name: str, data_url: str, *, globus_path: str = "") -> None:
    """Add a data repository (a file server)."""
    store.insert(
        "repositories",
        {
            "name": name,
            "timezone": "America/New_York",
            "globus_path": globus_path,
            "hostname": data_url.split("/")[2] if "://" in data_url else "",
            "data_url": data_url,
            "repository_type": "Fileserver",
            "globus_endpoint_id": None,
            "globus_is_personal": 0,
            "json": None,
        },
    )


def add_dataset_type(
    store: Store,
    name: str,
    filename_pattern: str = "",
    description: str = "",
    created_by: str | None = None,
) -> str:
    """Add a dataset type; the pattern is kept as given (as for Alyx fixtures). Returns its id."""
    type_id = new_id()
    store.insert(
        "dataset_types",
        {
            "id": type_id,
            "name": name,
            "created_by": created_by,
            "description": description,
            "filename_pattern": filename_pattern,
        },
    )
    return type_id


def add_subject(
    store: Store,
    nickname: str,
    *,
    lab: str,
    responsible_user: str,
    birth_date: str | None = None,
    projects: list[str] | tuple[str, ...] = (),
    **fields: Any,
) -> str:
    """Add a subject; extra ``fields`` are stored columns (sex, species, …). Returns its id."""
    subject_id = new_id()
    row = {
        "id": subject_id,
        "nickname": nickname,
        "responsible_user": responsible_user,
        "birth_date": birth_date,
        "lab": lab,
        "species": "Laboratory mouse",
        "sex": "U",
        "description": "",
        "alive": True,
        "reference_weight": 0.0,
        "death_date": None,
        **fields,
    }
    row["genotype"] = dumps(row.get("genotype") or [])
    row["json"] = dumps(row.get("json"))
    store.insert("subjects", row)
    for project in projects:
        store.insert("subject_projects", {"subject": nickname, "project": project})
    return subject_id
