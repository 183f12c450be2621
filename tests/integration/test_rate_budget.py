"""The shared per-tenant budget, on a real Redis, with a test clock."""

from __future__ import annotations

import pytest
from redis import Redis

from connectors.base import DailyLimitReached, RateLimited
from connectors.ratelimit import RateBudget


def test_minute_window_waits_then_refuses_and_the_day_runs_out(redis_url, clock) -> None:  # type: ignore[no-untyped-def]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds=seconds)

    redis = Redis.from_url(redis_url)
    budget = RateBudget(redis, "xero", per_minute=3, per_day=5, max_wait_seconds=70,
                        clock=clock, sleep=sleep)
    for _ in range(3):
        budget.take("tenant-a")
    assert slept == []
    budget.take("tenant-a")  # the minute is full: waits for the oldest slot to free
    assert slept == [60.0]
    budget.take("tenant-b")  # another tenant has its own budget
    budget.take("tenant-a")
    with pytest.raises(DailyLimitReached):
        budget.take("tenant-a")

    impatient = RateBudget(redis, "xero", per_minute=1, per_day=100, max_wait_seconds=5,
                           clock=clock, sleep=sleep)
    impatient.take("tenant-c")
    with pytest.raises(RateLimited) as caught:
        impatient.take("tenant-c")
    assert caught.value.retry_after == 60.0 and caught.value.problem == "Minute"


def test_a_429_puts_the_tenant_in_a_cooldown_shared_by_every_worker(redis_url, clock) -> None:  # type: ignore[no-untyped-def]
    redis = Redis.from_url(redis_url)
    one = RateBudget(redis, "xero", per_minute=60, per_day=5000, clock=clock)
    other = RateBudget(Redis.from_url(redis_url), "xero", per_minute=60, per_day=5000,
                       clock=clock)
    one.cool_down("tenant-a", 30)
    with pytest.raises(RateLimited) as caught:
        other.take("tenant-a")
    assert caught.value.problem == "Cooldown" and 29 < caught.value.retry_after <= 30
    other.take("tenant-b")  # others are not held up
    redis.delete("dunwell:budget:xero:tenant-a:cooldown")  # as its expiry would
    other.take("tenant-a")


def test_the_app_wide_minute_is_shared_by_all_tenants(redis_url, clock) -> None:  # type: ignore[no-untyped-def]
    budget = RateBudget(Redis.from_url(redis_url), "xero", per_minute=60, per_day=5000,
                        app_per_minute=3, max_wait_seconds=0, clock=clock)
    for tenant in ("a", "b", "c"):
        budget.take(tenant)
    with pytest.raises(RateLimited):
        budget.take("d")
    clock.advance(seconds=61)
    budget.take("d")


def test_no_more_than_the_allowed_calls_are_in_flight_at_once(redis_url, clock) -> None:  # type: ignore[no-untyped-def]
    import threading

    budget = RateBudget(Redis.from_url(redis_url), "xero", per_minute=1000, per_day=5000,
                        concurrent=2, max_wait_seconds=10, clock=clock)
    inside, most, lock = 0, 0, threading.Lock()
    release = threading.Event()

    def one_call() -> None:
        nonlocal inside, most
        with budget.call("tenant-a"):
            with lock:
                inside += 1
                most = max(most, inside)
            release.wait(0.2)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=one_call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert most == 2 and inside == 0
    held = RateBudget(Redis.from_url(redis_url), "xero", per_minute=1000, per_day=5000,
                      concurrent=1, max_wait_seconds=0.1, clock=clock)
    with held.call("tenant-b"), pytest.raises(RateLimited) as caught, held.call("tenant-b"):
        pass
    assert caught.value.problem == "Concurrent"
