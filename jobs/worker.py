"""The RQ worker process: one app, one app context, jobs run in-process."""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app
from rq import Queue, SimpleWorker

from app.extensions import db
from app.providers import redis_client

log = logging.getLogger(__name__)


class AppWorker(SimpleWorker):
    """Runs jobs in the worker process (no fork: no database connections shared across a
    fork) and hands every job a fresh session."""

    def perform_job(self, job: Any, queue: Any) -> bool:
        try:
            return super().perform_job(job, queue)
        finally:
            db.session.remove()


def run_worker(burst: bool = False) -> None:
    from jobs.tasks import ensure_schedules

    redis = redis_client()
    queue = Queue(current_app.config["RQ_QUEUE"], connection=redis)
    booked = ensure_schedules()
    db.session.remove()
    log.info("worker starting on queue %s; %d organisation(s) scheduled", queue.name, booked)
    AppWorker([queue], connection=redis).work(burst=burst, with_scheduler=True,
                                              logging_level="INFO")
