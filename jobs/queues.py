"""RQ queues and deterministic enqueueing: a second enqueue of the same work is harmless."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from flask import current_app
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError, InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry

from collect.providers import redis_client
from observability.jobs import job_meta

RESULT_TTL_SECONDS = 3600
AT_FRONT = "at_front"  # in a job's meta: queued ahead of the waiting jobs (a payment's sync)
FINISHED = {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.STOPPED}
# Every retry interval is multiplied by this: a deployment leaves it at 1; the chaos test runs
# its faults at a tenth of the real time (as it shortens leases and the sweeper's beat).
RETRY_SCALE = float(os.environ.get("DUNWELL_RETRY_SCALE", "1"))


def retry_after(tries: int, seconds: Sequence[int]) -> Retry:
    """RQ's Retry: at most `tries` more runs, after `seconds` (each scaled by
    DUNWELL_RETRY_SCALE, at least one second)."""
    return Retry(max=tries, interval=[max(1, round(s * RETRY_SCALE)) for s in seconds])


def queue() -> Queue:
    return Queue(current_app.config["RQ_QUEUE"], connection=redis_client())


def enqueue_once(fn: Callable[..., Any], *args: Any, job_id: str, at: datetime | None = None,
                 retry: Retry | None = None, job_timeout: int = 1800,
                 replace_started: bool = False, at_front: bool = False) -> Job:
    """Enqueue unless the same job id is already waiting or running; then return that one.

    `replace_started`: a job RQ still calls started is treated as gone. The sweeper asks for
    this for actions whose lease ran out: the worker running that job died (`kill -9` leaves
    the job "started" until RQ notices, up to its timeout later); the ledger's claim keeps a
    worker that is in fact alive from running the action twice.

    `at_front`: the job goes to the head of the queue, ahead of the jobs waiting there (a
    webhook's targeted sync, so a payment is seen before the actions queued behind it run).
    Not for a job booked for later (`at`): when it is due RQ's scheduler queues it. Such a
    job is marked (`AT_FRONT` in its meta) so that a long job can step aside for it
    (`front_job_waiting`)."""
    if at_front and at is not None:
        raise ValueError("at_front applies to a job queued now, not one booked for later")
    q = queue()
    meta = job_meta()  # the request id, for the job's logs
    if at_front:
        meta[AT_FRONT] = "1"
    options: dict[str, Any] = {"job_id": job_id, "unique": True, "retry": retry,
                               "result_ttl": RESULT_TTL_SECONDS, "failure_ttl": 86400,
                               "job_timeout": job_timeout, "meta": meta}
    gone = FINISHED | ({JobStatus.STARTED} if replace_started else set())
    for _ in range(3):
        try:
            if at is not None:
                return q.enqueue_at(at, fn, *args, **options)
            return q.enqueue(fn, *args, at_front=at_front, **options)
        except DuplicateJobError:
            try:
                existing = Job.fetch(job_id, connection=q.connection)
            except NoSuchJobError:
                continue
            try:
                status = existing.get_status(refresh=True)
                if status not in gone:
                    return existing
                if status == JobStatus.STARTED:
                    StartedJobRegistry(queue=q).remove_executions(existing)
                existing.delete()
            except (InvalidJobOperation, ValueError):
                # Deleted meanwhile (another sweeper replaced it), or it finished meanwhile and
                # RQ dropped its execution ("Execution ... not found"): look again.
                continue
    raise RuntimeError(f"could not enqueue job {job_id}")


def enqueue_many_once(fn: Callable[..., Any], calls: Sequence[tuple[tuple[Any, ...], str]],
                      retry: Retry | None = None, job_timeout: int = 1800) -> int:
    """`enqueue_once` for many calls (arguments, job id) in a few round trips: which ids
    have a job is read in one, the calls without one are enqueued in one pipeline, and the
    few whose id has a job go through `enqueue_once`. A daily run's thousands of new actions
    are queued this way. Another process queueing the same id between the read and the
    pipeline gives the id two queue entries; the ledger's claim runs the action once.
    Returns how many jobs were queued."""
    if not calls:
        return 0
    q = queue()
    existing = Job.fetch_many([job_id for _, job_id in calls], connection=q.connection)
    fresh = [call for call, job in zip(calls, existing, strict=True) if job is None]
    for args, job_id in (call for call, job in zip(calls, existing, strict=True)
                         if job is not None):
        enqueue_once(fn, *args, job_id=job_id, retry=retry, job_timeout=job_timeout)
    meta = job_meta()
    for start in range(0, len(fresh), 1000):
        with q.connection.pipeline() as pipe:
            q.enqueue_many([Queue.prepare_data(
                fn, args=args, job_id=job_id, retry=retry, result_ttl=RESULT_TTL_SECONDS,
                failure_ttl=86400, timeout=job_timeout, meta=dict(meta))
                for args, job_id in fresh[start:start + 1000]], pipeline=pipe)
            pipe.execute()
    return len(calls)


def front_job_waiting() -> bool:
    """Whether the job at the head of the queue was queued at the front (`enqueue_once(...,
    at_front=True)`: a webhook's targeted sync, a card payment's events): a job that runs many
    actions looks between two of them and steps aside for it. One round trip while the head
    is another action job (the daily run's queue), two otherwise."""
    q = queue()
    head = q.connection.lindex(q.key, 0)
    if head is None:
        return False
    job_id = head.decode() if isinstance(head, bytes) else str(head)
    if job_id.startswith("action-"):
        return False
    try:
        job = Job.fetch(job_id, connection=q.connection)
    except NoSuchJobError:
        return False
    return bool((job.meta or {}).get(AT_FRONT))


# RQ's scheduler moves a booked job to its queue within a second or two of its time, from the
# one process that holds the scheduler's lock. A worker killed while it held that lock (kill -9,
# the OOM killer) leaves the lock for 61 s, and a worker restarted after a Redis outage may be
# the holder that is killed next: retries, the sweep's next run and the daily runs would wait
# that long each time. A job this far past its time was missed, and any worker's maintenance
# beat queues it (`queue_overdue_jobs`).
OVERDUE_AFTER_SECONDS = float(os.environ.get("DUNWELL_OVERDUE_AFTER_SECONDS", "10"))


def queue_overdue_jobs(q: Queue, now: float, overdue_after: float = OVERDUE_AFTER_SECONDS) -> int:
    """Queue the booked jobs of `q` whose time passed more than `overdue_after` seconds before
    `now` (a Unix time), as RQ's scheduler would have. Each is taken out of the booking set
    first (ZREM): of any number of workers doing this at once, one queues it. A scheduler that
    is alive but that late may queue it too; every job is safe to run twice (the ledger's
    claim, the sync lease, deterministic ids). Returns how many were queued."""
    registry = q.scheduled_job_registry
    queued = 0
    for job_id in registry.get_jobs_to_schedule(int(now - overdue_after)):
        try:
            job = Job.fetch(job_id, connection=q.connection, serializer=q.serializer)
        except NoSuchJobError:  # its data expired: nothing to run, as RQ's scheduler drops it
            registry.remove(job_id)
            continue
        try:
            registry.requeue(job, at_front=job.should_enqueue_at_front())
        except InvalidJobOperation:  # the scheduler (or another worker) queued it meanwhile
            continue
        queued += 1
    return queued
