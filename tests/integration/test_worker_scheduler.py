"""A worker killed while it ran RQ's scheduler leaves the scheduler's lock behind until it
expires. The workers still alive are idle in Redis (nothing is queued: the retries, the sweep
and the daily runs are all *scheduled*), so one of them must wake up on its own, take the lock
over and move the scheduled jobs to the queue. RQ's default keeps an idle worker asleep for
about 400 s; ours wakes every maintenance beat."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from redis import Redis
from rq import Queue
from rq.job import Job
from rq.scheduler import RQScheduler

from migrations import upgrade

pytestmark = pytest.mark.db

QUEUE = "takeover"


def test_an_idle_worker_takes_over_the_scheduler_of_a_killed_one(database_url: str,
                                                                  redis_url: str) -> None:
    upgrade(url=database_url)
    redis = Redis.from_url(redis_url)
    # The lock of a worker that died a moment ago: it expires in 3 s, as a dead holder's does
    # 61 s after its last refresh.
    lock = RQScheduler.get_locking_key(QUEUE)
    assert redis.set(lock, "a-worker-killed-with-sigkill", ex=3)
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
           "RQ_QUEUE": QUEUE, "SECRET_KEY": "takeover", "DUNWELL_SWEEP_SECONDS": "1",
           "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(), "PYTHONUNBUFFERED": "1"}
    worker = subprocess.Popen([str(Path(sys.executable).with_name("dunwell")), "worker"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        # Scheduled after the worker went idle: only a scheduler can ever queue it.
        time.sleep(2)
        job = Queue(QUEUE, connection=redis).enqueue_at(
            datetime.now(UTC) + timedelta(seconds=1), "os.getpid", job_id="scheduled-work")
        deadline = time.monotonic() + 30  # lock expiry (3 s) + a beat (1 s) + start-up, slack
        while time.monotonic() < deadline and job.get_status(refresh=True) != "finished":
            assert worker.poll() is None, "the worker died"
            time.sleep(0.2)
        finished = Job.fetch("scheduled-work", connection=redis).get_status()
        holder = redis.get(lock)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        output = worker.communicate(timeout=10)[0].decode(errors="replace")
    assert finished == "finished", output[-3000:]
    assert holder is not None and holder != b"a-worker-killed-with-sigkill", output[-3000:]
