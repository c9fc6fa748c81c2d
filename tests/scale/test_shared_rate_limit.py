"""All workers together keep to one rate for an Alyx server: a Prefect global concurrency limit.

Clients in separate processes, each with its own client-side limit, take their slots from the
limit named for the server on the Prefect server (on PostgreSQL); the limit's decay is the rate
they share. With (almost) no decay, the slots are a budget of requests, which makes the sharing
visible without timing anything.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from one_flows.alyx import AlyxClient
from one_flows.alyx.ratelimit import RateLimiter
from one_flows.prefect.ratelimit import (
    SHARED_LIMIT_BATCH,
    SharedRateLimit,
    alyx_rate_limit_name,
    pace_by_shared_limit,
)

SCRIPT = Path(__file__).with_name("paced_client.py")


def test_the_limit_is_named_for_the_alyx_host():
    assert alyx_rate_limit_name("https://Alyx.Example.org/") == "alyx:alyx.example.org"
    assert alyx_rate_limit_name("http://127.0.0.1:8000") == "alyx:127.0.0.1:8000"
    with pytest.raises(ValueError, match="not an Alyx URL"):
        alyx_rate_limit_name("alyx.example.org")


def test_a_client_keeps_to_the_limit_only_when_the_prefect_server_has_a_rate(
    shared_limit, alyx_server
):
    with AlyxClient(alyx_server.url) as alyx:
        own = alyx.rate_limiter
        assert not pace_by_shared_limit(alyx)  # none on the server
        shared_limit(alyx_rate_limit_name(alyx_server.url), limit=5, decay=0.0)
        assert not pace_by_shared_limit(alyx)  # a limit without decay is no rate
        assert alyx.rate_limiter is own
    with AlyxClient("http://127.0.0.1:9") as other:  # another Alyx: another limit
        shared_limit(alyx_rate_limit_name(other.base_url), limit=50, decay=8.0, active=False)
        assert not pace_by_shared_limit(other)
    with AlyxClient("http://127.0.0.1:10") as third:
        shared_limit(alyx_rate_limit_name(third.base_url), limit=50, decay=8.0)
        assert pace_by_shared_limit(third)
        paced = third.rate_limiter
        assert isinstance(paced, SharedRateLimit) and paced.local is not None
        assert paced.batch == SHARED_LIMIT_BATCH


def test_a_small_limit_takes_smaller_batches():
    assert SharedRateLimit("alyx:x", RateLimiter(300), batch=3).batch == 3
    with pytest.raises(ValueError, match="batch"):
        SharedRateLimit("alyx:x", batch=0)


def test_clients_in_separate_processes_share_the_limits_slots(
    prefect_on_postgres, shared_limit, alyx_server
):
    alyx_server.add_subject("KS022")
    budget = 2 * SHARED_LIMIT_BATCH
    shared_limit(alyx_rate_limit_name(alyx_server.url), limit=budget, decay=0.001)
    env = {
        **os.environ,
        **prefect_on_postgres.environment,
        "ALYX_LOGIN": alyx_server.username,
        "ALYX_PASSWORD": alyx_server.password,
    }
    wanted = 3 * SHARED_LIMIT_BATCH  # each alone: within its own 300 requests a minute
    clients = [
        subprocess.Popen(
            [sys.executable, str(SCRIPT), alyx_server.url, str(wanted)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    sent = []
    for client in clients:
        out, err = client.communicate(timeout=120)
        assert client.returncode == 0, err[-3000:]
        sent.append(int(out.strip().splitlines()[-1]))

    # Every request, the logins included, took a slot: together they sent the budget, no more.
    assert alyx_server.request_count() == budget
    assert sum(sent) == budget - alyx_server.request_count("POST", "/auth-token")
