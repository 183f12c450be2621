"""A worker killed while it ran RQ's scheduler leaves the scheduler's lock behind until it
expires (61 s). The workers still alive are idle in Redis (nothing is queued: the retries, the
sweep and the daily runs are all *scheduled*), so one of them must wake up on its own and move
the scheduled jobs to the queue: a job past its time by DUNWELL_OVERDUE_AFTER_SECONDS is queued
by any worker's maintenance beat, and once the lock expires a worker takes the scheduler over.
RQ's default keeps an idle worker asleep for about 400 s; ours wakes every maintenance beat."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from redis import Redis
from rq import Queue
from rq.job import Job
from rq.scheduler import RQScheduler

from jobs.queues import queue_overdue_jobs
from migrations import upgrade

pytestmark = pytest.mark.db

QUEUE = "takeover"


DEAD_HOLDER = b"a-worker-killed-with-sigkill"


def _run_a_scheduled_job_beside_a_dead_holder(database_url: str, redis_url: str,
                                               lock_seconds: int) -> bytes | None:
    """A worker started while a killed worker's scheduler lock has `lock_seconds` to live; a
    job booked a second ahead once the worker is idle, which must finish within 30 s. Returns
    who holds the scheduler's lock then."""
    upgrade(url=database_url)
    redis = Redis.from_url(redis_url)
    lock = RQScheduler.get_locking_key(QUEUE)
    assert redis.set(lock, DEAD_HOLDER, ex=lock_seconds)
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
           "RQ_QUEUE": QUEUE, "SECRET_KEY": "takeover", "DUNWELL_SWEEP_SECONDS": "1",
           "DUNWELL_OVERDUE_AFTER_SECONDS": "1",
           "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(), "PYTHONUNBUFFERED": "1"}
    worker = subprocess.Popen([str(Path(sys.executable).with_name("dunwell")), "worker"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        # Scheduled after the worker went idle: only a scheduler (or a worker's beat that
        # finds it past its time) can ever queue it.
        time.sleep(2)
        job = Queue(QUEUE, connection=redis).enqueue_at(
            datetime.now(UTC) + timedelta(seconds=1), "os.getpid", job_id="scheduled-work")
        deadline = time.monotonic() + 30  # its time (1 s) + overdue (1 s) + a beat, slack
        while time.monotonic() < deadline and job.get_status(refresh=True) != "finished":
            assert worker.poll() is None, "the worker died"
            time.sleep(0.2)
        finished = Job.fetch("scheduled-work", connection=redis).get_status()
        holder = redis.get(lock)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        output = worker.communicate(timeout=10)[0].decode(errors="replace")
    assert finished == "finished", output[-3000:]
    return holder


def test_an_idle_worker_takes_over_the_scheduler_of_a_killed_one(database_url: str,
                                                                  redis_url: str) -> None:
    # The lock of a worker that died a moment ago: it expires in 3 s, as a dead holder's does
    # 61 s after its last refresh.
    holder = _run_a_scheduled_job_beside_a_dead_holder(database_url, redis_url, 3)
    assert holder is not None and holder != DEAD_HOLDER


def test_a_booked_job_past_its_time_runs_while_a_killed_worker_still_holds_the_lock(
        database_url: str, redis_url: str) -> None:
    """The dead holder's lock outlives the whole test: no scheduler runs, and the worker's
    maintenance beat queues the job once it is a second past its time."""
    holder = _run_a_scheduled_job_beside_a_dead_holder(database_url, redis_url, 120)
    assert holder == DEAD_HOLDER  # nobody took the scheduler over: the beat queued it


def test_overdue_jobs_are_queued_once_whoever_looks(redis_url: str) -> None:
    """Past its time by more than `overdue_after`: queued, once, by whichever of many workers
    looks first; less far past, or still ahead: left to the scheduler; a booking whose job's
    data is gone: dropped."""
    redis = Redis.from_url(redis_url)
    q = Queue(QUEUE, connection=redis)
    now = time.time()
    late = [q.enqueue_at(datetime.fromtimestamp(now - 30, UTC), "os.getpid", job_id=f"late-{n}")
            for n in range(20)]
    q.enqueue_at(datetime.fromtimestamp(now - 3, UTC), "os.getpid", job_id="just-due")
    q.enqueue_at(datetime.fromtimestamp(now + 60, UTC), "os.getpid", job_id="ahead")
    q.enqueue_at(datetime.fromtimestamp(now - 30, UTC), "os.getpid", job_id="data-gone")
    redis.delete(Job.key_for("data-gone"))
    counts: list[int] = []
    start = threading.Barrier(4)

    def look() -> None:
        start.wait()
        counts.append(queue_overdue_jobs(Queue(QUEUE, connection=Redis.from_url(redis_url)),
                                         now, overdue_after=10))

    lookers = [threading.Thread(target=look) for _ in range(4)]
    for t in lookers:
        t.start()
    for t in lookers:
        t.join()
    assert sum(counts) == 20, counts
    assert sorted(q.get_job_ids()) == sorted(job.id for job in late)  # each once
    assert all(Job.fetch(job.id, connection=redis).get_status() == "queued" for job in late)
    assert sorted(q.scheduled_job_registry.get_job_ids()) == ["ahead", "just-due"]
    assert queue_overdue_jobs(q, now, overdue_after=10) == 0
