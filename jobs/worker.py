"""The RQ worker process: one app, one app context, jobs run in-process."""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from sqlalchemy.exc import SQLAlchemyError

from app.extensions import db
from app.providers import redis_client

log = logging.getLogger(__name__)


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

    def perform_job(self, job: Any, queue: Any) -> bool:
        try:
            return super().perform_job(job, queue)
        finally:
            db.session.remove()

    def run_maintenance_tasks(self) -> None:
        """RQ's own upkeep, then ours: every connected organisation's daily run booked and the
        ledger swept. The sweep books its own next run, but a Redis that lost its data (flushed,
        failed over) lost that booking too; every worker re-checks on RQ's maintenance beat, so
        open actions get their jobs back without anyone restarting anything. Booking twice is
        harmless (deterministic job ids)."""
        super().run_maintenance_tasks()
        if not self.keeps_schedules:
            return
        from jobs.tasks import ensure_schedules

        try:
            ensure_schedules()
        except (SQLAlchemyError, RedisError) as exc:  # the next beat tries again
            log.warning("worker %s: schedules and sweep not checked: %s", self.name, exc)
        finally:
            db.session.remove()


def run_worker(burst: bool = False) -> None:
    from jobs.tasks import SWEEP_EVERY

    redis = redis_client()
    queue = Queue(current_app.config["RQ_QUEUE"], connection=redis)
    log.info("worker starting on queue %s", queue.name)
    # The first maintenance beat runs at once: schedules booked and the ledger swept.
    AppWorker([queue], connection=redis, keeps_schedules=True,
              maintenance_interval=max(1, int(SWEEP_EVERY.total_seconds()))).work(
        burst=burst, with_scheduler=True, logging_level="INFO")
