"""The revision a protected dataset's file is registered under."""

from __future__ import annotations

import datetime

import pytest

from one_flows.registration.revisions import next_revision, unprotected_rel_path

TODAY = datetime.date(2026, 2, 2)


@pytest.mark.parametrize(
    ("revision", "reserved", "alpha"),
    [
        ("2020-01-01", [], "a"),
        ("2020-01-01", ["2020-01-01a", "2020-01-01b"], "a"),
        ("2020-01-01", ["2020-01-01c"], "c"),
        ("v1", ["v1a", "v1c"], "a"),
    ],
)
def test_next_revision_agrees_with_one_api(revision, reserved, alpha):
    from one.registration import RegistrationClient as OneRegistrationClient

    expected = OneRegistrationClient._next_revision(revision, reserved, alpha)
    assert next_revision(revision, reserved, alpha) == expected


def test_next_revision_needs_one_character():
    with pytest.raises(ValueError, match="one character"):
        next_revision("v1", alpha="ab")


@pytest.mark.parametrize(
    ("rel_path", "revisions", "expected"),
    [
        # never registered, or registered and not protected: stays
        ("alf/a.b.npy", [], "alf/a.b.npy"),
        ("alf/a.b.npy", [("", False)], "alf/a.b.npy"),
        # the original is protected: today's revision
        ("alf/a.b.npy", [("", True)], "alf/#2026-02-02#/a.b.npy"),
        ("alf/a.b.npy", [("2022-10-31", True), ("", True)], "alf/#2026-02-02#/a.b.npy"),
        # the latest revision is not protected: into it, if it is dated, else today's
        ("alf/a.b.npy", [("2022-10-31", False), ("", True)], "alf/#2022-10-31#/a.b.npy"),
        ("alf/a.b.npy", [("manual", False), ("", True)], "alf/#2026-02-02#/a.b.npy"),
        # today's revision is protected: the next letter
        ("alf/a.b.npy", [("2026-02-02", True), ("", True)], "alf/#2026-02-02a#/a.b.npy"),
        ("alf/a.b.npy", [("2026-02-02c", True), ("", True)], "alf/#2026-02-02d#/a.b.npy"),
        # a file already in a revision folder: stays unless that revision is protected
        ("alf/#v1#/a.b.npy", [("v1", False)], "alf/#v1#/a.b.npy"),
        ("alf/#v1#/a.b.npy", [("v1", True), ("v1a", True)], "alf/#v1b#/a.b.npy"),
        # no collection
        ("a.b.npy", [("", True)], "#2026-02-02#/a.b.npy"),
    ],
)
def test_unprotected_rel_path_follows_one_apis_rules(rel_path, revisions, expected):
    assert unprotected_rel_path(rel_path, revisions, TODAY) == expected


def test_a_protected_todays_revision_is_never_chosen():
    # ONE-api picks today's revision here, which the server then refuses.
    revisions = [("2026-03-01", True), ("2026-02-02", True), ("", True)]
    assert unprotected_rel_path("alf/a.b.npy", revisions, TODAY) == "alf/#2026-02-02a#/a.b.npy"
