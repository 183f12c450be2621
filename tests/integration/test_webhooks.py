"""Webhooks over real HTTP: signatures, intent to receive, replays, bad payloads, and a payment
made in each sandbox stopping the reminder planned for later that day (real RQ worker)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import requests
from rq import Queue
from sqlalchemy import func, select

from tests.integration.conftest import connect, run_jobs

pytestmark = pytest.mark.db

XERO_KEY = "xero-webhook-key-for-tests"
INTUIT_VERIFIER = "intuit-verifier-for-tests"


def sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@pytest.fixture
def hooked(app, sandbox, qbo_sandbox):  # type: ignore[no-untyped-def]
    """The app and both sandboxes share webhook secrets; the sandboxes do not post yet."""
    app.config.update(XERO_WEBHOOK_KEY=XERO_KEY, QUICKBOOKS_WEBHOOK_VERIFIER=INTUIT_VERIFIER)
    sandbox[0].config.webhook_key = XERO_KEY
    qbo_sandbox[0].config.webhook_verifier = INTUIT_VERIFIER
    yield app
    sandbox[0].webhooks.stop()
    qbo_sandbox[0].webhooks.stop()


def xero_body(tenant_id: str, resource_id: str = "7b8a3c5e-0000-4000-8000-000000000001",
              category: str = "INVOICE", when: str = "2026-11-24T10:00:00.123") -> bytes:
    return json.dumps({"events": [{
        "resourceUrl": f"https://api.xero.com/api.xro/2.0/Invoices/{resource_id}",
        "resourceId": resource_id, "eventDateUtc": when, "eventType": "UPDATE",
        "eventCategory": category, "tenantId": tenant_id, "tenantType": "ORGANISATION"}],
        "firstEventSequence": 1, "lastEventSequence": 1,
        "entropy": "QWERTYUIOPASDFGHJKLZ"}).encode()


def intuit_legacy_body(realm_id: str, entity_id: str = "130") -> bytes:
    return json.dumps({"eventNotifications": [{"realmId": realm_id, "dataChangeEvent": {
        "entities": [{"name": "Invoice", "id": entity_id, "operation": "Update",
                      "lastUpdated": "2026-11-24T02:00:00.000Z"}]}}]}).encode()


def intuit_cloud_body(realm_id: str, event_id: str = "5f0e3f7a-1111-4222-8333-444455556666"
                      ) -> bytes:
    return json.dumps([{
        "specversion": "1.0", "id": event_id, "source": "intuit.abc", "type":
        "qbo.invoice.updated.v1", "datacontenttype": "application/json",
        "time": "2026-11-24T02:00:00.000Z", "intuitentityid": "130",
        "intuitaccountid": realm_id, "data": {}}]).encode()


def stored_events(app) -> int:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import WebhookEvent

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(WebhookEvent))


def queued_job_ids(app) -> list[str]:  # type: ignore[no-untyped-def]
    from collect.providers import redis_client

    with app.app_context():
        return Queue(app.config["RQ_QUEUE"], connection=redis_client()).get_job_ids()


# --- signatures ---------------------------------------------------------------------------

PROVIDERS = {
    "xero": ("x-xero-signature", XERO_KEY, lambda: xero_body("unknown-tenant")),
    "quickbooks": ("intuit-signature", INTUIT_VERIFIER, lambda: intuit_legacy_body("1234")),
}


@pytest.mark.parametrize("provider", ["xero", "quickbooks"])
def test_only_a_signature_over_the_raw_body_with_our_key_is_accepted(hooked, provider) -> None:  # type: ignore[no-untyped-def]
    header, key, make = PROVIDERS[provider]
    client = hooked.test_client()
    url = f"/webhooks/{provider}"
    body = make()

    good = client.post(url, data=body, headers={header: sign(key, body)})
    assert (good.status_code, good.data) == (200, b"")
    assert "Set-Cookie" not in good.headers

    flipped = bytearray(body)
    flipped[10] ^= 0x01
    reserialised = json.dumps(json.loads(body), indent=2).encode()
    assert json.loads(reserialised) == json.loads(body) and reserialised != body
    forged = [
        (bytes(flipped), {header: sign(key, body)}),  # a bit flipped after signing
        (body, {header: sign("not-our-key", body)}),  # signed with another key
        (body, {}),  # no signature at all
        (body, {header: ""}),
        (reserialised, {header: sign(key, body)}),  # same JSON, other bytes
        (body, {header: sign(key, body)[:-4] + "AAA="}),
    ]
    for data, headers in forged:
        answer = client.post(url, data=data, headers=headers)
        assert (answer.status_code, answer.data) == (401, b""), headers
        assert "Set-Cookie" not in answer.headers
    assert stored_events(hooked) == 0


def test_no_key_configured_refuses_everything(hooked) -> None:  # type: ignore[no-untyped-def]
    hooked.config["XERO_WEBHOOK_KEY"] = ""
    body = xero_body("t")
    answer = hooked.test_client().post("/webhooks/xero", data=body,
                                       headers={"x-xero-signature": sign("", body)})
    assert answer.status_code == 401


def test_the_xero_sandbox_intent_to_receive_check_passes(hooked, sandbox, web) -> None:  # type: ignore[no-untyped-def]
    state, _ = sandbox
    state.config.webhook_url = f"{web.url}/webhooks/xero"
    outcome = state.webhooks.intent_to_receive(rounds=3)
    assert [a["status"] for a in outcome["answers"]] == [200, 401, 200, 401, 200, 401]
    assert [a["body"] for a in outcome["answers"]] == [""] * 6
    assert not any(a["cookies"] for a in outcome["answers"])
    assert outcome["passed"] is True
    # Our endpoint with the wrong key fails the check, as Xero would see it.
    hooked.config["XERO_WEBHOOK_KEY"] = "another-key"
    assert state.webhooks.intent_to_receive()["passed"] is False
    assert stored_events(hooked) == 0


# --- validation ---------------------------------------------------------------------------

MALFORMED = {
    "xero": [
        b"not json at all",
        b"{}",
        json.dumps({"events": [{"resourceId": "x"}], "firstEventSequence": 1,
                    "lastEventSequence": 1, "entropy": "A"}).encode(),
        json.dumps({"events": "INVOICE", "firstEventSequence": 1, "lastEventSequence": 1,
                    "entropy": "A"}).encode(),
        xero_body("t", when="yesterday"),
        b"[1, 2, 3]",
    ],
    "quickbooks": [
        b"\xff\xfe not utf-8",
        json.dumps({"eventNotifications": [{"dataChangeEvent": {"entities": []}}]}).encode(),
        json.dumps({"eventNotifications": [{"realmId": "1", "dataChangeEvent": {
            "entities": [{"name": "Invoice", "id": "1", "operation": "Update"}]}}]}).encode(),
        json.dumps([{"specversion": "0.3", "id": "1", "source": "s",
                     "type": "qbo.invoice.updated.v1", "intuitentityid": "1",
                     "intuitaccountid": "1"}]).encode(),
        json.dumps([{"specversion": "1.0", "id": "1", "source": "s", "type": "invoice",
                     "intuitentityid": "1", "intuitaccountid": "1"}]).encode(),
        b'"just a string"',
    ],
}


@pytest.mark.parametrize("provider", ["xero", "quickbooks"])
def test_a_malformed_payload_is_refused_with_a_reason_and_nothing_is_stored(
        hooked, connected, provider) -> None:  # type: ignore[no-untyped-def]
    header, key, _ = PROVIDERS[provider]
    client = hooked.test_client()
    before = queued_job_ids(hooked)
    for body in MALFORMED[provider]:
        answer = client.post(f"/webhooks/{provider}", data=body,
                             headers={header: sign(key, body)})
        assert answer.status_code == 400, body
        assert answer.json["error"], body
    assert stored_events(hooked) == 0
    assert queued_job_ids(hooked) == before
    # A payload with one good event and one bad one is refused whole.
    mixed = json.loads(xero_body(connected.tenant_id))
    mixed["events"].append({"resourceId": "only-this"})
    body = json.dumps(mixed).encode()
    answer = client.post("/webhooks/xero", data=body,
                         headers={"x-xero-signature": sign(XERO_KEY, body)})
    assert answer.status_code == 400 and "events.1" in answer.json["error"]
    assert stored_events(hooked) == 0


def test_an_unknown_tenant_is_answered_200_and_ignored(hooked, connected) -> None:  # type: ignore[no-untyped-def]
    client = hooked.test_client()
    for provider, body in (("xero", xero_body("no-such-tenant")),
                           ("quickbooks", intuit_cloud_body("999999"))):
        header, key, _ = PROVIDERS[provider]
        answer = client.post(f"/webhooks/{provider}", data=body,
                             headers={header: sign(key, body)})
        assert (answer.status_code, answer.data) == (200, b"")
    assert stored_events(hooked) == 0


# --- replays and bursts -------------------------------------------------------------------


def test_a_hundred_replays_store_one_event_and_run_one_sync(hooked, connected, sandbox) -> None:  # type: ignore[no-untyped-def]
    from collect.providers import redis_client
    from collect.webhooks import generation_key
    from store.db import db
    from store.models import Invoice, WebhookEvent

    state, _ = sandbox
    run_jobs(hooked)  # the first sync
    with hooked.app_context():
        invoice = db.session.scalars(select(Invoice).where(Invoice.status == "open")
                                     .order_by(Invoice.id)).first()
        provider_id = invoice.provider_id
    body = xero_body(connected.tenant_id, provider_id)
    client = hooked.test_client()
    for _ in range(100):
        answer = client.post("/webhooks/xero", data=body,
                             headers={"x-xero-signature": sign(XERO_KEY, body)})
        assert answer.status_code == 200
    assert stored_events(hooked) == 1
    assert [j for j in queued_job_ids(hooked) if j.startswith("webhook-sync-")] == [
        f"webhook-sync-{connected.org_id}-0"]
    calls = state.calls(connected.tenant_id)
    run_jobs(hooked)
    with hooked.app_context():
        assert redis_client().get(generation_key(connected.org_id)) == b"1"  # one job ran
        event = db.session.scalars(select(WebhookEvent)).one()
        assert event.processed_at is not None and event.org_id == connected.org_id
        assert (event.entity, event.entity_id, event.kind) == (
            "invoice", provider_id, "INVOICE.UPDATE")
    assert state.calls(connected.tenant_id) - calls == 1  # the invoice, read by id
    # Replayed after processing: still one event, and no new job.
    client.post("/webhooks/xero", data=body, headers={"x-xero-signature": sign(XERO_KEY, body)})
    assert stored_events(hooked) == 1
    assert not [j for j in queued_job_ids(hooked) if j.startswith("webhook-sync-")]


def test_a_burst_of_different_events_shares_one_waiting_job(hooked, connected) -> None:  # type: ignore[no-untyped-def]
    client = hooked.test_client()
    for n in range(5):
        body = xero_body(connected.tenant_id, f"7b8a3c5e-0000-4000-8000-00000000000{n}")
        client.post("/webhooks/xero", data=body,
                    headers={"x-xero-signature": sign(XERO_KEY, body)})
    assert stored_events(hooked) == 5
    assert [j for j in queued_job_ids(hooked) if j.startswith("webhook-sync-")] == [
        f"webhook-sync-{connected.org_id}-0"]


# --- end to end: a payment in the books stops the reminder --------------------------------


def wait_for_events(app, count: int, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while stored_events(app) < count:
        assert time.monotonic() < deadline, "the sandbox's webhook never arrived"
        time.sleep(0.05)


def _due_later_today(app, org_id: int, now: datetime):  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Invoice

    with app.app_context():
        due = db.session.scalars(select(Invoice).where(
            Invoice.org_id == org_id, Invoice.status == "open",
            Invoice.next_action_at > now, Invoice.next_action_at < now + timedelta(hours=12))
            .order_by(Invoice.id)).all()
        assert len(due) >= 2, "the seeded books must have reminders due later today"
        return [(i.id, i.provider_id, i.amount_due, i.next_action_at) for i in due]


def _run_the_day(app, org_id: int, clock, at: datetime) -> None:  # type: ignore[no-untyped-def]
    from collect.book import calendar_for
    from jobs.tasks import daily_run
    from store import clock as app_clock

    clock.set(at)
    with app.app_context():
        from store.db import db
        from store.models import Organisation

        org = db.session.get(Organisation, org_id)
        daily_run(org_id, calendar_for(org).today(app_clock.now()).isoformat())
    run_jobs(app)


def test_a_payment_in_xero_stops_the_reminder_planned_for_later_that_day(
        hooked, sandbox, web, clock) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Invoice

    state, _ = sandbox
    clock.set(datetime(2026, 11, 24, 7, 0, tzinfo=UTC))  # before the 09:00 send time in London
    connected = connect(hooked, web)
    run_jobs(hooked)  # the first sync; nothing is due before 09:00
    assert state.emails(connected.tenant_id) == []
    due = _due_later_today(hooked, connected.org_id, clock())
    paid_id, paid_provider_id, amount, _ = due[0]

    state.config.webhook_url = f"{web.url}/webhooks/xero"
    state.webhooks.start()
    clock.set(datetime(2026, 11, 24, 8, 0, tzinfo=UTC))
    state.pay_invoice(connected.tenant_id, paid_provider_id, amount)  # the customer pays
    wait_for_events(hooked, 1)
    calls = state.calls(connected.tenant_id)
    run_jobs(hooked)  # the worker applies the webhook
    with hooked.app_context():
        invoice = db.session.get(Invoice, paid_id)
        assert (invoice.status, invoice.amount_due, invoice.next_action_at) == (
            "paid", Decimal("0"), None)
    assert state.calls(connected.tenant_id) - calls == 1  # one read by id, no full sync

    _run_the_day(hooked, connected.org_id, clock, datetime(2026, 11, 24, 9, 5, tzinfo=UTC))
    emailed = Counter(e["InvoiceID"] for e in state.emails(connected.tenant_id))
    assert paid_provider_id not in emailed
    assert {d[1] for d in due[1:]} <= set(emailed)
    assert set(emailed.values()) == {1}


@pytest.mark.parametrize("shape", ["legacy", "cloudevents"])
def test_a_payment_in_quickbooks_stops_the_reminder_planned_for_later_that_day(
        hooked, qbo_sandbox, web, clock, shape) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Invoice, WebhookEvent

    state, _ = qbo_sandbox
    # 10:00 UTC is 02:00 in Los Angeles: hours before the 09:00 send time.
    connected = connect(hooked, web, "quickbooks")
    run_jobs(hooked)
    assert state.emails(connected.tenant_id) == []
    due = _due_later_today(hooked, connected.org_id, clock())
    paid_id, paid_provider_id, amount, _ = due[0]

    state.config.webhook_url = f"{web.url}/webhooks/quickbooks"
    state.config.webhook_format = shape
    state.webhooks.start()
    state.pay_invoice(connected.tenant_id, paid_provider_id, amount)
    wait_for_events(hooked, 2)  # the Payment created, the Invoice updated
    run_jobs(hooked)
    with hooked.app_context():
        kinds = sorted(db.session.scalars(select(WebhookEvent.kind)))
        assert kinds == ({"legacy": ["Invoice.Update", "Payment.Create"],
                          "cloudevents": ["qbo.invoice.updated.v1", "qbo.payment.created.v1"]}
                         [shape])
        invoice = db.session.get(Invoice, paid_id)
        assert (invoice.status, invoice.amount_due, invoice.next_action_at) == (
            "paid", Decimal("0"), None)

    _run_the_day(hooked, connected.org_id, clock, datetime(2026, 11, 24, 17, 5, tzinfo=UTC))
    sent = Counter(e["InvoiceId"] for e in state.emails(connected.tenant_id))
    assert sent, "the other reminders of the day went out"
    assert paid_provider_id not in sent


def test_a_webhook_closes_planned_actions_before_a_worker_can_run_them(
        hooked, connected, sandbox, web) -> None:  # type: ignore[no-untyped-def]
    from collect.plan import plan_org
    from jobs.tasks import execute_action, sync_org, sync_webhook_changes
    from store import clock as app_clock
    from store.db import db
    from store.models import Action, AuditEvent, Organisation

    state, _ = sandbox
    with hooked.app_context():
        sync_org(connected.org_id, plan_after=False)
        actions = plan_org(db.session, db.session.get(Organisation, connected.org_id),
                           app_clock.now())
        db.session.commit()
        paid, part_paid, other = actions[:3]
        ids = (paid.id, part_paid.id, other.id)
        paid_invoice, part_invoice = paid.invoice.provider_id, part_paid.invoice.provider_id
        planned_due = (paid.planned_amount_due, part_paid.planned_amount_due)
    state.config.webhook_url = f"{web.url}/webhooks/xero"
    assert state.webhooks.flush() == 0  # the books as they were are not news
    state.pay_invoice(connected.tenant_id, paid_invoice, planned_due[0])
    state.pay_invoice(connected.tenant_id, part_invoice, Decimal("1.00"))
    assert state.webhooks.flush() == 2  # one batch: two invoice UPDATEs
    calls = state.calls(connected.tenant_id)
    with hooked.app_context():
        result = sync_webhook_changes(connected.org_id)
        assert (result["events"], result["mode"], result["closed"], result["set_aside"]) == (
            2, "by_id", 1, 1)
        statuses = {a.id: (a.status, (a.result or {}).get("reason"))
                    for a in db.session.scalars(select(Action).where(Action.id.in_(ids)))}
        assert statuses[ids[0]] == ("skipped", "paid")
        assert statuses[ids[2]] == ("planned", None)
        # The changed one was set aside and planned again at once, for the new amount.
        assert statuses[ids[1]] == ("planned", None)
        replanned = db.session.get(Action, ids[1])
        assert replanned.planned_amount_due == planned_due[1] - Decimal("1.00")
        assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.kind == "action_skipped", AuditEvent.action_id == ids[0])) == 1
        before = state.calls(connected.tenant_id)
        assert execute_action(ids[0]) == "skipped"  # its job finds it closed: no provider call
        assert state.calls(connected.tenant_id) == before
    assert state.calls(connected.tenant_id) - calls == 1  # two invoices read by id, one call
    assert state.emails(connected.tenant_id) == []


# --- the nightly reconcile and connections lost --------------------------------------------


def test_the_nightly_reconcile_counts_what_webhooks_missed(hooked, connected, sandbox, web,
                                                          clock) -> None:  # type: ignore[no-untyped-def]
    from jobs.tasks import reconcile_org
    from store.db import db
    from store.models import AuditEvent, Invoice, SyncRun

    state, _ = sandbox
    run_jobs(hooked)
    with hooked.app_context():
        open_ids = [i.provider_id for i in db.session.scalars(
            select(Invoice).where(Invoice.status == "open").order_by(Invoice.id))][:2]
        numbers = {i.provider_id: i.number for i in db.session.scalars(select(Invoice))}
    # A lost webhook: the payment happens while nothing is posted.
    state.pay_invoice(connected.tenant_id, open_ids[0], Decimal("5.00"))
    # A delivered one.
    state.config.webhook_url = f"{web.url}/webhooks/xero"
    state.webhooks.arm()
    clock.advance(seconds=2)
    state.pay_invoice(connected.tenant_id, open_ids[1], Decimal("5.00"))
    assert state.webhooks.flush() == 1
    wait_for_events(hooked, 1)
    with hooked.app_context():
        found = reconcile_org(connected.org_id, "2026-11-24")
        assert (found["missed"], found["missed_invoices"], found["webhook_events_applied"]) == (
            1, [numbers[open_ids[0]]], 1)
        audit = db.session.scalars(select(AuditEvent).where(AuditEvent.kind == "reconcile")
                                   ).one()
        assert audit.message == (f"Nightly reconcile: 1 change(s) webhooks missed "
                                 f"(invoices {numbers[open_ids[0]]})")
        run = db.session.scalars(select(SyncRun).where(SyncRun.mode == "reconcile")).one()
        assert run.status == "done" and run.progress["missed"] == 1
        again = reconcile_org(connected.org_id, "2026-11-25")
        assert again["missed"] == 0
    page = connected.http.get(f"{web.url}/orgs/{connected.org_id}")
    assert "Nightly reconcile: changes webhooks missed: 1 (invoices " in page.text


def test_a_connection_removed_in_xero_is_detected_and_shown(hooked, connected, sandbox, web
                                                            ) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Connection, Invoice

    state, _ = sandbox
    run_jobs(hooked)
    with hooked.app_context():
        provider_id = db.session.scalars(select(Invoice).order_by(Invoice.id)).first(
            ).provider_id
    with state.lock:  # the owner disconnects Dunwell in Xero's settings
        for event in state.auth_events.values():
            event["connections"].clear()
    body = xero_body(connected.tenant_id, provider_id)
    answer = requests.post(f"{web.url}/webhooks/xero", data=body,
                           headers={"x-xero-signature": sign(XERO_KEY, body)})
    assert answer.status_code == 200
    run_jobs(hooked)
    with hooked.app_context():
        connection = db.session.scalars(select(Connection)).one()
        assert connection.status == "needs_reconnect"
        assert "forbidden" in connection.last_error
    page = connected.http.get(f"{web.url}/orgs/{connected.org_id}")
    assert "needs reconnect" in page.text and "forbidden" in page.text
