"""Subjects, listed and read by nickname."""

from __future__ import annotations

from datetime import date
from typing import Any

from ..protocol import Request, Response, Route, not_found, paginate
from ..store import Store, loads
from .care import water_administration, weighing

# IBL's water control: a restricted mouse needs 0.04 mL per gram of body weight a day.
WATER_ML_PER_GRAM = 0.04


def _age_weeks(birth_date: str | None) -> int | None:
    if not birth_date:
        return None
    return (date.today() - date.fromisoformat(birth_date)).days // 7


def _water(store: Store, nickname: str) -> tuple[float, float]:
    """Expected and remaining water of today, from the latest weighing and today's water."""
    latest = store.one(
        "SELECT weight FROM weighings WHERE subject = ? ORDER BY date_time DESC LIMIT 1",
        (nickname,),
    )
    expected = round(WATER_ML_PER_GRAM * latest["weight"], 2) if latest else 0.0
    given = store.one(
        "SELECT COALESCE(SUM(water_administered), 0) AS total FROM water_administrations "
        "WHERE subject = ? AND substr(date_time, 1, 10) = ?",
        (nickname, date.today().isoformat()),
    )
    return expected, round(max(expected - given["total"], 0.0), 2)


def _subject(store: Store, req: Request, row: dict[str, Any]) -> dict[str, Any]:
    nickname = row["nickname"]
    projects = store.column(
        "SELECT project FROM subject_projects WHERE subject = ? ORDER BY rowid", (nickname,)
    )
    session_projects = store.column(
        "SELECT DISTINCT p.project FROM session_projects p JOIN sessions s ON s.id = p.session "
        "WHERE s.subject = ? ORDER BY p.project",
        (nickname,),
    )
    expected, remaining = _water(store, nickname)
    return {
        "nickname": nickname,
        "url": req.absolute(f"/subjects/{nickname}"),
        "id": row["id"],
        "responsible_user": row["responsible_user"],
        "birth_date": row["birth_date"],
        "age_weeks": _age_weeks(row["birth_date"]),
        "death_date": row["death_date"],
        "species": row["species"],
        "sex": row["sex"],
        "litter": row["litter"],
        "strain": row["strain"],
        "source": row["source"],
        "line": row["line"],
        "projects": projects,
        "session_projects": session_projects,
        "lab": row["lab"],
        "genotype": loads(row["genotype"]) or [],
        "description": row["description"] or "",
        "alive": bool(row["alive"]),
        "reference_weight": row["reference_weight"],
        "last_water_restriction": None,
        "expected_water": expected,
        "remaining_water": remaining,
        "json": loads(row["json"]),
    }


_FILTERS = {
    "nickname": "nickname = ?",
    "lab": "lab = ?",
    "responsible_user": "responsible_user = ?",
    "id": "id = ?",
}


def list_subjects(store: Store, req: Request) -> Response:
    """GET /subjects, filtered by ``nickname``, ``lab``, ``responsible_user``, ``alive``."""
    clauses, params = [], []
    for key, clause in _FILTERS.items():
        if key in req.query:
            clauses.append(clause)
            params.append(req.query[key])
    if "alive" in req.query:
        clauses.append("alive = ?")
        params.append(int(req.query["alive"].lower() in ("true", "1")))
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = store.all(f"SELECT * FROM subjects {where} ORDER BY nickname", params)
    return paginate(req, [_subject(store, req, r) for r in rows])


def read_subject(store: Store, req: Request, nickname: str) -> Response:
    """GET /subjects/<nickname>: the subject with its weighings and water administrations."""
    row = store.one("SELECT * FROM subjects WHERE nickname = ?", (nickname,))
    if row is None:
        raise not_found("Subject")
    weighings = store.all(
        "SELECT * FROM weighings WHERE subject = ? ORDER BY date_time", (nickname,)
    )
    water = store.all(
        "SELECT * FROM water_administrations WHERE subject = ? ORDER BY date_time", (nickname,)
    )
    body = _subject(store, req, row) | {
        "weighings": [weighing(req, w) for w in weighings],
        "water_administrations": [water_administration(req, w) for w in water],
    }
    return Response.json(200, body)


ROUTES = (
    Route(r"/subjects", {"GET": list_subjects}),
    Route(r"/subjects/(?P<nickname>[^/]+)", {"GET": read_subject}),
)
