"""Error responses become readable exceptions of the right class; `is_transient` decides retries.

The bodies are the ones recorded from a real Alyx (alyx-contract) and from a proxy in front of it.
"""

import http.client
import json
import pickle
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from one_flows.alyx import (
    AlyxAuthError,
    AlyxError,
    AlyxNotFound,
    AlyxRequestError,
    AlyxServerError,
    AlyxTransientError,
    AlyxUnavailable,
    is_transient,
)
from one_flows.alyx.errors import error_from_exception, error_from_response, summarise_html
from one_flows.errors import is_outage

NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>"
)
DJANGO_404 = (
    '<!doctype html>\n<html lang="en">\n<head>\n  <title>Not Found</title>\n</head>\n<body>\n'
    "  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>\n"
    "</body>\n</html>\n"
)


def make_response(status, body=None, *, text=None, content_type=None, headers=None, url=None):
    response = requests.Response()
    response.status_code = status
    response.url = url or "http://alyx.test/sessions"
    if text is None:
        response._content = json.dumps(body).encode()
        response.headers["Content-Type"] = content_type or "application/json"
    else:
        response._content = text.encode()
        response.headers["Content-Type"] = content_type or "text/html; charset=utf-8"
    response.encoding = "utf-8"
    response.headers.update(headers or {})
    return response


def test_field_errors_name_every_field():
    body = {
        "subject": ["Object with nickname=nobody does not exist."],
        "number": ["A valid integer is required."],
        "status_code": 400,
    }
    exc = error_from_response(make_response(400, body), "POST", "/sessions")
    assert type(exc) is AlyxRequestError
    assert str(exc) == (
        "POST /sessions → 400: subject: Object with nickname=nobody does not exist.; "
        "number: A valid integer is required."
    )
    assert exc.errors == {
        "subject": ["Object with nickname=nobody does not exist."],
        "number": ["A valid integer is required."],
    }
    assert (exc.status, exc.method, exc.response_body) == (400, "POST", body)


def test_bad_password_is_an_auth_error_with_the_server_message():
    body = {"non_field_errors": ["Unable to log in with provided credentials."], "status_code": 400}
    exc = error_from_response(make_response(400, body), "POST", "/auth-token", login=True)
    assert isinstance(exc, AlyxAuthError)
    assert str(exc) == "POST /auth-token → 400: Unable to log in with provided credentials."


@pytest.mark.parametrize(
    "detail", ["Invalid token.", "Authentication credentials were not provided."]
)
def test_refused_credentials_are_auth_errors(detail):
    exc = error_from_response(
        make_response(403, {"detail": detail, "status_code": 403}), "GET", "/subjects"
    )
    assert isinstance(exc, AlyxAuthError)
    assert exc.message == detail


def test_a_403_about_a_protected_dataset_is_not_an_auth_error():
    body = {"status_code": 403, "detail": "Dataset 1234 is protected, cannot patch"}
    exc = error_from_response(make_response(403, body), "POST", "/register-file")
    assert type(exc) is AlyxRequestError
    assert str(exc) == "POST /register-file → 403: Dataset 1234 is protected, cannot patch"


def test_register_file_errors_use_the_error_key():
    body = {"status_code": 400, "error": 'A subject with nickname "nobody" does not exist.'}
    exc = error_from_response(make_response(400, body), "POST", "/register-file")
    assert exc.message == 'A subject with nickname "nobody" does not exist.'
    assert exc.errors == {}


def test_404_json_and_html_are_both_not_found():
    body = {"detail": "No Session matches the given query.", "status_code": 404}
    json_404 = error_from_response(make_response(404, body), "GET", "/sessions/0000")
    html_404 = error_from_response(make_response(404, text=DJANGO_404), "GET", "/me")
    assert isinstance(json_404, AlyxNotFound) and isinstance(html_404, AlyxNotFound)
    assert str(json_404) == "GET /sessions/0000 → 404: No Session matches the given query."
    assert str(html_404) == "GET /me → 404: Not Found"
    assert html_404.response_body == DJANGO_404


def test_500_json_is_a_server_error():
    body = {"status_code": 500, "detail": "list index out of range"}
    exc = error_from_response(make_response(500, body), "GET", "/sessions?date_range=2026-01-02")
    assert type(exc) is AlyxServerError
    assert str(exc) == "GET /sessions?date_range=2026-01-02 → 500: list index out of range"


def test_throttling_carries_retry_after_and_did_not_run():
    response = make_response(429, text="429 Too Many Requests", headers={"Retry-After": "7"})
    exc = error_from_response(response, "POST", "/sessions")
    assert isinstance(exc, AlyxTransientError)
    assert exc.retry_after == 7.0
    assert exc.may_have_run is False
    assert str(exc) == "POST /sessions → 429: 429 Too Many Requests"


def test_retry_after_as_an_http_date():
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    exc = error_from_response(
        make_response(429, text="", headers={"Retry-After": when}), "GET", "/x"
    )
    assert 100 < exc.retry_after <= 120


@pytest.mark.parametrize("status", [502, 503, 504])
def test_proxy_html_pages_are_summarised_not_decoded(status):
    page = NGINX_502.replace("502 Bad Gateway", f"{status} Proxy Error")
    exc = error_from_response(make_response(status, text=page), "GET", "/subjects")
    assert isinstance(exc, AlyxTransientError)
    assert exc.may_have_run is True
    assert str(exc) == f"GET /subjects → {status}: {status} Proxy Error"


def test_html_claiming_to_be_json_does_not_raise_a_decode_error():
    response = make_response(502, text=NGINX_502, content_type="application/json")
    exc = error_from_response(response, "GET", "/subjects")
    assert str(exc) == "GET /subjects → 502: 502 Bad Gateway"


def test_a_long_text_body_is_cut_to_500_characters():
    page = "<html><body><p>" + "x" * 5000 + "</p></body></html>"
    exc = error_from_response(make_response(500, text=page), "GET", "/docs/")
    assert len(exc.response_body) == 500
    assert len(str(exc)) < 300


def test_credentials_in_the_url_are_removed():
    url = "https://user:hunter2@alyx.test/sessions"
    exc = error_from_response(make_response(400, {"x": ["bad"]}, url=url), "POST", "/sessions")
    assert exc.url == "https://alyx.test/sessions"


def test_summarise_html_without_a_title_uses_the_first_text():
    page = "<html><head><style>p {}</style></head><body><h1>Server &amp; Error</h1></body></html>"
    assert summarise_html(page) == "Server & Error"
    assert summarise_html("") == "(empty body)"


def test_exceptions_survive_pickling_with_their_attributes():
    body = {"detail": "Try later", "status_code": 429}
    exc = error_from_response(make_response(429, body, headers={"Retry-After": "3"}), "GET", "/x")
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is AlyxTransientError
    assert (str(copy), copy.status, copy.retry_after, copy.may_have_run) == (
        str(exc),
        429,
        3.0,
        False,
    )


def refused():
    reason = NewConnectionError(None, "Failed to establish a new connection: refused")
    return requests.ConnectionError(MaxRetryError(None, "/x", reason))


def dropped():
    return requests.ConnectionError(
        ProtocolError("Connection aborted.", http.client.RemoteDisconnected("closed"))
    )


def test_a_refused_connection_never_reached_the_server():
    exc = error_from_exception(refused(), "POST", "/sessions", "http://alyx.test/sessions")
    assert isinstance(exc, AlyxTransientError)
    assert exc.may_have_run is False
    assert str(exc) == "POST /sessions → could not connect"


def test_a_dropped_connection_may_have_reached_the_server():
    exc = error_from_exception(dropped(), "POST", "/sessions", "http://alyx.test/sessions")
    assert isinstance(exc, AlyxTransientError)
    assert exc.may_have_run is True


def test_tls_failures_are_not_transient_but_an_outage():
    exc = error_from_exception(
        requests.exceptions.SSLError("certificate verify failed"), "GET", "/x", "https://a/x"
    )
    assert type(exc) is AlyxUnavailable
    assert not is_transient(exc)
    assert is_outage(exc)


def http_error(status):
    return requests.HTTPError(response=make_response(status, {"detail": "x"}))


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (AlyxTransientError("throttled", status=429, retry_after=1), True),
        (AlyxTransientError("dropped"), True),
        (AlyxServerError("boom", status=500), False),
        (AlyxRequestError("bad", status=400), False),
        (AlyxAuthError("who", status=403), False),
        (AlyxNotFound("gone", status=404), False),
        (AlyxError("other"), False),
        (http_error(429), True),
        (http_error(502), True),
        (http_error(503), True),
        (http_error(504), True),
        (http_error(500), False),
        (http_error(404), False),
        (requests.HTTPError("no response"), False),
        (refused(), True),
        (dropped(), True),
        (requests.ConnectTimeout(), True),
        (requests.ReadTimeout(), True),
        (requests.exceptions.SSLError(), False),
        (requests.exceptions.InvalidURL(), False),
        (ConnectionResetError(), True),
        (ConnectionRefusedError(), True),
        (TimeoutError(), True),
        (TimeoutError(), True),
        (http.client.RemoteDisconnected(), True),
        (ValueError("not a fault of the network"), False),
        (KeyError("x"), False),
    ],
)
def test_is_transient(exc, transient):
    assert is_transient(exc) is transient
