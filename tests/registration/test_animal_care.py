"""register_weight and register_water_administration, against ONE-api's records."""

from __future__ import annotations

import pytest

from one_flows.registration import MemberNotFound, SubjectNotFound

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _strip(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "url"}


def test_weight_record_is_one_apis(client, one_registration):
    ours = client.register_weight("algernon", 21.3456, date_time="2026-01-03T09:00:00")
    theirs = one_registration.register_weight("algernon", 21.3456, "2026-01-03T09:00:00")
    assert _strip(ours) == _strip(theirs)
    assert ours["weight"] == 21.35 and ours["user"] == "test_user"


def test_water_record_is_one_apis(client, one_registration, make_session):
    session = client.register_session(make_session({}), file_list=False)
    options = {"date_time": "2026-01-03T12:00:00", "water_type": "Hydrogel", "adlib": True}

    by_id = client.register_water_administration("algernon", 0.75, session=session.eid, **options)
    by_path = client.register_water_administration(
        "algernon", 0.75, session=session.session_path, **options
    )
    theirs = one_registration.register_water_administration(
        "algernon", 0.75, session=session.eid, **options
    )

    assert _strip(by_id) == _strip(by_path) == _strip(theirs)
    assert by_id["session"] == session.eid


@pytest.mark.parametrize("amount", [0, -1, "much", True])
def test_bad_amounts_are_refused_before_sending(client, server, amount):
    with pytest.raises(ValueError, match="positive"):
        client.register_weight("algernon", amount)
    with pytest.raises(ValueError, match="positive"):
        client.register_water_administration("algernon", amount)
    assert server.request_count("POST") == 0


def test_unknown_members_and_sessions(client, make_session, tmp_path):
    with pytest.raises(SubjectNotFound):
        client.register_weight("nobody", 20)
    with pytest.raises(MemberNotFound, match="ghost"):
        client.register_water_administration("algernon", 1, user="ghost")
    with pytest.raises(ValueError, match="no session id"):
        client.register_water_administration(
            "algernon", 1, session=tmp_path / "algernon/2026-01-09/001"
        )
    with pytest.raises(TypeError, match="volume_ml"):
        client.register_water_administration("algernon", 1, volume_ml=2)


def test_assert_exists(client):
    assert client.assert_exists("algernon", "subjects")["nickname"] == "algernon"
    assert [u["username"] for u in client.assert_exists(["test_user"], "users")] == ["test_user"]
    with pytest.raises(MemberNotFound, match="nowhere"):
        client.assert_exists("nowhere", "data-repository")
