"""Gauges read at scrape time from Redis and the database: queue depth and age, workers and
the scheduler, the providers' call budgets (top tenants only), organisations needing attention.

Read by the web process that answers /metrics, so every gauge is the same whichever process a
scrape reaches. A source that does not answer turns its `dunwell_scrape_source_up` to 0 and
leaves its gauges out; the rest of the scrape still answers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime

from flask import current_app
from prometheus_client.core import GaugeMetricFamily, Metric
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.job import Job
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from app.health.checks import health_redis
from app.health.workers import worker_status
from store import clock
from store.db import db
from store.models import Connection

log = logging.getLogger(__name__)

# The tenants closest to their daily call limit get a series each; the others are counted.
TOP_TENANTS = 10
NEAR_LIMIT = 0.8
PROVIDERS = ("xero", "quickbooks")


def _gauge(name: str, documentation: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"dunwell_{name}", documentation, labels=labels)


def _oldest_queued_age(queue: Queue, now: datetime) -> float:
    """Age of the oldest job waiting (either end of the list: a webhook's sync jumps the
    queue), 0 when none waits."""
    ids = {*queue.get_job_ids(0, 1), *queue.get_job_ids(-1, 1)}  # the first, the last
    stamps = [job.enqueued_at for job in Job.fetch_many(sorted(ids), connection=queue.connection)
              if job is not None and job.enqueued_at is not None]
    if not stamps:
        return 0.0
    oldest = min(s if s.tzinfo else s.replace(tzinfo=UTC) for s in stamps)
    return max(0.0, (now - oldest).total_seconds())


def queue_metrics(redis: Redis, queue_name: str) -> Iterator[Metric]:
    queue = Queue(queue_name, connection=redis)
    now = datetime.now(UTC)
    jobs = _gauge("queue_jobs", "RQ jobs by state (queued, started, scheduled, deferred, "
                  "failed).", ["queue", "state"])
    jobs.add_metric([queue_name, "queued"], queue.count)
    for state, registry in (("started", StartedJobRegistry), ("scheduled", ScheduledJobRegistry),
                            ("deferred", DeferredJobRegistry), ("failed", FailedJobRegistry)):
        jobs.add_metric([queue_name, state], registry(queue=queue).count)
    yield jobs
    oldest = _gauge("queue_oldest_job_age_seconds", "How long the oldest queued job has "
                    "waited (0: none waits).", ["queue"])
    oldest.add_metric([queue_name], _oldest_queued_age(queue, now))
    yield oldest

    status = worker_status(redis, queue_name, now)
    workers = _gauge("rq_workers", "RQ workers registered on the queue, by state.",
                     ["queue", "state"])
    states: dict[str, int] = {"busy": 0, "idle": 0}
    for worker in status.workers:
        states[worker.state] = states.get(worker.state, 0) + 1
    for state, count in sorted(states.items()):
        workers.add_metric([queue_name, state], count)
    yield workers
    ages = [w.age_seconds for w in status.workers if w.age_seconds is not None]
    if ages:
        stalest = _gauge("rq_worker_heartbeat_age_seconds", "Seconds since the stalest "
                         "registered worker's heartbeat.", ["queue"])
        stalest.add_metric([queue_name], max(ages))
        yield stalest
    scheduler = _gauge("rq_scheduler_heartbeat_age_seconds", "Seconds since RQ's scheduler "
                       "for the queue last heartbeat (absent: no scheduler holds the queue).",
                       ["queue"])
    if status.scheduler is not None and status.scheduler.age_seconds is not None:
        scheduler.add_metric([queue_name], status.scheduler.age_seconds)
    yield scheduler


def _budget_day_keys(redis: Redis, provider: str, day: str) -> dict[str, int]:
    """Calls each tenant made today, from the budgets' day counters (connectors/ratelimit.py)."""
    prefix = f"dunwell:budget:{provider}:"
    suffix = f":day:{day}"
    keys = [key.decode() for key in redis.scan_iter(f"{prefix}*{suffix}", count=1000)]
    values = redis.mget(keys) if keys else []
    return {key[len(prefix):-len(suffix)]: int(value or 0) for key, value in zip(keys, values,
                                                                                  strict=True)}


def budget_metrics(redis: Redis, now: datetime) -> Iterator[Metric]:
    day = now.astimezone(UTC).date().isoformat()
    used = _gauge("rate_budget_day_used_ratio", f"Share of the daily call limit used today by "
                  f"the {TOP_TENANTS} busiest tenants of each provider.", ["provider", "tenant"])
    near = _gauge("rate_budget_tenants_near_limit", f"Tenants that used {NEAR_LIMIT:.0%} or "
                  "more of their daily call limit today.", ["provider"])
    active = _gauge("rate_budget_tenants", "Tenants that made a call today.", ["provider"])
    for provider in PROVIDERS:
        per_day = int(current_app.config[f"{provider.upper()}_CALLS_PER_DAY"])
        calls = _budget_day_keys(redis, provider, day)
        ratios = {tenant: count / per_day for tenant, count in calls.items()}
        for tenant, ratio in sorted(ratios.items(), key=lambda kv: -kv[1])[:TOP_TENANTS]:
            used.add_metric([provider, tenant], round(ratio, 6))
        near.add_metric([provider], sum(1 for r in ratios.values() if r >= NEAR_LIMIT))
        active.add_metric([provider], len(ratios))
    yield from (used, near, active)


def attention_metrics(redis: Redis, now: datetime) -> Iterator[Metric]:
    """Organisations the owner must act for (consent revoked: reconnect) and those whose
    provider's daily limit is spent today (told in their activity log: jobs/tasks.py)."""
    attention = _gauge("organisations_needing_attention", "Organisations needing attention, "
                       "by reason.", ["reason"])
    reconnect = db.session.scalar(select(func.count()).select_from(Connection)
                                  .where(Connection.status == "needs_reconnect")) or 0
    attention.add_metric(["needs_reconnect"], reconnect)
    day = now.astimezone(UTC).date().isoformat()
    spent = sum(1 for _ in redis.scan_iter(f"dunwell:notice:daily-limit:*:{day}", count=1000))
    attention.add_metric(["daily_limit_spent"], spent)
    yield attention


class ScrapeCollector:
    """prometheus_client's custom-collector protocol; used in a request's app context."""

    def collect(self) -> Iterator[Metric]:
        up = _gauge("scrape_source_up", "Whether a source of scrape-time gauges answered.",
                    ["source"])
        redis = health_redis()
        now = clock.now()
        metrics: list[Metric] = []
        try:
            metrics += queue_metrics(redis, current_app.config["RQ_QUEUE"])
            metrics += budget_metrics(redis, now)
            up.add_metric(["redis"], 1)
        except (RedisError, OSError) as error:
            log.warning("metrics: Redis did not answer (%s)", type(error).__name__)
            up.add_metric(["redis"], 0)
        try:
            metrics += attention_metrics(redis, now)
            up.add_metric(["database"], 1)
        except (SQLAlchemyError, RedisError, OSError) as error:
            log.warning("metrics: attention gauges not read (%s)", type(error).__name__)
            db.session.rollback()
            up.add_metric(["database"], 0)
        yield up
        yield from metrics
