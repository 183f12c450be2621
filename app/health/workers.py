"""Which RQ workers heartbeat and when, and when RQ's scheduler last did: read from RQ's own
worker registry and scheduler lock in Redis. `dunwell workers` prints it; /metrics exports it.

Ages are measured on the wall clock, as RQ stamps its heartbeats (never a test's or the demo's
clock)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from redis import Redis
from rq import Queue, Worker
from rq.exceptions import SchedulerNotFound
from rq.scheduler import RQScheduler

# RQ renews a worker's key at least every job-monitoring interval (30 s) while it runs a job
# and every dequeue timeout when idle (ours: one maintenance beat, jobs/worker.py); its
# scheduler heartbeats every few seconds. Past these, the process is stuck or gone.
WORKER_STALE_SECONDS = 120.0
SCHEDULER_STALE_SECONDS = 120.0


@dataclass(frozen=True)
class WorkerBeat:
    name: str
    state: str
    hostname: str | None
    pid: int | None
    last_heartbeat: str | None
    age_seconds: float | None


@dataclass(frozen=True)
class SchedulerBeat:
    name: str
    last_heartbeat: str | None
    age_seconds: float | None


@dataclass
class WorkerStatus:
    queue: str
    workers: list[WorkerBeat] = field(default_factory=list)
    scheduler: SchedulerBeat | None = None

    @property
    def healthy(self) -> bool:
        """At least one worker heartbeats within WORKER_STALE_SECONDS, and a scheduler holds
        the queue's lock and heartbeats within SCHEDULER_STALE_SECONDS."""
        fresh = [w for w in self.workers
                 if w.age_seconds is not None and w.age_seconds <= WORKER_STALE_SECONDS]
        scheduler = self.scheduler
        return bool(fresh) and scheduler is not None and scheduler.age_seconds is not None \
            and scheduler.age_seconds <= SCHEDULER_STALE_SECONDS

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "healthy": self.healthy}


def _age(moment: datetime | None, now: datetime) -> float | None:
    return None if moment is None else round((now - moment).total_seconds(), 3)


def worker_status(redis: Redis, queue_name: str, now: datetime | None = None) -> WorkerStatus:
    now = now or datetime.now(UTC)
    status = WorkerStatus(queue=queue_name)
    for worker in Worker.all(connection=redis, queue=Queue(queue_name, connection=redis)):
        beat = worker.last_heartbeat
        status.workers.append(WorkerBeat(
            name=worker.name, state=str(worker.get_state()), hostname=worker.hostname,
            pid=worker.pid, last_heartbeat=beat.isoformat() if beat else None,
            age_seconds=_age(beat, now)))
    holder = redis.get(RQScheduler.get_locking_key(queue_name))
    if holder is not None:
        name = holder.decode() if isinstance(holder, bytes) else str(holder)
        try:
            beat = RQScheduler.fetch(name, redis).last_heartbeat
        except SchedulerNotFound:
            beat = None
        status.scheduler = SchedulerBeat(name=name,
                                         last_heartbeat=beat.isoformat() if beat else None,
                                         age_seconds=_age(beat, now))
    return status
