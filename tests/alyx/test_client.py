"""AlyxClient over real HTTP against the Alyx-compatible test server."""

import logging
import threading
import uuid

import pytest
import requests

from one_flows.alyx import (
    AlyxAuthError,
    AlyxClient,
    AlyxNotFound,
    AlyxRequestError,
    AlyxServerError,
    AlyxTransientError,
    AlyxUnavailable,
    RetryPolicy,
)
from one_flows.alyx.ratelimit import RateLimiter

UNKNOWN_UUID = "00000000-0000-4000-8000-000000000000"
FAST_RETRIES = RetryPolicy(max_attempts=4, base=0.01, jitter=0.0)


@pytest.fixture
def alyx_client(alyx_server):
    with AlyxClient(
        alyx_server.url, username=alyx_server.username, password=alyx_server.password
    ) as client:
        yield client


def new_session(client, day="2026-01-03", number=1):
    return client.post(
        "/sessions",
        {
            "subject": "algernon",
            "start_time": f"{day}T10:00:00",
            "number": number,
            "lab": "cortexlab",
            "users": ["test_user"],
        },
    )


# -- authentication ---------------------------------------------------------------------------


def test_password_login_fetches_one_token_lazily(alyx_server, alyx_client):
    assert alyx_server.request_count("POST", "/auth-token") == 0
    subjects = alyx_client.get("/subjects", {"nickname": "algernon"})
    assert [s["nickname"] for s in subjects["results"]] == ["algernon"]
    alyx_client.get("/labs")
    assert alyx_server.request_count("POST", "/auth-token") == 1


def server_token(server):
    """The token the server holds for the seeded user, asked for directly."""
    credentials = {"username": server.username, "password": server.password}
    return requests.post(f"{server.url}/auth-token", data=credentials, timeout=10).json()["token"]


def test_token_login_never_asks_for_a_token(alyx_server):
    token = server_token(alyx_server)
    with AlyxClient(alyx_server.url, token=token) as client:
        assert client.get("/subjects/algernon")["nickname"] == "algernon"
    assert alyx_server.request_count("POST", "/auth-token") == 1


def test_bad_password_reports_the_server_message(alyx_server):
    client = AlyxClient(alyx_server.url, username="test_user", password="wrong")
    with client, pytest.raises(AlyxAuthError) as caught:
        client.get("/subjects")
    assert str(caught.value) == (
        "POST /auth-token → 400: Unable to log in with provided credentials."
    )
    assert alyx_server.request_count("GET", "/subjects") == 0


def test_unknown_token_without_password_is_an_auth_error(alyx_server):
    client = AlyxClient(alyx_server.url, token="0" * 40)
    with client, pytest.raises(AlyxAuthError, match=r"403: Invalid token\.$"):
        client.get("/subjects")


def test_no_credentials_is_an_auth_error(alyx_server):
    with AlyxClient(alyx_server.url) as client, pytest.raises(AlyxAuthError) as caught:
        client.post("/sessions", {"subject": "algernon"})
    assert caught.value.status == 403
    assert caught.value.message == "Authentication credentials were not provided."


def test_an_expired_token_is_replaced_once_then_the_request_succeeds(alyx_server, alyx_client):
    alyx_client.get("/labs")
    alyx_server.expire_tokens()
    assert len(alyx_client.get("/labs")["results"]) == 2
    assert alyx_server.request_count("POST", "/auth-token") == 2
    assert alyx_server.request_count("GET", "/labs") == 3


def test_threads_that_find_the_token_expired_log_in_again_only_once(alyx_server, alyx_client):
    alyx_client.get("/labs")
    alyx_server.expire_tokens()
    barrier = threading.Barrier(8)
    results, errors = [], []

    def work():
        barrier.wait()
        try:
            results.append(alyx_client.get("/labs")["count"])
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results == [2] * 8
    assert alyx_server.request_count("POST", "/auth-token") == 2


def test_an_expired_token_without_password_is_an_auth_error(alyx_server):
    with AlyxClient(alyx_server.url, token=server_token(alyx_server)) as by_token:
        by_token.get("/labs")
        alyx_server.expire_tokens()
        with pytest.raises(AlyxAuthError, match="Invalid token"):
            by_token.get("/labs")


def test_settings_from_the_environment(alyx_server, monkeypatch):
    monkeypatch.setenv("ALYX_URL", alyx_server.url)
    monkeypatch.setenv("ALYX_LOGIN", alyx_server.username)
    monkeypatch.setenv("ALYX_PASSWORD", alyx_server.password)
    with AlyxClient() as client:
        assert client.get("/users/test_user")["username"] == "test_user"


def test_the_token_one_api_cached_is_used(alyx_server, tmp_path, monkeypatch):
    import one.webclient

    monkeypatch.setenv("HOME", str(tmp_path))
    one_client = one.webclient.AlyxClient(
        base_url=alyx_server.url,
        username=alyx_server.username,
        password=alyx_server.password,
        silent=True,
    )
    assert one_client.is_logged_in
    logins = alyx_server.request_count("POST", "/auth-token")
    with AlyxClient(alyx_server.url) as client:
        assert client.username == alyx_server.username
        assert client.get("/subjects/algernon")["nickname"] == "algernon"
    assert alyx_server.request_count("POST", "/auth-token") == logins


# -- methods ----------------------------------------------------------------------------------


def test_create_update_replace_and_delete_a_session(alyx_server, alyx_client):
    created = new_session(alyx_client)
    path = f"/sessions/{created['id']}"
    assert alyx_client.patch(path, {"task_protocol": "ephys"})["task_protocol"] == "ephys"
    replaced = alyx_client.put(path, {**created, "number": 2, "json": {"k": "v"}})
    assert (replaced["number"], replaced["json"]) == (2, {"k": "v"})
    assert alyx_client.delete(path) is None
    with pytest.raises(AlyxNotFound):
        alyx_client.get(path)


def test_form_encoded_body(alyx_client):
    weighing = alyx_client.post("/weighings", data={"subject": "algernon", "weight": 25.5})
    assert (weighing["subject"], weighing["weight"]) == ("algernon", 25.5)


def test_other_json_media_types_are_parsed(alyx_client):
    schema = alyx_client.get("/api/schema", headers={"Accept": "application/vnd.oai.openapi+json"})
    assert "/sessions" in schema["paths"]


def test_a_successful_answer_that_is_not_json_is_an_error(alyx_client):
    with pytest.raises(AlyxUnavailable, match=r"GET /docs/ → 200: text/html.* instead of JSON"):
        alyx_client.get("/docs/", headers={"Accept": "text/html"})


def test_the_rate_limit_spaces_requests(alyx_client, fake_clock):
    alyx_client.rate_limiter = RateLimiter(2, period=60.0, clock=fake_clock, sleep=fake_clock.sleep)
    for _ in range(5):
        alyx_client.get("/labs")
    # six requests (a login and five GETs) at two a minute: two full windows of waiting
    assert fake_clock.sleeps == [60.0, 60.0]


# -- errors -----------------------------------------------------------------------------------


def test_validation_errors_name_each_field(alyx_client):
    with pytest.raises(AlyxRequestError) as caught:
        alyx_client.post("/sessions", {"subject": "nobody", "number": "x"})
    exc = caught.value
    assert exc.status == 400
    assert exc.errors["subject"] == ["Object with nickname=nobody does not exist."]
    assert "number" in exc.errors
    assert str(exc).startswith(
        "POST /sessions → 400: subject: Object with nickname=nobody does not exist."
    )


def test_unknown_record_is_not_found(alyx_client):
    with pytest.raises(AlyxNotFound) as caught:
        alyx_client.get(f"/sessions/{UNKNOWN_UUID}")
    assert str(caught.value) == (
        f"GET /sessions/{UNKNOWN_UUID} → 404: No Session matches the given query."
    )


def test_unrouted_path_is_not_found_with_the_html_summarised(alyx_client):
    with pytest.raises(AlyxNotFound) as caught:
        alyx_client.get("/sessions/not-a-uuid")
    assert str(caught.value) == "GET /sessions/not-a-uuid → 404: Not Found"
    assert "<title>Not Found</title>" in caught.value.response_body


def test_server_error_carries_the_server_message(alyx_client):
    with pytest.raises(AlyxServerError) as caught:
        alyx_client.get("/sessions", {"date_range": "2026-01-02"})
    assert str(caught.value) == (
        "GET /sessions?date_range=2026-01-02 → 500: list index out of range"
    )


def test_throttling_without_retries(alyx_server, alyx_client):
    alyx_server.faults.add(path="/labs", kind="status", status=429, retry_after=3, times=1)
    with pytest.raises(AlyxTransientError) as caught:
        alyx_client.get("/labs")
    assert (caught.value.status, caught.value.retry_after) == (429, 3.0)


def test_throttling_waits_as_long_as_retry_after_says(alyx_server, caplog):
    alyx_server.faults.add(path="/labs", kind="status", status=429, retry_after=1, times=1)
    with (
        AlyxClient(
            alyx_server.url,
            username=alyx_server.username,
            password=alyx_server.password,
            retries=FAST_RETRIES,
        ) as client,
        caplog.at_level(logging.WARNING, logger="one_flows.alyx"),
    ):
        assert client.get("/labs")["count"] == 2
    assert "retrying in 1.0 s" in caplog.text
    assert alyx_server.request_count("GET", "/labs") == 2


@pytest.mark.parametrize(
    ("status", "message"),
    [(502, "502 Bad Gateway"), (503, "503 Service Temporarily Unavailable")],
)
def test_proxy_error_pages(alyx_server, alyx_client, status, message):
    alyx_server.faults.add(path="/labs", kind="status", status=status, html=True, times=1)
    with pytest.raises(AlyxTransientError) as caught:
        alyx_client.get("/labs")
    assert str(caught.value) == f"GET /labs → {status}: {message}"


def test_503_without_html(alyx_server, alyx_client):
    alyx_server.faults.add(path="/labs", kind="status", status=503, times=1)
    with pytest.raises(AlyxTransientError) as caught:
        alyx_client.get("/labs")
    assert caught.value.status == 503


def test_dropped_connection(alyx_server, alyx_client):
    alyx_server.faults.add(path="/labs", kind="drop", times=1)
    with pytest.raises(AlyxTransientError) as caught:
        alyx_client.get("/labs")
    assert caught.value.status is None
    assert caught.value.may_have_run is True
    assert str(caught.value) == "GET /labs → connection dropped before a response"


def test_read_timeout_past_the_client_timeout(alyx_server):
    alyx_server.faults.add(path="/labs", kind="delay", seconds=1.0, times=1)
    client = AlyxClient(alyx_server.url, token="x" * 40, timeout=(5, 0.2))
    with client, pytest.raises(AlyxTransientError, match="timed out waiting for the response"):
        client.get("/labs")


def test_refused_connection_never_ran(alyx_server):
    url = alyx_server.url
    alyx_server.stop()
    with AlyxClient(url, token="x" * 40) as client, pytest.raises(AlyxTransientError) as caught:
        client.post("/sessions", {"subject": "algernon"})
    assert caught.value.may_have_run is False


# -- client-side retries ----------------------------------------------------------------------


@pytest.fixture
def retrying(alyx_server):
    with AlyxClient(
        alyx_server.url,
        username=alyx_server.username,
        password=alyx_server.password,
        retries=FAST_RETRIES,
    ) as client:
        yield client


def test_transient_faults_of_a_get_are_retried(alyx_server, retrying):
    alyx_server.faults.add(path="/labs", kind="drop", times=1)
    alyx_server.faults.add(path="/labs", kind="status", status=502, html=True, times=1)
    assert retrying.get("/labs")["count"] == 2
    assert alyx_server.request_count("GET", "/labs") == 3


def test_retries_stop_after_max_attempts(alyx_server, retrying):
    alyx_server.faults.add(path="/labs", kind="status", status=503)
    with pytest.raises(AlyxTransientError):
        retrying.get("/labs")
    assert alyx_server.request_count("GET", "/labs") == FAST_RETRIES.max_attempts


def test_a_post_that_may_have_run_is_not_sent_again(alyx_server, retrying):
    alyx_server.faults.add(method="POST", path="/sessions", kind="drop", times=1)
    with pytest.raises(AlyxTransientError):
        new_session(retrying)
    assert alyx_server.request_count("POST", "/sessions") == 1


def test_a_throttled_post_is_sent_again_and_creates_one_session(alyx_server, retrying):
    alyx_server.faults.add(method="POST", path="/sessions", kind="status", status=429, times=1)
    created = new_session(retrying)
    sessions = retrying.get("/sessions", {"subject": "algernon"})
    assert [s["id"] for s in sessions["results"]] == [created["id"]]
    assert alyx_server.request_count("POST", "/sessions") == 2


def test_a_post_marked_idempotent_is_sent_again(alyx_server, retrying):
    alyx_server.faults.add(method="POST", path="/sessions", kind="drop", times=1)
    retrying.post("/sessions", {"subject": "algernon", "number": 5}, idempotent=True)
    assert alyx_server.request_count("POST", "/sessions") == 2


def test_register_file_is_sent_again_after_a_proxy_error(alyx_server, retrying):
    new_session(retrying)
    alyx_server.faults.add(
        method="POST", path="/register-file", kind="status", status=502, html=True, times=1
    )
    body = {
        "created_by": "test_user",
        "name": "flatiron_cortexlab",
        "labs": "cortexlab",
        "path": "algernon/2026-01-03/001",
        "filenames": ["alf/spikes.times.npy"],
        "hashes": ["d41d8cd98f00b204e9800998ecf8427e"],
        "filesizes": [1024],
        "server_only": False,
        "default": True,
        "check_protected": False,
    }
    registered = retrying.post("/register-file", body)
    assert [d["name"] for d in registered] == ["spikes.times.npy"]
    assert alyx_server.request_count("POST", "/register-file") == 2


# -- pagination -------------------------------------------------------------------------------


@pytest.fixture
def many_dataset_types(alyx_server):
    """1,121 dataset types: the 121 seeded ones and 1,000 more."""
    for i in range(1000):
        alyx_server.add_dataset_type(f"extra.type{i:04d}")
    return 1121


def test_list_all_reads_every_page(alyx_server, alyx_client, many_dataset_types):
    records = alyx_client.list_all("/dataset-types", page_size=100)
    assert len(records) == many_dataset_types
    assert len({r["name"] for r in records}) == many_dataset_types
    assert alyx_server.request_count("GET", "/dataset-types") == 12


def test_paginate_fetches_pages_only_when_needed(alyx_server, alyx_client, many_dataset_types):
    records = alyx_client.paginate("/dataset-types", page_size=100)
    assert alyx_server.request_count("GET", "/dataset-types") == 0
    first = [next(records) for _ in range(150)]
    assert len(first) == 150
    assert alyx_server.request_count("GET", "/dataset-types") == 2
    assert sum(1 for _ in records) == many_dataset_types - 150


def test_iter_pages_yields_page_sized_lists(alyx_client, many_dataset_types):
    sizes = [len(page) for page in alyx_client.iter_pages("/dataset-types", page_size=500)]
    assert sizes == [500, 500, 121]


def test_pages_keep_the_filters(alyx_client):
    for number in (1, 2, 3):
        new_session(alyx_client, number=number)
    new_session(alyx_client, day="2026-02-01")
    records = alyx_client.list_all(
        "/sessions",
        {"subject": "algernon", "date_range": ("2026-01-03", "2026-01-03")},
        page_size=1,
    )
    assert sorted(r["number"] for r in records) == [1, 2, 3]


def test_absolute_urls_go_to_the_configured_server(alyx_server, alyx_client):
    labs = alyx_client.get("http://alyx.elsewhere.example.org/labs?name=cortexlab")
    assert [lab["name"] for lab in labs["results"]] == ["cortexlab"]
    assert alyx_server.request_count("GET", "/labs") == 1


# -- parallel use, secrets, TLS -------------------------------------------------------------


def test_parallel_requests_from_threads(alyx_client):
    errors, counts = [], []

    def work():
        try:
            for _ in range(10):
                counts.append(alyx_client.get("/labs")["count"])
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert counts == [2] * 80


def test_secrets_never_appear_in_logs_reprs_or_errors(alyx_server, caplog):
    password = alyx_server.password
    seen = []
    with caplog.at_level(logging.DEBUG):
        with AlyxClient(alyx_server.url, username="test_user", password=password) as client:
            client.get("/labs")
            tokens = [server_token(alyx_server)]
            alyx_server.expire_tokens()
            client.get("/labs")
            tokens.append(server_token(alyx_server))
            seen += [repr(client), str(client), repr(vars(client))]
            alyx_server.faults.add(path="/labs", kind="status", status=502, html=True, times=1)
            for action in (
                lambda: client.get("/labs"),
                lambda: client.post("/sessions", {"subject": "nobody"}),
                lambda: client.get(f"/sessions/{uuid.UUID(int=0)}"),
            ):
                with pytest.raises(Exception) as caught:
                    action()
                seen += [str(caught.value), repr(caught.value), str(caught.value.__dict__)]
        with AlyxClient(alyx_server.url, username="test_user", password="wrong-" + password) as bad:
            with pytest.raises(AlyxAuthError) as caught:
                bad.get("/labs")
            seen += [str(caught.value), repr(caught.value), repr(bad)]
    assert "/labs → 200" in caplog.text
    for text in [caplog.text, *seen]:
        for secret in [password, *tokens]:
            assert secret not in text


def test_turning_tls_verification_off_is_logged(alyx_server, caplog):
    with caplog.at_level(logging.WARNING, logger="one_flows.alyx"):
        AlyxClient(alyx_server.url, token="x" * 40, verify=False).close()
    assert "TLS certificate verification is off" in caplog.text


def test_a_password_needs_a_username(alyx_server):
    with pytest.raises(ValueError, match="without a username"):
        AlyxClient(alyx_server.url, password="pw")
