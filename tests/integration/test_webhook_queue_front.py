"""A webhook's targeted sync goes to the front of the queue: a payment must be seen before the
action jobs already waiting run (they would re-check the invoice anyway, but a reminder the
sync cancels is never even claimed). And a multi-event payload stores each new event once."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from rq import Queue
from sqlalchemy import func, select

from tests.integration.conftest import connect

pytestmark = pytest.mark.db

KEY = "xero-webhook-key-for-tests"


def _waiting(app) -> list[str]:  # type: ignore[no-untyped-def]
    from collect.providers import redis_client

    with app.app_context():
        return Queue(app.config["RQ_QUEUE"], connection=redis_client()).get_job_ids()


def test_enqueue_once_at_front_jumps_the_waiting_jobs(app) -> None:  # type: ignore[no-untyped-def]
    from jobs.queues import enqueue_once
    from jobs.tasks import execute_action

    with app.app_context():
        for n in (1, 2):
            enqueue_once(execute_action, n, job_id=f"action-{n}")
        enqueue_once(execute_action, 3, job_id="action-3", at_front=True)
        enqueue_once(execute_action, 3, job_id="action-3", at_front=True)  # still one
        with pytest.raises(ValueError):
            from datetime import UTC, datetime

            enqueue_once(execute_action, 4, job_id="action-4", at_front=True,
                         at=datetime(2030, 1, 1, tzinfo=UTC))
    assert _waiting(app) == ["action-3", "action-1", "action-2"]


def test_a_webhook_sync_is_queued_ahead_of_waiting_actions(app, web) -> None:  # type: ignore[no-untyped-def]
    from jobs.queues import enqueue_once, queue
    from jobs.tasks import execute_action
    from store.db import db
    from store.models import WebhookEvent

    connected = connect(app, web)
    app.config.update(XERO_WEBHOOK_KEY=KEY)
    with app.app_context():
        queue().empty()  # the connection's first sync
        enqueue_once(execute_action, 1, job_id="action-1")
    resources = ["7b8a3c5e-0000-4000-8000-000000000001", "7b8a3c5e-0000-4000-8000-000000000002"]
    body = json.dumps({"events": [{
        "resourceUrl": f"https://api.xero.com/api.xro/2.0/Invoices/{resource}",
        "resourceId": resource, "eventDateUtc": "2026-11-24T10:00:00.123",
        "eventType": "UPDATE", "eventCategory": "INVOICE", "tenantId": connected.tenant_id,
        "tenantType": "ORGANISATION"} for resource in (*resources, resources[0])],
        "firstEventSequence": 1, "lastEventSequence": 3, "entropy": "QWERTYUIOPASDFGHJKLZ"}
    ).encode()
    signature = base64.b64encode(hmac.new(KEY.encode(), body, hashlib.sha256).digest())
    client = app.test_client()
    for _ in range(2):  # the second delivery is a replay: nothing new, nothing queued
        answer = client.post("/webhooks/xero", data=body,
                             headers={"x-xero-signature": signature.decode()})
        assert answer.status_code == 200 and answer.data == b""
    assert _waiting(app) == [f"webhook-sync-{connected.org_id}-0", "action-1"]
    with app.app_context():
        rows = db.session.execute(select(WebhookEvent.org_id, WebhookEvent.entity_id)).all()
        assert sorted(rows) == sorted((connected.org_id, r) for r in resources)
        assert db.session.scalar(select(func.count()).select_from(WebhookEvent)) == 2
