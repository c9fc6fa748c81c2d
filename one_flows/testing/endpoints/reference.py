"""Authentication and reference data: users, labs, projects, locations, procedures, water types,
data formats, data repositories and dataset types."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

from ..protocol import Request, Response, Route, field_errors, not_found, paginate
from ..store import Store, loads, new_id
from .fields import REQUIRED, Errors


def named_rows(store: Store, req: Request, table: str, order: str) -> list[dict[str, Any]]:
    """The rows of a table of named objects, filtered by ``?name=`` when given."""
    if "name" in req.query:
        return store.all(f"SELECT * FROM {table} WHERE name = ?", (req.query["name"],))
    return store.all(f"SELECT * FROM {table} ORDER BY {order}")


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


def _user(store: Store, row: dict[str, Any]) -> dict[str, Any]:
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


def list_users(store: Store, req: Request) -> Response:
    """GET /users."""
    rows = store.all("SELECT * FROM users ORDER BY username")
    return paginate(req, [_user(store, r) for r in rows])


def read_user(store: Store, req: Request, username: str) -> Response:
    """GET /users/<username>."""
    row = store.one("SELECT * FROM users WHERE username = ?", (username,))
    if row is None:
        raise not_found("LabMember")
    return Response.json(200, _user(store, row))


def _lab(store: Store, row: dict[str, Any]) -> dict[str, Any]:
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


def list_labs(store: Store, req: Request) -> Response:
    """GET /labs."""
    rows = named_rows(store, req, "labs", "name")
    return paginate(req, [_lab(store, r) for r in rows])


def read_lab(store: Store, req: Request, name: str) -> Response:
    """GET /labs/<name>."""
    row = store.one("SELECT * FROM labs WHERE name = ?", (name,))
    if row is None:
        raise not_found("Lab")
    return Response.json(200, _lab(store, row))


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


def _location(row: dict[str, Any]) -> dict[str, Any]:
    return {"name": row["name"], "lab": row["lab"], "json": loads(row["json"])}


def list_locations(store: Store, req: Request) -> Response:
    """GET /locations."""
    return paginate(req, [_location(r) for r in named_rows(store, req, "locations", "name")])


def read_location(store: Store, req: Request, name: str) -> Response:
    """GET /locations/<name>."""
    row = store.one("SELECT * FROM locations WHERE name = ?", (name,))
    if row is None:
        raise not_found("LabLocation")
    return Response.json(200, _location(row))


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


def _water_type(req: Request, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "url": req.absolute(f"/water-type/{quote(row['name'], safe='')}"),
        "json": loads(row["json"]),
        "name": row["name"],
    }


def list_water_types(store: Store, req: Request) -> Response:
    """GET /water-type, in the order they were created."""
    rows = named_rows(store, req, "water_types", "rowid")
    return paginate(req, [_water_type(req, r) for r in rows])


def read_water_type(store: Store, req: Request, name: str) -> Response:
    """GET /water-type/<name>."""
    row = store.one("SELECT * FROM water_types WHERE name = ?", (name,))
    if row is None:
        raise not_found("WaterType")
    return Response.json(200, _water_type(req, row))


def _data_format(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("description", "file_extension", "matlab_loader_function", "python_loader_function")
    return {"id": row["id"], "json": loads(row["json"]), "name": row["name"]} | {
        k: row[k] for k in keys
    }


def list_data_formats(store: Store, req: Request) -> Response:
    """GET /data-formats."""
    rows = named_rows(store, req, "data_formats", "name")
    return paginate(req, [_data_format(r) for r in rows])


def read_data_format(store: Store, req: Request, name: str) -> Response:
    """GET /data-formats/<name>."""
    row = store.one("SELECT * FROM data_formats WHERE name = ?", (name,))
    if row is None:
        raise not_found("DataFormat")
    return Response.json(200, _data_format(row))


def _repository(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("name", "timezone", "globus_path", "hostname", "data_url", "repository_type")
    return {k: row[k] for k in keys} | {
        "globus_endpoint_id": row["globus_endpoint_id"],
        "globus_is_personal": bool(row["globus_is_personal"]),
        "json": loads(row["json"]),
    }


def list_repositories(store: Store, req: Request) -> Response:
    """GET /data-repository."""
    rows = named_rows(store, req, "repositories", "name")
    return paginate(req, [_repository(r) for r in rows])


def read_repository(store: Store, req: Request, name: str) -> Response:
    """GET /data-repository/<name>."""
    row = store.one("SELECT * FROM repositories WHERE name = ?", (name,))
    if row is None:
        raise not_found("DataRepository")
    return Response.json(200, _repository(row))


def _dataset_type(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "name", "created_by", "description", "filename_pattern")
    return {k: row[k] for k in keys}


def list_dataset_types(store: Store, req: Request) -> Response:
    """GET /dataset-types (optionally ``?name=``), ordered by name."""
    rows = named_rows(store, req, "dataset_types", "name")
    return paginate(req, [_dataset_type(r) for r in rows])


def read_dataset_type(store: Store, req: Request, name: str) -> Response:
    """GET /dataset-types/<name>."""
    row = store.one("SELECT * FROM dataset_types WHERE name = ?", (name,))
    if row is None:
        raise not_found("DatasetType")
    return Response.json(200, _dataset_type(row))


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
    return Response.json(201, _dataset_type(row))


NAME = r"(?P<name>[^/]+)"

ROUTES = (
    Route(r"/auth-token", {"POST": auth_token}, public=True),
    Route(r"/users", {"GET": list_users}),
    Route(r"/users/(?P<username>[^/]+)", {"GET": read_user}),
    Route(r"/labs", {"GET": list_labs}),
    Route(rf"/labs/{NAME}", {"GET": read_lab}),
    Route(r"/projects", {"GET": list_projects}),
    Route(r"/locations", {"GET": list_locations}),
    Route(rf"/locations/{NAME}", {"GET": read_location}),
    Route(r"/procedures", {"GET": list_procedures}),
    Route(r"/water-type", {"GET": list_water_types}),
    Route(rf"/water-type/{NAME}", {"GET": read_water_type}),
    Route(r"/data-formats", {"GET": list_data_formats}),
    Route(rf"/data-formats/{NAME}", {"GET": read_data_format}),
    Route(r"/data-repository", {"GET": list_repositories}),
    Route(rf"/data-repository/{NAME}", {"GET": read_repository}),
    Route(r"/dataset-types", {"GET": list_dataset_types, "POST": create_dataset_type}),
    Route(rf"/dataset-types/{NAME}", {"GET": read_dataset_type}),
)
