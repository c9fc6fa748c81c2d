"""Animal care: weighings and water administrations."""

from __future__ import annotations

from typing import Any

from ..protocol import UUID_RE, Request, Response, Route, field_errors, not_found, paginate
from ..store import Store, new_id, now
from .fields import REQUIRED, Errors, boolean, date_time, number, relation


def weighing(req: Request, row: dict[str, Any]) -> dict[str, Any]:
    """A weighing as Alyx renders it in lists and in the subject detail."""
    return {
        "subject": row["subject"],
        "date_time": row["date_time"],
        "weight": row["weight"],
        "user": row["user"],
        "url": req.absolute(f"/weighings/{row['id']}"),
    }


def water_administration(req: Request, row: dict[str, Any]) -> dict[str, Any]:
    """A water administration as Alyx renders it; ``session`` is a bare UUID or None."""
    return {
        "subject": row["subject"],
        "date_time": row["date_time"],
        "water_administered": row["water_administered"],
        "water_type": row["water_type"],
        "user": row["user"],
        "url": req.absolute(f"/water-administrations/{row['id']}"),
        "session": row["session"],
        "adlib": bool(row["adlib"]),
    }


def _subject_filter(req: Request) -> tuple[str, list[str]]:
    nickname = req.query.get("nickname") or req.query.get("subject")
    return ("WHERE subject = ?", [nickname]) if nickname else ("", [])


def list_weighings(store: Store, req: Request) -> Response:
    """GET /weighings (``?nickname=`` filters by subject)."""
    where, params = _subject_filter(req)
    rows = store.all(f"SELECT * FROM weighings {where} ORDER BY date_time", params)
    return paginate(req, [weighing(req, r) for r in rows])


def create_weighing(store: Store, req: Request) -> Response:
    """POST /weighings: date_time defaults to now, user to the requesting user."""
    data = req.data()
    errors = Errors()
    subject = _required_relation(store, data, "subject", "subjects", "nickname", errors)
    weight = number(data.get("weight"), "weight", errors)
    if "weight" not in data:
        errors.add("weight", REQUIRED)
    user = relation(store, "users", "username", data.get("user"), "user", errors)
    when = date_time(data.get("date_time"), "date_time", errors)
    if errors:
        raise field_errors(errors)
    row = {
        "id": new_id(),
        "subject": subject,
        "date_time": when or now(),
        "weight": weight,
        "user": user or req.user["username"],
    }
    store.insert("weighings", row)
    return Response.json(201, weighing(req, row))


def read_weighing(store: Store, req: Request, id: str) -> Response:
    """GET /weighings/<id>."""
    row = store.one("SELECT * FROM weighings WHERE id = ?", (id,))
    if row is None:
        raise not_found("Weighing")
    return Response.json(200, weighing(req, row))


def list_water_administrations(store: Store, req: Request) -> Response:
    """GET /water-administrations (``?nickname=`` filters by subject)."""
    where, params = _subject_filter(req)
    rows = store.all(f"SELECT * FROM water_administrations {where} ORDER BY date_time", params)
    return paginate(req, [water_administration(req, r) for r in rows])


def create_water_administration(store: Store, req: Request) -> Response:
    """POST /water-administrations."""
    data = req.data()
    errors = Errors()
    subject = _required_relation(store, data, "subject", "subjects", "nickname", errors)
    volume = number(data.get("water_administered"), "water_administered", errors)
    water_type = relation(
        store, "water_types", "name", data.get("water_type"), "water_type", errors
    )
    user = relation(store, "users", "username", data.get("user"), "user", errors)
    when = date_time(data.get("date_time"), "date_time", errors)
    session = data.get("session")
    if session is not None and store.one("SELECT 1 FROM sessions WHERE id = ?", (session,)) is None:
        errors.add("session", f'Invalid pk "{session}" - object does not exist.')
    if errors:
        raise field_errors(errors)
    row = {
        "id": new_id(),
        "subject": subject,
        "date_time": when or now(),
        "water_administered": volume,
        "water_type": water_type or "Water",
        "user": user or req.user["username"],
        "session": session,
        "adlib": boolean(data.get("adlib", False)),
    }
    store.insert("water_administrations", row)
    return Response.json(201, water_administration(req, row))


def read_water_administration(store: Store, req: Request, id: str) -> Response:
    """GET /water-administrations/<id>."""
    row = store.one("SELECT * FROM water_administrations WHERE id = ?", (id,))
    if row is None:
        raise not_found("WaterAdministration")
    return Response.json(200, water_administration(req, row))


def _required_relation(
    store: Store, data: dict[str, Any], name: str, table: str, column: str, errors: Errors
) -> str | None:
    if data.get(name) is None:
        errors.add(name, REQUIRED)
        return None
    return relation(store, table, column, data[name], name, errors)


ID = rf"(?P<id>{UUID_RE})"

ROUTES = (
    Route(r"/weighings", {"GET": list_weighings, "POST": create_weighing}),
    Route(rf"/weighings/{ID}", {"GET": read_weighing}),
    Route(
        r"/water-administrations",
        {"GET": list_water_administrations, "POST": create_water_administration},
    ),
    Route(rf"/water-administrations/{ID}", {"GET": read_water_administration}),
)
