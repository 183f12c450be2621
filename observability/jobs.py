"""Around each job a worker runs: the job's ids bound for its log lines, its time counted.

Duck-typed on RQ's Job (id, meta, func_name, enqueued_at), so this package needs no RQ.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from observability import context
from observability.metrics import observe_job


def job_meta() -> dict[str, str]:
    """What an enqueued job carries from the code that enqueued it: the request id."""
    request_id = context.request_id()
    return {"request_id": request_id} if request_id else {}


def job_ids(job: Any) -> dict[str, object]:
    """The organisation, invoice and action a job is about: its arguments of those names
    (jobs take ids, named so)."""
    try:
        arguments = inspect.signature(job.func).bind_partial(*job.args, **job.kwargs).arguments
    except (TypeError, ValueError, AttributeError, ImportError):
        return {}
    return {name: arguments[name] for name in ("org_id", "invoice_id", "action_id")
            if isinstance(arguments.get(name), int)}


def perform_observed(job: Any, perform: Callable[..., bool], *args: Any) -> bool:
    """`perform(*args)` (the worker's own perform_job) with the job's ids bound and its
    outcome, duration and time in the queue counted."""
    enqueued = job.enqueued_at
    waited = None
    if enqueued is not None:
        enqueued = enqueued if enqueued.tzinfo else enqueued.replace(tzinfo=UTC)
        waited = (datetime.now(UTC) - enqueued).total_seconds()
    succeeded = False
    started = time.perf_counter()
    with context.bound(job_id=job.id, request_id=(job.meta or {}).get("request_id"),
                       **job_ids(job)):
        try:
            succeeded = perform(*args)
            return succeeded
        finally:
            observe_job(job.func_name or "unknown", succeeded, time.perf_counter() - started,
                        waited)
