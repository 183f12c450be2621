"""The RQ worker process: one app, one app context, jobs run in-process.

A worker outlives the infrastructure it stands on: a database connection terminated under a
job (a failover, `pg_terminate_backend`) costs that job, never the worker; a Redis outage ends
RQ's work loop, and `run_worker` starts it again once Redis answers, with a growing wait in
between. A worker ends by itself only when it was asked to (SIGTERM, SIGINT, burst mode)."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from rq.exceptions import StopRequested
from sqlalchemy.exc import SQLAlchemyError

from collect import shared_clock
from collect.providers import redis_client
from jobs.queues import queue_overdue_jobs
from jobs.tasks import SWEEP_EVERY, ensure_schedules
from observability.jobs import perform_observed
from store.db import db

log = logging.getLogger(__name__)


def drop_session() -> None:
    """End the job's session. When its connection died under it (the database restarted, the
    backend was terminated), closing it raises: the session is forgotten all the same, and the
    pool hands the next job a live connection (SQLAlchemy drops the pool's connections of that
    time on a lost one, and store.db.ping_when_idle checks any that sat idle)."""
    try:
        db.session.remove()
    except SQLAlchemyError as exc:
        log.warning("worker: the database connection was lost (%s); the next job opens a new "
                    "one", exc.__class__.__name__)
        db.session.registry.clear()


class AppWorker(SimpleWorker):
    """Runs jobs in the worker process (no fork: no database connections shared across a
    fork) and hands every job a fresh session. With `keeps_schedules`, each of RQ's maintenance
    beats also books the daily runs and sweeps the ledger (see run_maintenance_tasks)."""

    def __init__(self, *args: Any, keeps_schedules: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keeps_schedules = keeps_schedules

    @property
    def dequeue_timeout(self) -> int:
        """Wait for a job no longer than one maintenance beat. RQ's default (worker TTL - 15 s,
        about 400 s) keeps an idle worker inside one BLPOP for that long, and the beat is the
        only place a worker takes over the scheduler of one that was killed (its lock expires
        61 s later): with every worker idle, scheduled jobs (retries, the sweep, daily runs)
        would wait up to seven minutes for a job that wakes someone up."""
        return max(1, int(self.maintenance_interval))

    # How long the command listener (stop-job, kill-horse) waits for a message before it looks at
    # its stop flag again. With RQ's 60 s a worker's exit often took a minute: once the
    # unsubscribe is answered, redis-py's listener waits the whole timeout for a subscription
    # that never comes, and stopping it (redis-py 8) joins that thread.
    PUBSUB_WAIT_SECONDS = 0.5

    def subscribe(self) -> None:
        """RQ's subscription to this worker's command channel, with a short listener wait."""
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        # rq's Worker sets pubsub_thread = None unannotated, so mypy takes its type as None.
        self.pubsub_thread = self.pubsub.run_in_thread(  # type: ignore[assignment]
            sleep_time=self.PUBSUB_WAIT_SECONDS, daemon=True,
            exception_handler=self._pubsub_exception_handler)

    @property
    def stop_requested(self) -> bool:
        """Asked to stop (SIGTERM, SIGINT): RQ notes when, busy or idle."""
        return bool(self._stop_requested) or self._shutdown_requested_date is not None

    def perform_job(self, job: Any, queue: Any) -> bool:
        try:
            return perform_observed(job, super().perform_job, job, queue)  # ids, metrics
        finally:
            drop_session()

    def run_maintenance_tasks(self) -> None:
        """RQ's own upkeep, then ours: booked jobs long past their time queued (their
        scheduler's worker was killed), every connected organisation's daily run booked and the
        ledger swept. The sweep books its own next run, but a Redis that lost its data (flushed,
        failed over) lost that booking too; every worker re-checks on RQ's maintenance beat, so
        open actions get their jobs back without anyone restarting anything. Booking twice is
        harmless (deterministic job ids)."""
        super().run_maintenance_tasks()
        if not self.keeps_schedules:
            return
        try:
            # On the clock all workers share: a worker whose own clock runs fast would queue
            # a booked job (a daily run at its send time) that long before its time.
            now = shared_clock.now().timestamp()
            for q in self.queues:
                if overdue := queue_overdue_jobs(q, now):
                    log.warning("worker %s: %d booked job(s) of queue %s were past their time "
                                "(RQ's scheduler is not running); queued them", self.name,
                                overdue, q.name)
            ensure_schedules()
        except (SQLAlchemyError, RedisError, ValueError, RuntimeError) as exc:
            # The next beat tries again (a lost connection, a job replaced meanwhile).
            log.warning("worker %s: schedules and sweep not checked: %s", self.name, exc)
        finally:
            drop_session()


@dataclass
class Backoff:
    """How long a worker waits for Redis between two tries: `first` seconds, doubling up to
    `ceiling` (DUNWELL_WORKER_BACKOFF="first:ceiling"; tests make it short)."""

    first: float = 1.0
    ceiling: float = 30.0

    @classmethod
    def from_environment(cls) -> Backoff:
        spec = os.environ.get("DUNWELL_WORKER_BACKOFF", "")
        if not spec:
            return cls()
        first, _, ceiling = spec.partition(":")
        return cls(float(first), float(ceiling or first))

    def waits(self) -> Any:
        wait = self.first
        while True:
            yield wait
            wait = min(self.ceiling, wait * 2)


# A work loop that ran this long was healthy: the next outage starts waiting from `first`.
HEALTHY_SECONDS = 60.0


def wait_for_redis(redis: Redis, backoff: Backoff,
                   sleep: Callable[[float], None] = time.sleep) -> None:
    """Until Redis answers a PING; a stop request (SIGTERM) during the wait ends the worker."""
    for wait in backoff.waits():
        try:
            redis.ping()
            return
        except RedisError as exc:
            log.warning("worker: Redis does not answer (%s); trying again in %.0f s",
                        exc.__class__.__name__, wait)
        sleep(wait)


def _stop_on_signal(signum: int, frame: Any) -> None:
    raise StopRequested()


def run_worker(burst: bool = False, backoff: Backoff | None = None) -> None:
    """RQ's work loop, started again whenever it ends without a stop request (an
    infrastructure failure: RQ's loop quits on an error it cannot record in Redis)."""
    backoff = backoff or Backoff.from_environment()
    redis = redis_client()
    queue_name = current_app.config["RQ_QUEUE"]
    waits = backoff.waits()
    while True:
        # Outside RQ's loop a stop request ends the worker at once (RQ's own handlers, which
        # `work` installs again, would ask Redis first).
        signal.signal(signal.SIGTERM, _stop_on_signal)
        signal.signal(signal.SIGINT, _stop_on_signal)
        started = time.monotonic()
        try:
            wait_for_redis(redis, backoff)
            log.info("worker starting on queue %s", queue_name)
            # The first maintenance beat runs at once: schedules booked and the ledger swept.
            worker = AppWorker([Queue(queue_name, connection=redis)], connection=redis,
                               keeps_schedules=True,
                               maintenance_interval=max(1, int(SWEEP_EVERY.total_seconds())))
            worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
            if burst or worker.stop_requested:
                return
            ended = "without a stop request"
        except StopRequested:
            return
        except (RedisError, SQLAlchemyError, OSError) as exc:  # RQ's teardown failed too
            ended = f"on {exc.__class__.__name__}: {exc}"
        if time.monotonic() - started >= HEALTHY_SECONDS:
            waits = backoff.waits()
        wait = next(waits)
        log.warning("worker: the work loop ended %s; starting again in %.0f s", ended, wait)
        signal.signal(signal.SIGTERM, _stop_on_signal)
        signal.signal(signal.SIGINT, _stop_on_signal)
        try:
            time.sleep(wait)
        except StopRequested:
            return
