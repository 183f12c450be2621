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


def test_a_spent_day_defers_until_the_providers_day_ends(redis_url, clock) -> None:  # type: ignore[no-untyped-def]
    budget = RateBudget(Redis.from_url(redis_url), "xero", per_minute=60, per_day=1,
                        clock=clock)
    budget.take("tenant-a")
    with pytest.raises(DailyLimitReached) as caught:
        budget.take("tenant-a")
    assert caught.value.retry_after == 14 * 3600.0  # 10:00 UTC -> 00:00 UTC
    clock.advance(hours=14)
    budget.take("tenant-a")  # a new day, a new budget


def test_a_shorter_429_never_shortens_a_longer_cooldown(redis_url, clock) -> None:  # type: ignore[no-untyped-def]
    budget = RateBudget(Redis.from_url(redis_url), "xero", per_minute=60, per_day=5000,
                        clock=clock)
    budget.cool_down("tenant-a", 60)
    budget.cool_down("tenant-a", 1)
    assert 59 < budget.cooling("tenant-a") <= 60
    budget.cool_down("tenant-a", 120)
    assert 119 < budget.cooling("tenant-a") <= 120


def test_quickbooks_batches_have_a_minute_window_of_their_own(redis_url, clock) -> None:  # type: ignore[no-untyped-def]
    budget = RateBudget(Redis.from_url(redis_url), "quickbooks", per_minute=500, per_day=10**6,
                        concurrent=10, batch_per_minute=2, max_wait_seconds=0, clock=clock)
    budget.take("realm", batch=True)
    budget.take("realm", batch=True)
    with pytest.raises(RateLimited) as caught:
        budget.take("realm", batch=True)
    assert caught.value.retry_after == 60.0
    budget.take("realm")  # single calls still go
    clock.advance(seconds=60)
    budget.take("realm", batch=True)


def test_a_call_waiting_for_a_place_in_flight_takes_no_slot_of_the_minute(redis_url, clock) -> None:  # type: ignore[no-untyped-def]
    budget = RateBudget(Redis.from_url(redis_url), "xero", per_minute=2, per_day=5000,
                        concurrent=1, max_wait_seconds=0.1, clock=clock)
    with budget.call("tenant-a"), pytest.raises(RateLimited) as caught, budget.call("tenant-a"):
        pass
    assert caught.value.problem == "Concurrent"
    with budget.call("tenant-a"):  # the second of two slots: the refused call took none
        pass


@pytest.mark.serial  # a share of the allowed calls in scaled time: needs the CPU it measures
def test_many_tenants_and_workers_use_the_budget_without_a_single_429(redis_url) -> None:  # type: ignore[no-untyped-def]
    """Xero's real limits in the sandbox, 10 tenants x 4 workers, a minute every 7.5 s."""
    from benchmarks.rate_budget import run_load

    figures = run_load("xero", tenants=10, workers=4, scale=8, minutes=2, redis_url=redis_url)
    assert figures["sandbox_429s"] == 0
    assert figures["calls_answered"] <= 10 * 2 * 55  # never above our budget
    assert figures["used_share_of_allowed"] >= 0.9  # of Xero's 60 a minute
    assert figures["worst_tenant_share"] >= 0.9
    assert figures["budget_waits"] > 0  # work was waiting all along


@pytest.mark.serial  # a share of the allowed calls in scaled time: needs the CPU it measures
def test_quickbooks_workers_share_a_company_without_a_429(redis_url) -> None:  # type: ignore[no-untyped-def]
    """QuickBooks' real limits: 500 a minute and 10 at once, 12 workers on one company."""
    from benchmarks.rate_budget import run_load

    figures = run_load("quickbooks", tenants=1, workers=12, scale=6, minutes=1,
                       redis_url=redis_url)
    assert figures["sandbox_429s"] == 0
    assert figures["calls_answered"] == 450
    assert figures["used_share_of_allowed"] >= 0.9
