"""Sessions: list with filters, create (duplicates allowed, as in Alyx), read, update, delete."""

from __future__ import annotations

from typing import Any

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
from .datasets import QC_LABELS, qc_value, session_datasets
from .fields import REQUIRED, Errors, date_time, integer, relation, relations
from .lookups import django_clauses

# many-to-many relations: request field → (link table, link column, target table, target column)
_LINKS = {
    "users": ("session_users", "username", "users", "username"),
    "procedures": ("session_procedures", "procedure", "procedures", "name"),
    "projects": ("session_projects", "project", "projects", "name"),
}
_TEXT = ("type", "task_protocol", "narrative")
# Session fields a django= filter may name, and their columns.
_DJANGO_FIELDS = {
    "pk": "s.id",
    "id": "s.id",
    "subject__nickname": "s.subject",
    "lab__name": "s.lab",
    "location__name": "s.location",
    "number": "s.number",
    "task_protocol": "s.task_protocol",
    "type": "s.type",
    "start_time": "s.start_time",
    "start_time__date": "substr(s.start_time, 1, 10)",
}
_INTEGERS = ("number", "n_trials", "n_correct_trials")


def _linked(store: Store, session_id: str, field: str) -> list[str]:
    """A session's related names, in the target table's order (as Alyx returns them)."""
    link, column, target, key = _LINKS[field]
    return store.column(
        f"SELECT l.{column} FROM {link} l JOIN {target} t ON t.{key} = l.{column} "
        f"WHERE l.session = ? ORDER BY t.rowid",
        (session_id,),
    )


def _summary(store: Store, req: Request, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "subject": row["subject"],
        "start_time": row["start_time"],
        "number": row["number"],
        "lab": row["lab"],
        "projects": _linked(store, row["id"], "projects"),
        "url": req.absolute(f"/sessions/{row['id']}"),
        "task_protocol": row["task_protocol"],
    }


def _water_related(req: Request, store: Store, session_id: str) -> list[dict[str, Any]]:
    rows = store.all(
        "SELECT * FROM water_administrations WHERE session = ? ORDER BY date_time", (session_id,)
    )
    return [
        {
            "id": r["id"],
            "url": req.absolute(f"/water-administrations/{r['id']}"),
            "water_administered": r["water_administered"],
            "water_type": r["water_type"],
            "date_time": r["date_time"],
        }
        for r in rows
    ]


def session_detail(store: Store, req: Request, row: dict[str, Any]) -> dict[str, Any]:
    """The full session, as the detail, create and update routes answer it."""
    sid = row["id"]
    return {
        "subject": row["subject"],
        "users": _linked(store, sid, "users"),
        "location": row["location"],
        "procedures": _linked(store, sid, "procedures"),
        "lab": row["lab"],
        "projects": _linked(store, sid, "projects"),
        "type": row["type"],
        "task_protocol": row["task_protocol"],
        "number": row["number"],
        "start_time": row["start_time"],
        "end_time": row["end_time"],
        "narrative": row["narrative"],
        "parent_session": row["parent_session"],
        "n_correct_trials": row["n_correct_trials"],
        "n_trials": row["n_trials"],
        "url": req.absolute(f"/sessions/{sid}"),
        "extended_qc": loads(row["extended_qc"]),
        "qc": QC_LABELS.get(row["qc"], str(row["qc"])),
        "wateradmin_session_related": _water_related(req, store, sid),
        "data_dataset_session_related": session_datasets(store, req, sid),
        "auto_datetime": row["auto_datetime"],
        "id": sid,
        "json": loads(row["json"]),
        "probe_insertion": [],
        "field_of_view": [],
        "notes": [],
    }


def _number_param(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise field_errors({"number": ["Enter a number."]}) from None


def list_sessions(store: Store, req: Request) -> Response:
    """GET /sessions: short records, newest first, filtered as Alyx's session filter does."""
    q = req.query
    clauses: list[str] = []
    params: list[Any] = []

    def where(clause: str, *values: Any) -> None:
        clauses.append(clause)
        params.extend(values)

    # subject and lab match whole names, case aside; projects and task protocol substrings.
    if "subject" in q or "nickname" in q:
        where("lower(s.subject) = lower(?)", q.get("subject", q.get("nickname")))
    if "lab" in q:
        where("lower(s.lab) = lower(?)", q["lab"])
    if "id" in q:
        where("s.id = ?", q["id"])
    if "number" in q:
        where("s.number = ?", _number_param(q["number"]))
    if "type" in q:
        where("s.type = ?", q["type"])
    if "location" in q:
        where("lower(s.location) = lower(?)", q["location"])
    if "task_protocol" in q:
        where("s.task_protocol LIKE ?", f"%{q['task_protocol']}%")
    if "date_range" in q:
        # Alyx splits on the comma and indexes both ends: a single date fails in the same way.
        bounds = q["date_range"].split(",")
        if len(bounds) < 2:
            raise server_error("list index out of range")
        where("substr(s.start_time, 1, 10) BETWEEN ? AND ?", bounds[0], bounds[1])
    # users, dataset types and datasets: the session must have every one listed.
    for user in filter(None, q.get("users", "").split(",")):
        where(
            "EXISTS (SELECT 1 FROM session_users u WHERE u.session = s.id AND u.username = ?)", user
        )
    for key in ("projects", "project"):
        if key in q:
            where(
                "EXISTS (SELECT 1 FROM session_projects p WHERE p.session = s.id "
                "AND p.project LIKE ?)",
                f"%{q[key]}%",
            )
    for dataset_type in filter(None, q.get("dataset_types", "").split(",")):
        where(
            "EXISTS (SELECT 1 FROM datasets d WHERE d.session = s.id AND d.dataset_type = ?)",
            dataset_type,
        )
    for name in filter(None, q.get("datasets", "").split(",")):
        # Only datasets with a file on a non-personal repository count.
        where(
            "EXISTS (SELECT 1 FROM datasets d JOIN file_records f ON f.dataset = d.id "
            "JOIN repositories r ON r.name = f.repository WHERE d.session = s.id AND d.name = ? "
            'AND f."exists" = 1 AND NOT r.globus_is_personal)',
            name,
        )
    if "dataset_qc_lte" in q:
        errors = Errors()
        level = qc_value(q["dataset_qc_lte"], errors)
        if errors:
            raise field_errors(errors)
        where("EXISTS (SELECT 1 FROM datasets d WHERE d.session = s.id AND d.qc <= ?)", level)
    if "django" in q:
        django, values = django_clauses(q["django"], _DJANGO_FIELDS)
        clauses.extend(django)
        params.extend(values)
    sql = "SELECT s.* FROM sessions s"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    rows = store.all(sql + " ORDER BY s.start_time DESC, s.rowid", params)
    return paginate(req, [_summary(store, req, r) for r in rows])


def _validate(
    store: Store, data: dict[str, Any], *, partial: bool
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Checked column values and many-to-many names of a create or update body."""
    errors = Errors()
    columns: dict[str, Any] = {}
    links: dict[str, list[str]] = {}
    if data.get("subject") is None and not partial:
        errors.add("subject", REQUIRED)
    elif "subject" in data:
        columns["subject"] = relation(
            store, "subjects", "nickname", data["subject"], "subject", errors
        )
    for field, (_, _, target, key) in _LINKS.items():
        if field in data:
            links[field] = relations(store, target, key, data[field], field, errors)
    if "location" in data:
        columns["location"] = relation(
            store, "locations", "name", data["location"], "location", errors
        )
    if "lab" in data:
        columns["lab"] = relation(store, "labs", "name", data["lab"], "lab", errors)
    for field in _INTEGERS:
        if field in data:
            columns[field] = integer(data[field], field, errors)
    for field in ("start_time", "end_time"):
        if field in data:
            columns[field] = date_time(data[field], field, errors)
    for field in _TEXT:
        if field in data:
            columns[field] = data[field]
    if data.get("task_protocol", "") is None:
        columns["task_protocol"] = ""
    if "narrative" in data:
        columns["narrative"] = data["narrative"] or ""
    for field in ("json", "extended_qc"):
        if field in data:
            columns[field] = dumps(data[field])
    if "qc" in data:
        columns["qc"] = qc_value(data["qc"], errors)
    if data.get("parent_session") is not None:
        parent = data["parent_session"]
        if store.one("SELECT 1 FROM sessions WHERE id = ?", (parent,)) is None:
            errors.add("parent_session", f'Invalid pk "{parent}" - object does not exist.')
        columns["parent_session"] = parent
    if errors:
        raise field_errors(errors)
    return columns, links


def _set_links(store: Store, session_id: str, links: dict[str, list[str]]) -> None:
    for field, names in links.items():
        link, column, _, _ = _LINKS[field]
        current = store.column(f"SELECT {column} FROM {link} WHERE session = ?", (session_id,))
        for name in current:
            if name not in names:
                store.execute(
                    f"DELETE FROM {link} WHERE session = ? AND {column} = ?", (session_id, name)
                )
        for name in dict.fromkeys(names):
            if name not in current:
                store.insert(link, {"session": session_id, column: name})


def create_session(store: Store, req: Request) -> Response:
    """POST /sessions: always a new session, with Alyx's defaults for what is left out."""
    columns, links = _validate(store, req.data(), partial=False)
    subject = store.one("SELECT lab FROM subjects WHERE nickname = ?", (columns["subject"],))
    row = {
        "id": new_id(),
        "lab": None,
        "task_protocol": "",
        "narrative": "",
        "qc": 0,
        **columns,
        "auto_datetime": now(),
    }
    row["lab"] = row["lab"] or subject["lab"]
    row["start_time"] = row.get("start_time") or now()
    links.setdefault("users", [req.user["username"]])
    store.insert("sessions", row)
    _set_links(store, row["id"], links)
    return Response.json(201, session_detail(store, req, _session_row(store, row["id"])))


def _session_row(store: Store, session_id: str) -> dict[str, Any]:
    row = store.one("SELECT * FROM sessions WHERE id = ?", (session_id,))
    if row is None:
        raise not_found("Session")
    return row


def read_session(store: Store, req: Request, id: str) -> Response:
    """GET /sessions/<id>."""
    return Response.json(200, session_detail(store, req, _session_row(store, id)))


def _update(store: Store, req: Request, id: str, *, partial: bool) -> Response:
    _session_row(store, id)
    columns, links = _validate(store, req.data(), partial=partial)
    columns["auto_datetime"] = now()
    assignments = ", ".join(f'"{k}" = ?' for k in columns)
    store.execute(f"UPDATE sessions SET {assignments} WHERE id = ?", [*columns.values(), id])
    _set_links(store, id, links)
    return Response.json(200, session_detail(store, req, _session_row(store, id)))


def patch_session(store: Store, req: Request, id: str) -> Response:
    """PATCH /sessions/<id>: update the given fields."""
    return _update(store, req, id, partial=True)


def put_session(store: Store, req: Request, id: str) -> Response:
    """PUT /sessions/<id>: update with a full body (``subject`` required)."""
    return _update(store, req, id, partial=False)


def delete_session(store: Store, req: Request, id: str) -> Response:
    """DELETE /sessions/<id>: the session, its links and its datasets."""
    _session_row(store, id)
    if store.one("SELECT 1 FROM datasets WHERE session = ?", (id,)):
        raise ApiError(
            403, {"detail": "Cannot delete a session with datasets; delete the datasets first."}
        )
    for link, _, _, _ in _LINKS.values():
        store.execute(f"DELETE FROM {link} WHERE session = ?", (id,))
    store.execute("DELETE FROM sessions WHERE id = ?", (id,))
    return Response(204, b"", "application/json")


ROUTES = (
    Route(r"/sessions", {"GET": list_sessions, "POST": create_session}),
    Route(
        rf"/sessions/(?P<id>{UUID_RE})",
        {"GET": read_session, "PATCH": patch_session, "PUT": put_session, "DELETE": delete_session},
    ),
)
