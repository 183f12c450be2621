"""The process's Prometheus metrics (official `prometheus-client`) and the calls that move them.

Every label has a bounded set of values: routes are URL rules, not paths; tasks are function
names; providers, operations, kinds, outcomes and reasons are short identifiers from our own
code or the SDKs', anything else is counted as "other". No organisation, invoice or tenant id
is ever a label here (the per-tenant budget is a top-N gauge computed at scrape time).

Under gunicorn, set PROMETHEUS_MULTIPROC_DIR before the first import of prometheus_client
(gunicorn.conf.py does): every worker process then writes its values to files there and the
scrape adds them up (`registry_for_scrape`).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

NAMESPACE = "dunwell"
OTHER = "other"
_IDENTIFIER = re.compile(r"^[a-z][a-z_]{0,39}$")  # no digits: an id is never a label
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
# Seconds: a webhook's answer, a provider call, a job, a sync (from milliseconds to an hour).
_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SLOW = (0.05, 0.25, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0)
_LAG = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0, 21600.0)
_RECORDS = (0, 1, 10, 100, 1000, 10_000, 100_000, 1_000_000)

HTTP_REQUESTS = Counter("http_requests", "Web requests answered, by URL rule and status.",
                        ["route", "method", "status"], namespace=NAMESPACE)
HTTP_DURATION = Histogram("http_request_duration_seconds", "Time to answer a web request.",
                          ["route", "method"], namespace=NAMESPACE, buckets=_FAST)
JOBS = Counter("jobs", "RQ jobs run, by task and outcome (finished, failed).",
               ["task", "outcome"], namespace=NAMESPACE)
JOB_DURATION = Histogram("job_duration_seconds", "Time an RQ job ran, by task.", ["task"],
                         namespace=NAMESPACE, buckets=_SLOW)
JOB_WAIT = Histogram("job_wait_seconds", "Time an RQ job waited in the queue before it ran.",
                     ["task"], namespace=NAMESPACE, buckets=_LAG)
ACTIONS = Counter("actions", "Actions recorded as finished, by kind and outcome (done, "
                  "skipped, failed, dead) and, for skipped, the reason.",
                  ["kind", "outcome", "reason"], namespace=NAMESPACE)
PROVIDER_CALLS = Counter("provider_calls", "Calls to a provider's API, by operation and HTTP "
                         "status (error: no answer).", ["provider", "operation", "status"],
                         namespace=NAMESPACE)
PROVIDER_DURATION = Histogram("provider_call_duration_seconds", "Time a provider took to "
                              "answer.", ["provider", "operation"], namespace=NAMESPACE,
                              buckets=_FAST)
TOKEN_REFRESH_FAILURES = Counter("token_refresh_failures", "Token refreshes that failed, by "
                                 "provider and kind (revoked, transient).",
                                 ["provider", "kind"], namespace=NAMESPACE)
WEBHOOKS = Counter("webhook_deliveries", "Webhook deliveries answered, by provider and status.",
                   ["provider", "status"], namespace=NAMESPACE)
WEBHOOK_LAG = Histogram("webhook_lag_seconds", "From a webhook event's receipt to the sync "
                        "that applied it.", ["provider"], namespace=NAMESPACE, buckets=_LAG)
SYNC_DURATION = Histogram("sync_duration_seconds", "Time a sync of one organisation took.",
                          ["provider", "mode"], namespace=NAMESPACE, buckets=_SLOW)
SYNC_RECORDS = Histogram("sync_records", "Records read by one sync of one organisation.",
                         ["provider", "mode"], namespace=NAMESPACE, buckets=_RECORDS)


@lru_cache(maxsize=4096)
def _child(metric: Any, *labels: str) -> Any:
    """The metric's series for these labels, found once: the webhook endpoint counts each of
    its hundreds of requests a second, and `labels()` takes a lock and builds a key each time."""
    return metric.labels(*labels)


def label(value: object) -> str:
    """A short lower-case identifier as it is, anything else (free text, anything with a
    digit in it) as "other"."""
    return _label(value if isinstance(value, str) else "" if value is None else str(value))


@lru_cache(maxsize=4096)
def _label(value: str) -> str:
    text = value.strip().lower().replace("-", "_")
    return text if _IDENTIFIER.match(text) else OTHER


def status_label(status: object) -> str:
    """An HTTP status as its number, anything else (no answer) as "error"."""
    try:
        code = int(str(status))
    except ValueError:
        return "error"
    return str(code) if 100 <= code <= 599 else "error"


def method_label(method: str) -> str:
    return method if method in _METHODS else OTHER


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """`route`: the URL rule that matched ("/orgs/<int:org_id>"), or "unmatched"."""
    method = method_label(method)
    _child(HTTP_REQUESTS, route, method, str(status)).inc()
    _child(HTTP_DURATION, route, method).observe(seconds)


def observe_job(task: str, succeeded: bool, seconds: float, waited: float | None) -> None:
    task = task.rsplit(".", 1)[-1]
    JOBS.labels(label(task), "finished" if succeeded else "failed").inc()
    JOB_DURATION.labels(label(task)).observe(seconds)
    if waited is not None:
        JOB_WAIT.labels(label(task)).observe(max(0.0, waited))


def observe_action(kind: str, outcome: str, result: Mapping[str, Any] | None) -> None:
    reason = label((result or {}).get("reason")) if outcome == "skipped" else ""
    ACTIONS.labels(label(kind), label(outcome), reason).inc()


def observe_provider_call(provider: str, operation: str, status: object, seconds: float
                          ) -> None:
    PROVIDER_CALLS.labels(label(provider), label(operation), status_label(status)).inc()
    PROVIDER_DURATION.labels(label(provider), label(operation)).observe(seconds)


class ProviderCall:
    """Wraps one SDK call: its HTTP status (or the exception's) and its time, counted."""

    def __init__(self, provider: str, operation: str, fn: Any) -> None:
        self.provider, self.operation, self.fn = provider, operation, fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        status: object = "error"
        try:
            answer = self.fn(*args, **kwargs)
            status = getattr(answer, "status", None) or getattr(answer, "status_code", 200)
            return answer
        except Exception as error:  # counted, then raised as it came
            status = getattr(error, "status", None) or "error"
            raise
        finally:
            observe_provider_call(self.provider, self.operation, status,
                                  time.perf_counter() - started)


def observe_token_refresh_failure(provider: str, kind: str) -> None:
    TOKEN_REFRESH_FAILURES.labels(label(provider), label(kind)).inc()


class CountedRefresh:
    """Wraps a connector's refresh-token call: each failure counted by its error's class
    (authorizationrevoked: the owner must reconnect; transienterror: tried again)."""

    def __init__(self, provider: str, refresh: Any) -> None:
        self.provider, self.refresh = provider, refresh

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self.refresh(*args, **kwargs)
        except Exception as error:  # counted, then raised as it came
            observe_token_refresh_failure(self.provider, type(error).__name__)
            raise


def observe_webhook(provider: str, status: int, seconds: float | None = None) -> None:
    """A delivery answered, by status (its count by route is this counter, not
    dunwell_http_requests_total), and its time to answer among the web requests'."""
    _child(WEBHOOKS, label(provider), str(status)).inc()
    if seconds is not None:
        _child(HTTP_DURATION, f"/webhooks/{label(provider)}", "POST").observe(seconds)


def observe_webhook_lag(provider: str, seconds: float) -> None:
    WEBHOOK_LAG.labels(label(provider)).observe(max(0.0, seconds))


def observe_sync(provider: str, mode: str, seconds: float, records: int) -> None:
    SYNC_DURATION.labels(label(provider), label(mode)).observe(seconds)
    SYNC_RECORDS.labels(label(provider), label(mode)).observe(records)


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def registry_for_scrape(*collectors: Any) -> CollectorRegistry:
    """This process's metrics, or in multiprocess mode every process's, plus `collectors`
    (values read at scrape time: queue depth, workers, budgets)."""
    if multiprocess():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_Forward(REGISTRY))
    for collector in collectors:
        registry.register(collector)
    return registry


class _Forward:
    """The process-wide registry seen through a per-scrape one (scrape-time collectors are
    registered per scrape, never in the process-wide registry)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Any:
        return self.registry.collect()


def exposition(*collectors: Any) -> tuple[bytes, str]:
    """The text a scrape answers, and its content type."""
    return generate_latest(registry_for_scrape(*collectors)), CONTENT_TYPE_LATEST
