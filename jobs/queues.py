"""RQ queues and deterministic enqueueing: a second enqueue of the same work is harmless."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import current_app
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus

from app.providers import redis_client

RESULT_TTL_SECONDS = 3600
FINISHED = {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.STOPPED}


def queue() -> Queue:
    return Queue(current_app.config["RQ_QUEUE"], connection=redis_client())


def enqueue_once(fn: Callable[..., Any], *args: Any, job_id: str, at: datetime | None = None,
                 retry: Retry | None = None, job_timeout: int = 1800) -> Job:
    """Enqueue unless the same job id is already waiting or running; then return that one."""
    q = queue()
    options: dict[str, Any] = {"job_id": job_id, "unique": True, "retry": retry,
                               "result_ttl": RESULT_TTL_SECONDS, "failure_ttl": 86400,
                               "job_timeout": job_timeout}
    for _ in range(2):
        try:
            if at is not None:
                return q.enqueue_at(at, fn, *args, **options)
            return q.enqueue(fn, *args, **options)
        except DuplicateJobError:
            try:
                existing = Job.fetch(job_id, connection=q.connection)
            except NoSuchJobError:
                continue
            if existing.get_status(refresh=True) not in FINISHED:
                return existing
            existing.delete()
    raise RuntimeError(f"could not enqueue job {job_id}")
