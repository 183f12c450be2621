"""The sandboxes' webhooks: what changed, batched, signed like the real services, retried."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from decimal import Decimal

import pytest
from flask import Flask, Response, request

from connectors.quickbooks.webhooks import intuit_events
from connectors.xero.webhooks import xero_events
from tests.conftest import LiveServer


class Receiver:
    """A webhook endpoint that records what it is sent and can fail the first N posts."""

    def __init__(self, fail_first: int = 0) -> None:
        self.posts: list[tuple[bytes, dict[str, str]]] = []
        self.fail_first = fail_first
        app = Flask("receiver")

        @app.post("/hook")
        def hook() -> Response:
            self.posts.append((request.get_data(), dict(request.headers)))
            if len(self.posts) <= self.fail_first:
                return Response(status=503)
            return Response(status=200)

        self.server = LiveServer(app)
        self.url = f"{self.server.url}/hook"


@pytest.fixture
def receiver():  # type: ignore[no-untyped-def]
    found = Receiver()
    yield found
    found.server.stop()


def signed(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def test_xero_sends_one_signed_batch_per_look(sandbox, receiver) -> None:  # type: ignore[no-untyped-def]
    state, _ = sandbox
    state.config.webhook_url = receiver.url
    state.webhooks.arm()
    assert state.webhooks.flush() == 0  # nothing changed since arming: nothing is sent
    assert receiver.posts == []
    tenant = state.tenants()[0]["tenantId"]
    unpaid = [i for i in state.invoices(tenant)
              if i["Status"] == "AUTHORISED" and i["Type"] == "ACCREC"][:3]
    for invoice in unpaid:
        state.pay_invoice(tenant, invoice["InvoiceID"], Decimal("1.00"))
    assert state.webhooks.flush() == 3
    [(body, headers)] = receiver.posts
    assert headers["X-Xero-Signature"] == signed(state.config.webhook_key, body)
    payload = json.loads(body)
    assert (payload["firstEventSequence"], payload["lastEventSequence"]) == (1, 3)
    assert len(payload["entropy"]) == 20
    assert sorted(e["resourceId"] for e in payload["events"]) == sorted(
        i["InvoiceID"] for i in unpaid)
    assert {(e["eventCategory"], e["eventType"], e["tenantId"], e["tenantType"])
            for e in payload["events"]} == {("INVOICE", "UPDATE", tenant, "ORGANISATION")}
    assert payload["events"][0]["resourceUrl"].startswith(
        "https://api.xero.com/api.xro/2.0/Invoices/")
    # Our own parser reads it: the sandbox speaks what the endpoint accepts.
    assert [e.entity for e in xero_events(payload)] == ["invoice"] * 3
    assert state.webhooks.flush() == 0  # delivered once only


def test_xero_announces_a_new_contact_and_invoice_as_create(sandbox, receiver) -> None:  # type: ignore[no-untyped-def]
    state, _ = sandbox
    state.config.webhook_url = receiver.url
    state.webhooks.arm()
    tenant = state.tenants()[0]["tenantId"]
    created = state.add_invoice(tenant, {
        "Type": "ACCREC", "Contact": {"Name": "Brand New Customer Ltd"},
        "LineItems": [{"Description": "Beans", "Quantity": 1, "UnitAmount": 10,
                       "AccountCode": "200"}], "Status": "AUTHORISED"})
    assert state.webhooks.flush() == 2
    events = json.loads(receiver.posts[0][0])["events"]
    assert sorted((e["eventCategory"], e["eventType"]) for e in events) == [
        ("CONTACT", "CREATE"), ("INVOICE", "CREATE")]
    assert created["InvoiceID"] in {e["resourceId"] for e in events}


def test_a_failed_delivery_is_retried_then_delivered_once(sandbox) -> None:  # type: ignore[no-untyped-def]
    state, _ = sandbox
    flaky = Receiver(fail_first=2)
    try:
        state.config.webhook_url = flaky.url
        state.webhooks.arm()
        tenant = state.tenants()[0]["tenantId"]
        invoice = next(i for i in state.invoices(tenant) if i["Status"] == "AUTHORISED")
        state.pay_invoice(tenant, invoice["InvoiceID"], Decimal("1.00"))
        assert state.webhooks.flush() == 1
        assert len(flaky.posts) == 3
        assert len({body for body, _ in flaky.posts}) == 1  # the same batch, retried
        assert len(state.webhooks.delivered) == 1 and state.webhooks.failed == []
    finally:
        flaky.server.stop()


def test_the_background_thread_delivers_without_being_asked(sandbox, receiver) -> None:  # type: ignore[no-untyped-def]
    state, _ = sandbox
    state.config.webhook_url = receiver.url
    state.config.webhook_batch_seconds = 0.1
    state.webhooks.start()
    try:
        tenant = state.tenants()[0]["tenantId"]
        invoice = next(i for i in state.invoices(tenant) if i["Status"] == "AUTHORISED")
        state.pay_invoice(tenant, invoice["InvoiceID"], Decimal("1.00"))
        deadline = time.monotonic() + 10
        while not receiver.posts:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert json.loads(receiver.posts[0][0])["events"][0]["resourceId"] == \
            invoice["InvoiceID"]
    finally:
        state.webhooks.stop()


@pytest.mark.parametrize("shape", ["legacy", "cloudevents"])
def test_quickbooks_batches_a_payment_and_its_invoice(qbo_sandbox, receiver, shape) -> None:  # type: ignore[no-untyped-def]
    state, _ = qbo_sandbox
    state.config.webhook_url = receiver.url
    state.config.webhook_format = shape
    state.webhooks.arm()
    realm = state.companies()[0]["realmId"]
    invoice = next(i for i in state.invoices(realm) if Decimal(str(i["Balance"])) > 0)
    payment = state.pay_invoice(realm, invoice["Id"], Decimal("1.00"))
    assert state.webhooks.flush() == 2
    [(body, headers)] = receiver.posts
    assert headers["Intuit-Signature"] == signed(state.config.webhook_verifier, body)
    payload = json.loads(body)
    if shape == "legacy":
        [notification] = payload["eventNotifications"]
        assert notification["realmId"] == realm
        assert sorted((e["name"], e["id"], e["operation"])
                      for e in notification["dataChangeEvent"]["entities"]) == sorted([
            ("Invoice", invoice["Id"], "Update"), ("Payment", payment["Id"], "Create")])
    else:
        assert sorted((e["type"], e["intuitentityid"], e["intuitaccountid"], e["specversion"])
                      for e in payload) == sorted([
            ("qbo.invoice.updated.v1", invoice["Id"], realm, "1.0"),
            ("qbo.payment.created.v1", payment["Id"], realm, "1.0")])
        assert len({e["id"] for e in payload}) == 2
    assert sorted(e.entity for e in intuit_events(payload)) == ["invoice", "payment"]


def test_quickbooks_announces_a_void_and_a_delete(qbo_sandbox, receiver) -> None:  # type: ignore[no-untyped-def]
    state, _ = qbo_sandbox
    state.config.webhook_url = receiver.url
    state.webhooks.arm()
    realm = state.companies()[0]["realmId"]
    unpaid = [i for i in state.invoices(realm)
              if Decimal(str(i["Balance"])) == Decimal(str(i["TotalAmt"])) > 0][:2]
    with state.lock:
        company = state.company(realm)
        state.save(company, "Invoice", {"Id": unpaid[0]["Id"],
                                        "SyncToken": unpaid[0]["SyncToken"]}, "void")
        state.save(company, "Invoice", {"Id": unpaid[1]["Id"],
                                        "SyncToken": unpaid[1]["SyncToken"]}, "delete")
    assert state.webhooks.flush() == 2
    entities = json.loads(receiver.posts[0][0])["eventNotifications"][0][
        "dataChangeEvent"]["entities"]
    assert sorted((e["id"], e["operation"]) for e in entities) == sorted([
        (unpaid[0]["Id"], "Void"), (unpaid[1]["Id"], "Delete")])
