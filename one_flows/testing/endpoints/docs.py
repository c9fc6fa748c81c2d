"""The API's self-description: the OpenAPI document at /api/schema and the legacy /docs/ page."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from ..protocol import Request, Response, Route
from ..seed import load

# Request-body fields of the resources this server implements (others document no fields).
_FIELDS = {
    "sessions": (
        "subject users lab location procedures projects type task_protocol number start_time "
        "end_time narrative parent_session n_trials n_correct_trials qc extended_qc json"
    ),
    "datasets": "tags hash file_size version qc default_dataset json",
    "files": "exists relative_path json",
    "dataset-types": "name filename_pattern description",
    "tags": "name description protected public json",
    "revisions": "name description json",
    "weighings": "subject date_time weight user",
    "water-administrations": "subject date_time water_administered water_type user adlib session",
    "auth-token": "username password",
    "register-file": (
        "created_by path filenames hashes filesizes versions name labs exists server_only "
        "default check_protected"
    ),
}
# Query filters of the list routes, as Alyx 3.6's schema lists them (ONE-api checks its remote
# search terms against those of /sessions, and rest() list filters against the others).
_FILTERS = {
    "sessions": (
        "atlas_acronym atlas_id atlas_name auto_datetime dataset_qc_lte dataset_types datasets "
        "date_range django end_time extended_qc histology id json lab location n_correct_trials "
        "n_trials name narrative nickname number parent_session performance_gte performance_lte "
        "procedures project projects qc start_time subject tag task_protocol type users"
    ),
    "datasets": (
        "auto_datetime collection content_type created_by created_date created_date_gte "
        "created_date_lte created_datetime data_format dataset_type date default_dataset django "
        "exists experiment_number file_size generating_software hash id lab md5 name object_id "
        "probe_insertion protected provenance_directory public qc revision session subject tag "
        "tags version"
    ),
    "users": (
        "allowed_users date_joined django email first_name groups id is_active is_public_user "
        "is_staff is_stock_manager is_superuser last_login last_name password user_permissions "
        "username"
    ),
    "files": "dataset data_repository exists",
    "subjects": "nickname lab responsible_user alive id",
    "weighings": "nickname subject",
    "water-administrations": "nickname subject",
}
# GET routes that answer one document, not a paginated list.
_NOT_LISTS = ("/api/schema", "/cache.zip", "/cache/info/")
_ACTIONS = {"get": "read", "post": "create", "put": "update", "patch": "partial_update"}
# Not in Alyx's legacy coreapi document (data-notices came after it was frozen).
_NOT_IN_COREAPI = ("api", "docs", "data-notices")

REDOC_HTML = """<!DOCTYPE html>
<html>
  <head>
    <title>Redoc</title>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
  </head>
  <body>
    <redoc spec-url="/api/schema"></redoc>
    <script src="https://cdn.jsdelivr.net/npm/redoc@latest/bundles/redoc.standalone.js"></script>
  </body>
</html>
"""


def _endpoint(path: str) -> str:
    return path.strip("/").split("/")[0]


def _component(endpoint: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^a-zA-Z0-9]+", endpoint) if part)


def _parameters(path: str, method: str) -> list[dict[str, Any]]:
    parameters = [
        {"in": "path", "name": name, "schema": {"type": "string"}, "required": True}
        for name in re.findall(r"{(\w+)}", path)
    ]
    if method == "get" and "{" not in path and path not in _NOT_LISTS:
        names = [*_FILTERS.get(_endpoint(path), "").split(), "limit", "offset"]
        parameters += [
            {"in": "query", "name": name, "schema": {"type": "string"}, "required": False}
            for name in names
        ]
    return parameters


def _action(path: str, method: str) -> str:
    """The Django REST framework action of a method on a path."""
    return "list" if method == "get" and "{" not in path else _ACTIONS.get(method, "destroy")


def _operation(path: str, method: str) -> dict[str, Any]:
    endpoint = _endpoint(path)
    action = _action(path, method)
    operation: dict[str, Any] = {
        "operationId": f"{endpoint}_{action}".replace("-", "_").replace(".", "_"),
        "description": "",
        "parameters": _parameters(path, method),
        "tags": [endpoint],
        "security": [{"tokenAuth": []}],
        "responses": {"200": {"description": ""}},
    }
    if method in ("post", "put", "patch"):
        ref = f"#/components/schemas/{_component(endpoint)}"
        operation["requestBody"] = {"content": {"application/json": {"schema": {"$ref": ref}}}}
    return operation


@cache
def openapi_document() -> str:
    """The OpenAPI 3.0.3 document (as JSON text) with the paths and methods of Alyx 3.6."""
    paths = load("api_paths")
    components = {
        _component(_endpoint(p)): {
            "type": "object",
            "properties": {
                name: {"type": "string", "description": ""}
                for name in _FIELDS.get(_endpoint(p), "").split()
            },
        }
        for p in paths
    }
    document = {
        "openapi": "3.0.3",
        "info": {"title": "", "version": "0.0.0"},
        "paths": {p: {m: _operation(p, m) for m in methods} for p, methods in paths.items()},
        "components": {
            "schemas": components,
            "securitySchemes": {
                "tokenAuth": {"type": "apiKey", "in": "header", "name": "Authorization"}
            },
        },
    }
    return json.dumps(document)


@cache
def coreapi_document() -> str:
    """The legacy coreapi document (as JSON text): one entry per endpoint with its actions."""
    document: dict[str, Any] = {
        "_type": "document",
        "_meta": {"url": "/docs/", "title": "Alyx REST API"},
    }
    links: dict[str, dict[str, Any]] = {}
    for path, methods in load("api_paths").items():
        endpoint = _endpoint(path)
        if endpoint in _NOT_IN_COREAPI:
            continue
        for method in methods:
            operation = _operation(path, method)
            fields = [
                {
                    "name": p["name"],
                    "required": p["required"],
                    "location": p["in"],
                    "schema": {"_type": "string", "description": ""},
                }
                for p in operation["parameters"]
            ] + [
                {
                    "name": name,
                    "required": False,
                    "location": "form",
                    "schema": {"_type": "string", "description": ""},
                }
                for name in _FIELDS.get(endpoint, "").split()
                if method in ("post", "put", "patch")
            ]
            link = {"_type": "link", "url": path, "action": method, "fields": fields}
            links.setdefault(endpoint, {})[_action(path, method)] = link
    document |= dict(sorted(links.items()))
    return json.dumps(document)


def api_schema(store: Any, req: Request) -> Response:
    """GET /api/schema: the OpenAPI document."""
    return Response(200, openapi_document().encode(), "application/vnd.oai.openapi+json")


def docs(store: Any, req: Request) -> Response:
    """GET /docs/: coreapi JSON or HTML by the Accept header; without one, Alyx fails with 500."""
    accept = req.headers.get("Accept")
    if accept is None:
        return Response.html(500, "500 Internal Server Error")
    if "coreapi" in accept or "json" in accept:
        return Response(200, coreapi_document().encode(), "application/json")
    return Response.html(200, REDOC_HTML)


ROUTES = (
    Route(r"/api/schema", {"GET": api_schema}, public=True),
    Route(r"/docs", {"GET": docs}, public=True, scope="docs"),
)
