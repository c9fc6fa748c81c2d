"""A target's check before a run: one cheap authenticated request that says why it cannot be
used; and what the registration ledger vouches for is reported as such, not as sent."""

from __future__ import annotations

import os
import time

import pytest

from one_flows._prefect_api import free_port
from one_flows.alyx import AlyxClient
from one_flows.errors import is_outage
from one_flows.registration import Outcome, RegistrationClient
from one_flows.targets import AlyxTarget, LocalTarget, TargetUnavailable

from .conftest import GOOD_FILES


def _check(url: str, **credentials) -> TargetUnavailable:
    target = AlyxTarget(AlyxClient(url, **credentials))
    with pytest.raises(TargetUnavailable) as failed:
        target.check()
    assert is_outage(failed.value)
    return failed.value


def test_the_check_logs_in_and_reads_the_dataset_types_once(server):
    target = AlyxTarget(AlyxClient(server.url, username=server.username, password=server.password))
    target.check()
    assert [
        server.request_count(m, p) for m, p in [("POST", "/auth-token"), ("GET", "/dataset-types")]
    ] == [1, 1]
    assert len(target.dataset_types()) > 100  # kept: not read again
    target.check()  # each check asks the server again
    assert server.request_count("GET", "/dataset-types") == 2
    assert server.request_count() == 3


def test_a_wrong_password_is_bad_credentials(server):
    failed = _check(server.url, username=server.username, password="wrong-password")
    assert failed.cause == "bad credentials"
    assert str(failed).startswith(f"alyx:{server.url}: bad credentials (")
    assert "password" in str(failed) and "wrong-password" not in str(failed)


def test_no_login_at_all_is_no_credentials(server):
    failed = _check(server.url)
    assert failed.cause == "no credentials"
    assert "Authentication credentials were not provided." in str(failed)
    assert "AlyxCredentials block" in str(failed)


def test_a_refused_connection_is_unreachable():
    url = f"http://127.0.0.1:{free_port()}"
    failed = _check(url, token="t")
    assert failed.cause == "unreachable"
    assert "could not connect" in str(failed) and url in str(failed)


@pytest.mark.parametrize(("status", "cause"), [(503, "server error 503"), (429, "throttled (429)")])
def test_a_failing_server_names_its_status(server, status, cause):
    server.faults.add(method="GET", path="/dataset-types", kind="status", status=status)
    failed = _check(server.url, username=server.username, password=server.password)
    assert failed.cause == cause


def test_a_user_without_permission_is_told_so(server):
    # A 403 that is not about the credentials (those are bad credentials): a permission.
    server.faults.add(method="GET", path="/dataset-types", kind="status", status=403)
    failed = _check(server.url, username=server.username, password=server.password)
    assert failed.cause == "refused (status 403)"
    assert f"check the permissions of {server.username}" in str(failed)
    assert "TLS" not in str(failed)


def test_a_url_that_is_no_alyx_says_so(server):
    failed = _check(f"{server.url}/docs", username=server.username, password=server.password)
    assert failed.cause == "not an Alyx server"


def test_local_tables_folder_is_checked(tmp_path):
    target = LocalTarget(tmp_path / "tables")
    target.check()
    (tmp_path / "tables" / "sessions.pqt").write_bytes(b"not parquet")
    with pytest.raises(TargetUnavailable, match="tables unusable") as failed:
        target.check()
    assert is_outage(failed.value)
    (tmp_path / "tables" / "sessions.pqt").unlink()
    os.rmdir(tmp_path / "tables")
    (tmp_path / "tables").write_text("a file where the folder was")
    with pytest.raises(TargetUnavailable, match="tables unusable"):
        target.check()


def test_a_session_the_ledger_vouches_for_is_not_said_to_be_updated(client, make_session, server):
    path = make_session(GOOD_FILES)
    an_hour_ago = time.time() - 3600  # the ledger does not trust files modified just now
    for file in path.rglob("*"):
        os.utime(file, (an_hour_ago, an_hour_ago))
    first = client.register_session(path)
    assert not first.from_ledger and " created; " in first.summary()
    asked = server.request_count()

    again = RegistrationClient(client.target, digest_cache=client._digest_setting)
    report = again.register_session(path)

    assert server.request_count() == asked
    assert report.from_ledger and report.eid == first.eid
    assert {f.status for f in report.files} == {Outcome.UNCHANGED}
    assert "nothing sent" in report.summary() and "updated" not in report.summary()
