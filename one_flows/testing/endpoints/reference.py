"""Authentication and reference data: users, labs, projects, locations, procedures, water types,
data formats, data repositories and dataset types."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from ..protocol import Request, Response, Route, field_errors, not_found, paginate
from ..store import Store, loads, new_id
from .fields import REQUIRED, Errors


def named_rows(
    store: Store, req: Request, table: str, order: str, key: str = "name"
) -> list[dict[str, Any]]:
    """The rows of a table of named objects, filtered by ``?<key>=`` (``?name=``) when given."""
    if key in req.query:
        return store.all(f"SELECT * FROM {table} WHERE {key} = ?", (req.query[key],))
    return store.all(f"SELECT * FROM {table} ORDER BY {order}")


Serializer = Callable[[Store, Request, dict[str, Any]], dict[str, Any]]


def named_resource(
    path: str,
    table: str,
    model: str,
    serialize: Serializer,
    *,
    order: str = "name",
    key: str = "name",
    create: Callable[[Store, Request], Response] | None = None,
    update: Callable[[Store, Request, str], Response] | None = None,
) -> tuple[Route, Route]:
    """The list route (``path``) and detail route (``path/<key>``) of a table of named objects.

    Unknown keys answer 404 ``No <model> matches the given query.``, as Alyx does.
    """

    def list_view(store: Store, req: Request) -> Response:
        rows = named_rows(store, req, table, order, key)
        return paginate(req, [serialize(store, req, r) for r in rows])

    def read_view(store: Store, req: Request, name: str) -> Response:
        row = store.one(f"SELECT * FROM {table} WHERE {key} = ?", (name,))
        if row is None:
            raise not_found(model)
        return Response.json(200, serialize(store, req, row))

    list_methods = {"GET": list_view} | ({"POST": create} if create else {})
    detail_methods = {"GET": read_view} | ({"PATCH": update} if update else {})
    return Route(path, list_methods), Route(rf"{path}/(?P<name>[^/]+)", detail_methods)


def auth_token(store: Store, req: Request) -> Response:
    """POST /auth-token: the user's token (the same one each time) for a good password."""
    data = req.data()
    errors = Errors()
    for name in ("username", "password"):
        if not data.get(name):
            errors.add(name, REQUIRED)
    if errors:
        raise field_errors(errors)
    user = store.one(
        "SELECT id FROM users WHERE username = ? AND password = ?",
        (data["username"], data["password"]),
    )
    if user is None:
        raise field_errors({"non_field_errors": ["Unable to log in with provided credentials."]})
    token = store.one("SELECT key FROM tokens WHERE user_id = ?", (user["id"],))
    if token is None:
        key = secrets.token_hex(20)
        store.insert("tokens", {"key": key, "user_id": user["id"]})
    else:
        key = token["key"]
    return Response.json(200, {"token": key})


def _user(store: Store, req: Request, row: dict[str, Any]) -> dict[str, Any]:
    responsible = store.column(
        "SELECT nickname FROM subjects WHERE responsible_user = ? ORDER BY nickname",
        (row["username"],),
    )
    return {
        "id": row["id"],
        "username": row["username"],
        "email": row["email"],
        "subjects_responsible": responsible,
        "lab": [],
        "allowed_users": [],
        "is_stock_manager": bool(row["is_stock_manager"]),
    }


def _lab(store: Store, req: Request, row: dict[str, Any]) -> dict[str, Any]:
    repositories = store.column(
        "SELECT repository FROM lab_repositories WHERE lab = ? ORDER BY rowid", (row["name"],)
    )
    return {
        "name": row["name"],
        "institution": row["institution"],
        "address": row["address"],
        "timezone": row["timezone"],
        "repositories": repositories,
        "reference_weight_pct": row["reference_weight_pct"],
        "zscore_weight_pct": row["zscore_weight_pct"],
        "json": loads(row["json"]),
    }


def list_projects(store: Store, req: Request) -> Response:
    """GET /projects."""
    results = [
        {
            "name": row["name"],
            "description": row["description"],
            "users": store.column(
                "SELECT username FROM project_users WHERE project = ? ORDER BY rowid",
                (row["name"],),
            ),
        }
        for row in named_rows(store, req, "projects", "name")
    ]
    return paginate(req, results)


def _location(store: Store, req: Request, row: dict[str, Any]) -> dict[str, Any]:
    return {"name": row["name"], "lab": row["lab"], "json": loads(row["json"])}


def list_procedures(store: Store, req: Request) -> Response:
    """GET /procedures, in the order they were created."""
    rows = named_rows(store, req, "procedures", "rowid")
    results = [
        {
            "id": r["id"],
            "name": r["name"],
            "json": loads(r["json"]),
            "description": r["description"],
        }
        for r in rows
    ]
    return paginate(req, results)


def _water_type(store: Store, req: Request, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "url": req.absolute(f"/water-type/{quote(row['name'], safe='')}"),
        "json": loads(row["json"]),
        "name": row["name"],
    }


def _data_format(store: Store, req: Request, row: dict[str, Any]) -> dict[str, Any]:
    keys = ("description", "file_extension", "matlab_loader_function", "python_loader_function")
    return {"id": row["id"], "json": loads(row["json"]), "name": row["name"]} | {
        k: row[k] for k in keys
    }


def _repository(store: Store, req: Request, row: dict[str, Any]) -> dict[str, Any]:
    keys = ("name", "timezone", "globus_path", "hostname", "data_url", "repository_type")
    return {k: row[k] for k in keys} | {
        "globus_endpoint_id": row["globus_endpoint_id"],
        "globus_is_personal": bool(row["globus_is_personal"]),
        "json": loads(row["json"]),
    }


def patch_repository(store: Store, req: Request, name: str) -> Response:
    """PATCH /data-repository/<name>: change where its files are served from."""
    if store.one("SELECT 1 FROM repositories WHERE name = ?", (name,)) is None:
        raise not_found("DataRepository")
    data = req.data()
    keys = ("data_url", "globus_path", "hostname", "timezone", "repository_type")
    updates = {k: data[k] for k in keys if k in data}
    if "globus_is_personal" in data:
        updates["globus_is_personal"] = bool(data["globus_is_personal"])
    if updates:
        assignments = ", ".join(f"{k} = ?" for k in updates)
        store.execute(
            f"UPDATE repositories SET {assignments} WHERE name = ?", [*updates.values(), name]
        )
    row = store.one("SELECT * FROM repositories WHERE name = ?", (name,))
    return Response.json(200, _repository(store, req, row))


def _dataset_type(store: Store, req: Request, row: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "name", "created_by", "description", "filename_pattern")
    return {k: row[k] for k in keys}


def create_dataset_type(store: Store, req: Request) -> Response:
    """POST /dataset-types: the pattern is stored in lower case, created by the requesting user."""
    data = req.data()
    name = data.get("name")
    if not name:
        raise field_errors({"name": [REQUIRED]})
    if store.one("SELECT 1 FROM dataset_types WHERE name = ?", (name,)):
        raise field_errors({"name": ["dataset type with this name already exists."]})
    row = {
        "id": new_id(),
        "name": name,
        "created_by": req.user["username"] if req.user else None,
        "description": data.get("description") or "",
        "filename_pattern": (data.get("filename_pattern") or "").lower(),
    }
    store.insert("dataset_types", row)
    return Response.json(201, _dataset_type(store, req, row))


ROUTES = (
    Route(r"/auth-token", {"POST": auth_token}, public=True),
    *named_resource("/users", "users", "LabMember", _user, order="username", key="username"),
    *named_resource("/labs", "labs", "Lab", _lab),
    Route(r"/projects", {"GET": list_projects}),
    *named_resource("/locations", "locations", "LabLocation", _location),
    Route(r"/procedures", {"GET": list_procedures}),
    *named_resource("/water-type", "water_types", "WaterType", _water_type, order="rowid"),
    *named_resource("/data-formats", "data_formats", "DataFormat", _data_format),
    *named_resource(
        "/data-repository", "repositories", "DataRepository", _repository, update=patch_repository
    ),
    *named_resource(
        "/dataset-types", "dataset_types", "DatasetType", _dataset_type, create=create_dataset_type
    ),
)
