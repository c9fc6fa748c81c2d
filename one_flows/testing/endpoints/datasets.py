"""Data files: register-file, check-protected, datasets, file records, revisions and tags."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import Any

from ...alf.path import filename_parts
from ..protocol import (
    UUID_RE,
    ApiError,
    Request,
    Response,
    Route,
    field_errors,
    not_found,
    paginate,
    server_error,
)
from ..store import Store, dumps, loads, new_id, now
from .fields import REQUIRED, Errors, boolean, integer
from .reference import named_resource, named_rows

QC_LABELS = {0: "NOT_SET", 10: "PASS", 30: "WARNING", 40: "FAIL", 50: "CRITICAL"}

_SESSION_PATH = re.compile(
    r"(?P<nickname>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<number>\d+)(?:/|$)"
)


def qc_value(value: Any, errors: Errors) -> int | None:
    """A QC outcome given as a label ("PASS") or its number."""
    labels = {label: number for number, label in QC_LABELS.items()}
    if isinstance(value, str) and value.upper() in labels:
        return labels[value.upper()]
    number = integer(value, "qc", errors)
    if number is not None and number not in QC_LABELS:
        errors.add("qc", f'"{value}" is not a valid choice.')
    return number


def _data_url(repository: dict[str, Any] | None, relative_path: str, dataset_id: str) -> str | None:
    """The download URL of a file record: the dataset UUID goes before the extension."""
    if repository is None or not repository["data_url"]:
        return None
    stem, dot, extension = relative_path.rpartition(".")
    path = f"{stem}.{dataset_id}.{extension}" if dot else f"{relative_path}.{dataset_id}"
    return repository["data_url"] + path


def _repositories(store: Store) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in store.all("SELECT * FROM repositories")}


def _tags(store: Store, dataset_id: str) -> list[dict[str, Any]]:
    return store.all(
        "SELECT t.* FROM dataset_tags dt JOIN tags t ON t.id = dt.tag WHERE dt.dataset = ? "
        "ORDER BY t.name",
        (dataset_id,),
    )


def _revision_name(store: Store, revision_id: str | None) -> str:
    if revision_id is None:
        return ""
    return store.one("SELECT name FROM revisions WHERE id = ?", (revision_id,))["name"]


def _dataset(store: Store, req: Request, row: dict[str, Any], *, listing: bool) -> dict[str, Any]:
    """A dataset as ``/datasets`` renders it; list items also carry ``protected``/``public``."""
    repositories = _repositories(store)
    session = store.one("SELECT number FROM sessions WHERE id = ?", (row["session"],))
    records = store.all("SELECT * FROM file_records WHERE dataset = ? ORDER BY rowid", (row["id"],))
    tags = _tags(store, row["id"])
    body = {
        "url": req.absolute(f"/datasets/{row['id']}"),
        "name": row["name"],
        "created_by": row["created_by"],
        "created_datetime": row["created_datetime"],
        "dataset_type": row["dataset_type"],
        "data_format": row["data_format"],
        "collection": row["collection"],
        "session": req.absolute(f"/sessions/{row['session']}"),
        "file_size": row["file_size"],
        "hash": row["hash"],
        "version": row["version"],
        "experiment_number": session["number"] if session else None,
        "file_records": [
            {
                "id": r["id"],
                "data_repository": r["repository"],
                "data_repository_path": repositories[r["repository"]]["globus_path"],
                "relative_path": r["relative_path"],
                "data_url": _data_url(repositories[r["repository"]], r["relative_path"], row["id"]),
                "exists": bool(r["exists"]),
            }
            for r in records
        ],
        "auto_datetime": row["auto_datetime"],
        "revision": _revision_name(store, row["revision"]),
        "default_dataset": bool(row["default_dataset"]),
    }
    if listing:
        body["protected"] = int(any(t["protected"] for t in tags))
        body["public"] = int(any(t["public"] for t in tags))
    return body | {
        "tags": [t["name"] for t in tags],
        "qc": QC_LABELS.get(row["qc"], str(row["qc"])),
        "json": loads(row["json"]),
    }


def session_datasets(store: Store, req: Request, session_id: str) -> list[dict[str, Any]]:
    """The ``data_dataset_session_related`` of a session: datasets with an existing file."""
    repositories = _repositories(store)
    rows = store.all(
        "SELECT d.*, f.repository, f.relative_path FROM datasets d JOIN file_records f "
        'ON f.dataset = d.id AND f."exists" = 1 WHERE d.session = ? '
        "GROUP BY d.id ORDER BY d.rowid",
        (session_id,),
    )
    return [
        {
            "id": r["id"],
            "name": r["name"],
            "dataset_type": r["dataset_type"],
            "data_url": _data_url(repositories[r["repository"]], r["relative_path"], r["id"]),
            "url": req.absolute(f"/datasets/{r['id']}"),
            "file_size": r["file_size"],
            "hash": r["hash"],
            "version": r["version"],
            "collection": r["collection"],
            "revision": r["revision"] or "",
            "default_revision": str(bool(r["default_dataset"])),
            "qc": QC_LABELS.get(r["qc"], str(r["qc"])),
        }
        for r in rows
    ]


def _split_filename(filename: str) -> tuple[str, str | None, str]:
    """Collection, revision (from a ``#revision#`` folder) and name of a session-relative file."""
    *folders, name = filename.strip("/").split("/")
    revision = None
    if folders and re.fullmatch(r"#[^#]+#", folders[-1]):
        revision = folders.pop()[1:-1]
    return "/".join(folders), revision, name


def _match_dataset_type(store: Store, name: str) -> str:
    """The one dataset type whose pattern matches ``name`` (case-insensitive), or a 500."""
    parts = filename_parts(name, as_dict=True, assert_valid=False)
    if parts["object"] and parts["attribute"]:
        object_attribute = f"{parts['object']}.{parts['attribute']}"
    else:  # not an ALF name: Alyx compares the name without its extension
        object_attribute = name.rsplit(".", 1)[0]
    matches = []
    for dataset_type in store.all("SELECT name, filename_pattern FROM dataset_types ORDER BY name"):
        pattern = (dataset_type["filename_pattern"] or "").strip()
        if pattern:
            if fnmatchcase(name.lower(), pattern.lower()):
                matches.append(dataset_type["name"])
        elif dataset_type["name"] == object_attribute:
            matches.append(dataset_type["name"])
    if not matches:
        raise server_error(f'No dataset type found for filename "{name}"')
    if len(matches) > 1:
        raise server_error(
            f'Multiple matching dataset types found for filename "{name}": {", ".join(matches)}'
        )
    return matches[0]


def _data_format(store: Store, name: str) -> str:
    extension = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    row = store.one(
        "SELECT name FROM data_formats WHERE lower(file_extension) = lower(?) ORDER BY name",
        (extension,),
    )
    return row["name"] if row else "unknown"


def _find_session(store: Store, path: str) -> tuple[dict[str, Any], str]:
    """The session a register-file/check-protected ``path`` names, and the path as sent."""
    found = _SESSION_PATH.match(path or "")
    if not found:
        raise ApiError(
            400,
            {"status_code": 400, "error": f"The path {path} should be `nickname/YYYY-MM-DD/n/..."},
        )
    nickname, day, number = found["nickname"], found["date"], int(found["number"])
    if store.one("SELECT 1 FROM subjects WHERE nickname = ?", (nickname,)) is None:
        raise ApiError(
            400,
            {"status_code": 400, "error": f'A subject with nickname "{nickname}" does not exist.'},
        )
    same_day = store.all(
        "SELECT * FROM sessions WHERE subject = ? AND substr(start_time, 1, 10) = ? ORDER BY rowid",
        (nickname, day),
    )
    if not same_day:
        raise ApiError(
            400,
            {"status_code": 400, "error": f"A base session for {nickname} on {day} does not exist"},
        )
    numbered = [s for s in same_day if s["number"] == number]
    if not numbered:
        raise ApiError(
            400,
            {
                "status_code": 400,
                "error": f"A session for {nickname}/{number} on {day} does not exist",
            },
        )
    return numbered[0], found.group(0).rstrip("/")


def _as_list(value: Any) -> list[Any]:
    """A list field that form bodies and query strings send comma-separated."""
    if isinstance(value, str):
        return value.split(",")
    return list(value)


def _protection(store: Store, session_id: str, filenames: list[str]) -> list[dict[str, Any]]:
    """Per filename as sent: every revision of that collection/name, latest first, protected?"""
    details = []
    for filename in filenames:
        collection, _, name = _split_filename(filename)
        rows = store.all(
            "SELECT id, revision FROM datasets WHERE session = ? AND collection = ? AND name = ? "
            "ORDER BY rowid DESC",
            (session_id, collection, name),
        )
        details.append(
            {
                filename: [
                    {
                        _revision_name(store, r["revision"]): any(
                            t["protected"] for t in _tags(store, r["id"])
                        )
                    }
                    for r in rows
                ]
            }
        )
    return details


def _protected_body(details: list[dict[str, Any]]) -> dict[str, Any] | None:
    if any(
        flag for detail in details for revs in detail.values() for r in revs for flag in r.values()
    ):
        return {
            "status_code": 403,
            "error": "One or more datasets is protected",
            "details": details,
        }
    return None


def check_protected(store: Store, req: Request) -> Response:
    """GET /check-protected: always HTTP 200; the outcome is the body's ``status_code``."""
    data = req.data() or req.query
    session, _ = _find_session(store, data.get("path", ""))
    details = _protection(store, session["id"], _as_list(data.get("filenames", [])))
    body = _protected_body(details)
    return Response.json(
        200, body or {"status_code": 200, "details": "None of the datasets are protected"}
    )


def _registering_user(store: Store, req: Request, created_by: str | None) -> str | None:
    if not created_by:
        return req.user["username"] if req.user else None
    if store.one("SELECT 1 FROM users WHERE username = ?", (created_by,)) is None:
        raise server_error("LabMember matching query does not exist.")
    return created_by


def _add_session_user(store: Store, session_id: str, username: str | None) -> None:
    """Register-file adds the registering user to the session, as Alyx does."""
    if store.one(
        "SELECT 1 FROM session_users WHERE session = ? AND username IS ?", (session_id, username)
    ):
        return
    if username is None:
        # Alyx adds the anonymous user (no id) and PostgreSQL refuses the row.
        next_id = store.one("SELECT COALESCE(MAX(id), 0) + 1 AS id FROM session_users")["id"]
        raise server_error(
            'null value in column "labmember_id" of relation "actions_session_users" violates '
            f"not-null constraint\nDETAIL:  Failing row contains ({next_id}, {session_id}, null).\n"
        )
    store.insert("session_users", {"session": session_id, "username": username})


def _target_repositories(store: Store, labs: list[str], name: str | None) -> list[str]:
    repositories = store.column(
        f"SELECT DISTINCT repository FROM lab_repositories WHERE lab IN "
        f"({', '.join('?' for _ in labs)}) ORDER BY rowid",
        labs,
    )
    if name and name not in repositories:
        repositories.append(name)
    return repositories


def register_file(store: Store, req: Request) -> Response:
    """POST /register-file: get-or-create datasets and file records, one file after the other.

    Not atomic (a failing file leaves the earlier ones registered), and no token is required.
    """
    data = req.data()
    username = _registering_user(store, req, data.get("created_by"))
    repository = data.get("name")
    if repository and store.one("SELECT 1 FROM repositories WHERE name = ?", (repository,)) is None:
        raise ApiError(
            400, {"status_code": 400, "detail": "The specified repository does not exist."}
        )
    labs = [lab for lab in _as_list(data.get("labs") or []) if lab]
    if any(store.one("SELECT 1 FROM labs WHERE name = ?", (lab,)) is None for lab in labs):
        raise ApiError(
            400, {"status_code": 400, "detail": "One or more of the specified labs do not exist."}
        )
    session, session_path = _find_session(store, data.get("path", ""))
    _add_session_user(store, session["id"], username)
    filenames = _as_list(data.get("filenames") or [])
    count = len(filenames)
    try:
        hashes = list(data.get("hashes", [None] * count))
        sizes = list(data.get("filesizes", [None] * count))
        versions = list(data.get("versions", [None] * count))
    except TypeError as exc:
        raise server_error(str(exc)) from exc
    if data.get("check_protected", False) and boolean(data["check_protected"]):
        body = _protected_body(_protection(store, session["id"], filenames))
        if body:
            raise ApiError(403, body)
    targets = _target_repositories(store, labs or [session["lab"]], repository)
    exists = boolean(data.get("exists", False))
    default = boolean(data.get("default", True))
    results = []
    for filename, hash_, size, version in zip(filenames, hashes, sizes, versions, strict=False):
        dataset = _register_one(
            store, session, filename, hash_, size, version, username, default=default
        )
        records = []
        for target in targets:
            relative_path = (
                "/".join(
                    p
                    for p in (session_path, dataset["collection"], _revision_folder(store, dataset))
                    if p
                )
                + f"/{dataset['name']}"
            )
            records.append(
                _file_record(
                    store, dataset["id"], target, relative_path, exists and target == repository
                )
            )
        results.append(_registered(store, session, dataset, records))
    return Response.json(201, results)


def _revision_folder(store: Store, dataset: dict[str, Any]) -> str:
    name = _revision_name(store, dataset["revision"])
    return f"#{name}#" if name else ""


def _register_one(
    store: Store,
    session: dict[str, Any],
    filename: str,
    hash_: str | None,
    size: Any,
    version: str | None,
    username: str | None,
    *,
    default: bool,
) -> dict[str, Any]:
    collection, revision_name, name = _split_filename(filename)
    dataset_type = _match_dataset_type(store, name)
    data_format = _data_format(store, name)
    revision_id = _get_or_create_revision(store, revision_name) if revision_name else None
    existing = store.one(
        "SELECT * FROM datasets "
        "WHERE session = ? AND collection = ? AND name = ? AND revision IS ?",
        (session["id"], collection, name, revision_id),
    )
    if existing is not None:
        if any(t["protected"] for t in _tags(store, existing["id"])):
            raise ApiError(
                403,
                {
                    "status_code": 403,
                    "detail": f"Dataset {existing['id']} is protected, cannot patch",
                },
            )
        updates = {"file_size": size, "version": version or "", "auto_datetime": now()}
        if hash_ is not None:
            updates["hash"] = hash_
        assignments = ", ".join(f"{k} = ?" for k in updates)
        store.execute(
            f"UPDATE datasets SET {assignments} WHERE id = ?", [*updates.values(), existing["id"]]
        )
        dataset_id = existing["id"]
    else:
        dataset_id = new_id()
        stamp = now()
        store.insert(
            "datasets",
            {
                "id": dataset_id,
                "session": session["id"],
                "name": name,
                "collection": collection,
                "revision": revision_id,
                "dataset_type": dataset_type,
                "data_format": data_format,
                "created_by": username,
                "created_datetime": stamp,
                "auto_datetime": stamp,
                "file_size": size,
                "hash": hash_ or "",
                "version": version or "",
                "default_dataset": default,
                "qc": 0,
            },
        )
    if default:
        # The newest registration of a collection/name takes over the default flag.
        store.execute(
            "UPDATE datasets SET default_dataset = (id = ?) "
            "WHERE session = ? AND collection = ? AND name = ?",
            (dataset_id, session["id"], collection, name),
        )
    return store.one("SELECT * FROM datasets WHERE id = ?", (dataset_id,))


def _get_or_create_revision(store: Store, name: str) -> str:
    row = store.one("SELECT id FROM revisions WHERE name = ?", (name,))
    if row:
        return row["id"]
    revision_id = new_id()
    store.insert(
        "revisions",
        {
            "id": revision_id,
            "name": name,
            "description": "",
            "created_datetime": now(),
            "json": None,
        },
    )
    return revision_id


def _file_record(
    store: Store, dataset_id: str, repository: str, relative_path: str, exists: bool
) -> dict[str, Any]:
    row = store.one(
        "SELECT * FROM file_records WHERE dataset = ? AND repository = ?", (dataset_id, repository)
    )
    if row is None:
        row = {
            "id": new_id(),
            "dataset": dataset_id,
            "repository": repository,
            "relative_path": relative_path,
            "exists": exists,
            "json": None,
        }
        store.insert("file_records", row)
    elif exists and not row["exists"]:
        store.execute('UPDATE file_records SET "exists" = 1 WHERE id = ?', (row["id"],))
        row["exists"] = 1
    return {
        "id": row["id"],
        "data_repository": repository,
        "relative_path": row["relative_path"],
        "exists": bool(row["exists"]),
    }


def _registered(
    store: Store, session: dict[str, Any], dataset: dict[str, Any], records: list[dict[str, Any]]
) -> dict[str, Any]:
    """One item of the register-file answer."""
    users = store.column(
        "SELECT username FROM session_users WHERE session = ? ORDER BY id", (session["id"],)
    )
    return {
        "id": dataset["id"],
        "name": dataset["name"],
        "file_size": dataset["file_size"],
        "subject": session["subject"],
        "created_by": dataset["created_by"],
        "created_datetime": dataset["created_datetime"],
        "dataset_type": dataset["dataset_type"],
        "data_format": dataset["data_format"],
        "session": session["id"],
        "session_number": session["number"],
        "session_users": ",".join(users),
        "session_start_time": session["start_time"],
        "collection": dataset["collection"],
        "revision": _revision_name(store, dataset["revision"]),
        "default": bool(dataset["default_dataset"]),
        "qc": dataset["qc"],
        "file_records": records,
    }


_TRUE = ("true", "1", "yes")

_DATASET_FILTERS = {
    "session": "d.session = ?",
    "name": "d.name = ?",
    "collection": "d.collection = ?",
    "dataset_type": "d.dataset_type = ?",
    "created_by": "d.created_by = ?",
    "hash": "d.hash = ?",
    "subject": "s.subject = ?",
    "lab": "s.lab = ?",
    "experiment_number": "s.number = ?",
    "date": "substr(s.start_time, 1, 10) = ?",
    "revision": "d.revision = (SELECT id FROM revisions WHERE name = ?)",
    "tag": "d.id IN (SELECT dt.dataset FROM dataset_tags dt JOIN tags t ON t.id = dt.tag "
    "WHERE t.name = ?)",
}
_DATASET_FLAGS = {
    "exists": 'EXISTS (SELECT 1 FROM file_records f WHERE f.dataset = d.id AND f."exists" = 1)',
    "protected": "EXISTS (SELECT 1 FROM dataset_tags dt JOIN tags t ON t.id = dt.tag "
    "WHERE dt.dataset = d.id AND t.protected = 1)",
    "public": "EXISTS (SELECT 1 FROM dataset_tags dt JOIN tags t ON t.id = dt.tag "
    "WHERE dt.dataset = d.id AND t.public = 1)",
    "default_dataset": "d.default_dataset = 1",
}


def list_datasets(store: Store, req: Request) -> Response:
    """GET /datasets, filtered by session, name, collection, exists, protected, …"""
    clauses, params = [], []
    for key, clause in _DATASET_FILTERS.items():
        if key in req.query:
            clauses.append(clause)
            params.append(req.query[key])
    for key, clause in _DATASET_FLAGS.items():
        if key in req.query:
            wanted = req.query[key].lower() in _TRUE
            clauses.append(clause if wanted else f"NOT ({clause})")
    sql = "SELECT d.* FROM datasets d JOIN sessions s ON s.id = d.session"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    rows = store.all(sql + " ORDER BY d.rowid", params)
    return paginate(req, [_dataset(store, req, r, listing=True) for r in rows])


def _dataset_row(store: Store, dataset_id: str) -> dict[str, Any]:
    row = store.one("SELECT * FROM datasets WHERE id = ?", (dataset_id,))
    if row is None:
        raise not_found("Dataset")
    return row


def read_dataset(store: Store, req: Request, id: str) -> Response:
    """GET /datasets/<id>."""
    return Response.json(200, _dataset(store, req, _dataset_row(store, id), listing=False))


def patch_dataset(store: Store, req: Request, id: str) -> Response:
    """PATCH /datasets/<id>: tags (by name), hash, file_size, version, qc, default, json."""
    _dataset_row(store, id)
    data = req.data()
    errors = Errors()
    updates: dict[str, Any] = {}
    tag_ids: list[str] | None = None
    if "tags" in data:
        tag_ids = []
        for name in _as_list(data["tags"] or []):
            tag = store.one("SELECT id FROM tags WHERE name = ?", (name,))
            if tag is None:
                errors.add("tags", f"Object with name={name} does not exist.")
            else:
                tag_ids.append(tag["id"])
    for key in ("hash", "version"):
        if key in data:
            updates[key] = data[key] or ""
    if "file_size" in data:
        updates["file_size"] = integer(data["file_size"], "file_size", errors)
    if "qc" in data:
        updates["qc"] = qc_value(data["qc"], errors)
    if "default_dataset" in data:
        updates["default_dataset"] = boolean(data["default_dataset"])
    if "json" in data:
        updates["json"] = dumps(data["json"])
    if errors:
        raise field_errors(errors)
    if updates:
        assignments = ", ".join(f"{k} = ?" for k in updates)
        store.execute(f"UPDATE datasets SET {assignments} WHERE id = ?", [*updates.values(), id])
    if tag_ids is not None:
        store.execute("DELETE FROM dataset_tags WHERE dataset = ?", (id,))
        for tag_id in dict.fromkeys(tag_ids):
            store.insert("dataset_tags", {"dataset": id, "tag": tag_id})
    return Response.json(200, _dataset(store, req, _dataset_row(store, id), listing=False))


def _file(req: Request, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "url": req.absolute(f"/files/{row['id']}"),
        "dataset": req.absolute(f"/datasets/{row['dataset']}"),
        "data_repository": row["repository"],
        "name": "",
        "json": loads(row["json"]),
        "relative_path": row["relative_path"],
        "exists": bool(row["exists"]),
    }


def list_files(store: Store, req: Request) -> Response:
    """GET /files, filtered by dataset, data repository and ``exists``."""
    clauses, params = [], []
    for key, column in (("dataset", "dataset"), ("data_repository", "repository")):
        if key in req.query:
            clauses.append(f"{column} = ?")
            params.append(req.query[key])
    if "exists" in req.query:
        clauses.append('"exists" = ?')
        params.append(int(req.query["exists"].lower() in _TRUE))
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = store.all(f"SELECT * FROM file_records {where} ORDER BY rowid", params)
    return paginate(req, [_file(req, r) for r in rows])


def _file_row(store: Store, file_id: str) -> dict[str, Any]:
    row = store.one("SELECT * FROM file_records WHERE id = ?", (file_id,))
    if row is None:
        raise not_found("FileRecord")
    return row


def read_file(store: Store, req: Request, id: str) -> Response:
    """GET /files/<id>."""
    return Response.json(200, _file(req, _file_row(store, id)))


def patch_file(store: Store, req: Request, id: str) -> Response:
    """PATCH /files/<id>: ``exists``, ``relative_path`` or ``json``."""
    _file_row(store, id)
    data = req.data()
    if "exists" in data:
        store.execute(
            'UPDATE file_records SET "exists" = ? WHERE id = ?', (boolean(data["exists"]), id)
        )
    if "relative_path" in data:
        store.execute(
            "UPDATE file_records SET relative_path = ? WHERE id = ?", (data["relative_path"], id)
        )
    if "json" in data:
        store.execute("UPDATE file_records SET json = ? WHERE id = ?", (dumps(data["json"]), id))
    return Response.json(200, _file(req, _file_row(store, id)))


def _revision(store: Store, req: Request, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "json": loads(row["json"]),
        "name": row["name"],
        "description": row["description"],
        "created_datetime": row["created_datetime"],
    }


def create_revision(store: Store, req: Request) -> Response:
    """POST /revisions."""
    data = req.data()
    name = data.get("name")
    if not name:
        raise field_errors({"name": [REQUIRED]})
    if store.one("SELECT 1 FROM revisions WHERE name = ?", (name,)):
        raise field_errors({"name": ["revision with this name already exists."]})
    row = {
        "id": new_id(),
        "name": name,
        "description": data.get("description") or "",
        "created_datetime": now(),
        "json": dumps(data.get("json")),
    }
    store.insert("revisions", row)
    return Response.json(201, _revision(store, req, row))


def _tag(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "json": loads(row["json"]),
        "name": row["name"],
        "description": row["description"],
        "protected": bool(row["protected"]),
        "public": bool(row["public"]),
        "hash": row["hash"],
    }


def list_tags(store: Store, req: Request) -> Response:
    """GET /tags."""
    return paginate(req, [_tag(r) for r in named_rows(store, req, "tags", "name")])


def create_tag(store: Store, req: Request) -> Response:
    """POST /tags: a tag; ``protected`` tags freeze the datasets they are put on."""
    data = req.data()
    name = data.get("name")
    if not name:
        raise field_errors({"name": [REQUIRED]})
    if store.one("SELECT 1 FROM tags WHERE name = ?", (name,)):
        raise field_errors({"name": ["tag with this name already exists."]})
    row = {
        "id": new_id(),
        "name": name,
        "description": data.get("description") or "",
        "protected": boolean(data.get("protected", False)),
        "public": boolean(data.get("public", False)),
        "hash": data.get("hash"),
        "json": dumps(data.get("json")),
    }
    store.insert("tags", row)
    return Response.json(201, _tag(row))


ID = rf"(?P<id>{UUID_RE})"

ROUTES = (
    Route(r"/register-file", {"POST": register_file}, public=True),
    Route(r"/check-protected", {"GET": check_protected}),
    Route(r"/datasets", {"GET": list_datasets}),
    Route(rf"/datasets/{ID}", {"GET": read_dataset, "PATCH": patch_dataset}),
    Route(r"/files", {"GET": list_files}),
    Route(rf"/files/{ID}", {"GET": read_file, "PATCH": patch_file}),
    *named_resource(
        "/revisions", "revisions", "Revision", _revision, order="rowid", create=create_revision
    ),
    Route(r"/tags", {"GET": list_tags, "POST": create_tag}),
)
