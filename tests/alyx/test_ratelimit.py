"""The client-side rate limit, on a fake clock."""

import threading

import pytest

from one_flows.alyx.ratelimit import RateLimiter


def test_requests_beyond_the_limit_wait_for_the_window_to_slide(fake_clock):
    clock = fake_clock
    limiter = RateLimiter(3, period=60.0, clock=clock, sleep=clock.sleep)
    waits = []
    for start in (0.0, 10.0, 20.0, 25.0, 26.0):
        clock.now = max(clock.now, start)
        waits.append(limiter.acquire())
    # the 4th waits until the 1st is a minute old (60 - 25), the 5th until the 2nd is (70 - 60)
    assert waits == [0.0, 0.0, 0.0, 35.0, 10.0]


def test_no_waiting_below_the_limit(fake_clock):
    clock = fake_clock
    limiter = RateLimiter(100, clock=clock, sleep=clock.sleep)
    assert sum(limiter.acquire() for _ in range(100)) == 0.0
    assert clock.sleeps == []


def test_threads_share_one_limit(fake_clock):
    clock = fake_clock
    limiter = RateLimiter(10, period=60.0, clock=clock, sleep=clock.sleep)
    threads = [threading.Thread(target=limiter.acquire) for _ in range(25)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 25 starts at 10 a minute need two full windows of waiting
    assert clock.now == 120.0


def test_invalid_limits_are_refused():
    with pytest.raises(ValueError, match="at least 1"):
        RateLimiter(0)
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(1, period=0)
