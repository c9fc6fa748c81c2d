"""The retry policy: what is retried, how often, after how long, and when resending is safe."""

import pytest
import requests

from one_flows.alyx import (
    AlyxNotFound,
    AlyxRequestError,
    AlyxServerError,
    AlyxTransientError,
    RetryPolicy,
)
from one_flows.alyx.retry import can_resend, is_idempotent

NO_JITTER = RetryPolicy(max_attempts=6, base=1.0, cap=10.0, jitter=0.0)


def test_backoff_doubles_up_to_the_cap():
    exc = AlyxTransientError("dropped")
    assert [NO_JITTER.delay(exc, attempt) for attempt in range(1, 7)] == [
        1.0,
        2.0,
        4.0,
        8.0,
        10.0,
        None,
    ]


def test_jitter_adds_at_most_its_fraction():
    policy = RetryPolicy(base=2.0, jitter=0.5)
    delays = {policy.delay(AlyxTransientError("x"), 1) for _ in range(200)}
    assert all(2.0 <= delay <= 3.0 for delay in delays)
    assert len(delays) > 1


def test_retry_after_is_waited_for_in_full():
    throttled = AlyxTransientError("429", status=429, retry_after=7, may_have_run=False)
    assert NO_JITTER.delay(throttled, 1) == 7.0
    # a longer backoff still wins over a short Retry-After
    assert NO_JITTER.delay(AlyxTransientError("429", retry_after=0.5), 3) == 4.0


def test_retry_after_beyond_the_cap_gives_up():
    assert NO_JITTER.delay(AlyxTransientError("429", retry_after=3600), 1) is None


def test_retry_after_of_a_raw_requests_error():
    response = requests.Response()
    response.status_code = 429
    response.headers["Retry-After"] = "5"
    assert NO_JITTER.delay(requests.HTTPError(response=response), 1) == 5.0


def test_server_errors_are_retried_a_limited_number_of_times():
    policy = RetryPolicy(max_attempts=10, base=0.0, server_error_retries=2)
    exc = AlyxServerError("boom", status=500)
    assert [policy.delay(exc, attempt) for attempt in (1, 2, 3)] == [0.0, 0.0, None]


@pytest.mark.parametrize(
    "exc", [AlyxRequestError("bad", status=400), AlyxNotFound("no", status=404), ValueError()]
)
def test_client_errors_are_never_retried(exc):
    assert NO_JITTER.delay(exc, 1) is None


def test_raw_connection_errors_are_retried():
    assert NO_JITTER.delay(requests.ConnectionError(), 1) == 1.0


def test_invalid_policies_are_refused():
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(base=-1)


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/sessions", True),
        ("PATCH", "/sessions/1", True),
        ("put", "sessions/1", True),
        ("DELETE", "/sessions/1", True),
        ("POST", "/sessions", False),
        ("POST", "/register-file", True),
        ("POST", "/alyx/register-file/?x=1", True),
        ("POST", "/weighings", False),
    ],
)
def test_is_idempotent(method, path, expected):
    assert is_idempotent(method, path) is expected


def test_non_idempotent_requests_are_resent_only_if_they_surely_did_not_run():
    never_ran = AlyxTransientError("refused", may_have_run=False)
    may_have_run = AlyxTransientError("dropped", may_have_run=True)
    assert can_resend(never_ran, idempotent=False)
    assert not can_resend(may_have_run, idempotent=False)
    assert not can_resend(AlyxServerError("500"), idempotent=False)
    assert can_resend(may_have_run, idempotent=True)
