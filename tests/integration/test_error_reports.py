"""A job that fails is reported through sentry-sdk's RQ integration, to a receiver on
127.0.0.1 that the test starts: with the job's ids as tags, without what it must not carry."""

from __future__ import annotations

import json

import pytest
from redis import Redis
from rq import Queue

from jobs.worker import AppWorker
from tests.unit.test_observability import TOKEN, Receiver, receiver  # noqa: F401 (fixture)


def explode(org_id: int) -> None:
    raise RuntimeError(f"org {org_id}: ada@example.com refused Bearer {TOKEN}")


def test_a_failed_job_is_reported_with_its_ids_and_without_secrets(  # type: ignore[no-untyped-def]
        receiver, redis_url) -> None:  # noqa: F811
    sentry_sdk = pytest.importorskip("sentry_sdk")
    from observability.errors import init_error_reports

    redis = Redis.from_url(redis_url)
    queue = Queue("dunwell-error-reports", connection=redis)
    job = queue.enqueue(explode, 42, job_id="explode-42", meta={"request_id": "req-00000077"})
    try:
        assert init_error_reports(receiver, "test")
        AppWorker([queue], connection=redis).work(burst=True, with_scheduler=False)
        sentry_sdk.flush(timeout=10)
    finally:
        sentry_sdk.init()  # no DSN: nothing more is sent
    assert job.get_status(refresh=True) == "failed"
    sent = b"".join(Receiver.bodies).decode()
    event = next(json.loads(line) for line in sent.splitlines()
                 if line.startswith("{") and '"exception"' in line)
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    assert {key: event["tags"].get(key) for key in ("job_id", "request_id", "org_id")} == {
        "job_id": "explode-42", "request_id": "req-00000077", "org_id": "42"}
    assert "ada@example.com" not in sent and TOKEN not in sent
