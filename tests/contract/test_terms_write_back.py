"""Shorter terms written back: each connector moves an invoice's due date in its sandbox over
HTTP, exactly once under one key, refuses a paid or voided invoice, and the sandbox announces
the change as it does any other edit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from connectors.base import EditRefused
from connectors.quickbooks import QuickBooksConnector
from tests.conftest import FakeClock
from tests.contract.harness import Harness, QuickBooksHarness, XeroHarness
from tests.sandbox.test_sandbox_webhooks import Receiver

HARNESSES = {"xero": XeroHarness, "quickbooks": QuickBooksHarness}
KEY = "7:42:terms_change:2026-12-01"


@pytest.fixture(params=sorted(HARNESSES))
def books(request: pytest.FixtureRequest, clock: FakeClock) -> Iterator[Harness]:
    harness = HARNESSES[request.param](clock)
    yield harness
    harness.server.stop()


def raw(books: Harness, invoice_id: str) -> dict[str, Any]:
    return books._raw(invoice_id)  # type: ignore[attr-defined,no-any-return]


def stamp(books: Harness, invoice_id: str) -> Any:
    """What moves with every change: UpdatedDateUTC (Xero), SyncToken and LastUpdatedTime."""
    found = raw(books, invoice_id)
    if books.provider == "xero":
        return found["UpdatedDateUTC"]
    return found["SyncToken"], found["MetaData"]["LastUpdatedTime"]


def due_in_books(books: Harness, invoice_id: str) -> str:
    found = raw(books, invoice_id)
    return str(found.get("DueDateString") or found["DueDate"])[:10]


def test_the_due_date_moves_once_and_nothing_else_changes(books: Harness,
                                                          clock: FakeClock) -> None:
    connector = books.connector()
    target = books.invoice_due(Decimal("240.00"))
    today = clock().date()
    before = connector.invoice(target)
    assert before.due_date == today + timedelta(days=14)
    stamped = stamp(books, target)
    clock.advance(seconds=5)

    connector.set_invoice_due_date(target, today + timedelta(days=7), KEY)

    after = connector.invoice(target)
    assert after.due_date == today + timedelta(days=7)
    assert due_in_books(books, target) == (today + timedelta(days=7)).isoformat()
    assert (after.total, after.amount_due, after.status, after.issue_date, after.number) == (
        Decimal("240.00"), Decimal("240.00"), "open", today, before.number)
    assert after.updated_at is not None and before.updated_at is not None
    assert after.updated_at > before.updated_at
    moved = stamp(books, target)
    assert moved != stamped
    # The same key again (a retry after a lost answer): nothing changes a second time.
    clock.advance(seconds=5)
    connector.set_invoice_due_date(target, today + timedelta(days=7), KEY)
    assert stamp(books, target) == moved
    assert connector.invoice(target).due_date == today + timedelta(days=7)


def test_the_write_carries_the_idempotency_key(books: Harness, clock: FakeClock) -> None:
    connector = books.connector()
    target = books.invoice_due(Decimal("80.00"))
    connector.set_invoice_due_date(target, clock().date() + timedelta(days=3), KEY)
    if isinstance(books, QuickBooksHarness):
        [write] = [r for r in books.box.requests(books.realm)
                   if r["method"] == "POST" and r["path"].endswith("/invoice")]
        assert write["requestid"]
    else:
        assert isinstance(books, XeroHarness)
        assert any(key == KEY for (_, key) in books.box.idempotent)


def test_a_paid_invoice_is_refused_and_left_as_it_is(books: Harness, clock: FakeClock) -> None:
    connector = books.connector()
    target = books.invoice_due(Decimal("50.00"))
    books.pay(target, Decimal("50.00"))
    stamped = stamp(books, target)
    with pytest.raises(EditRefused):
        connector.set_invoice_due_date(target, clock().date() + timedelta(days=1), KEY)
    assert stamp(books, target) == stamped
    assert connector.invoice(target).due_date == clock().date() + timedelta(days=14)


def test_a_voided_invoice_is_refused(books: Harness, clock: FakeClock) -> None:
    connector = books.connector()
    if isinstance(books, XeroHarness):
        voided = [i["InvoiceID"] for i in books.box.invoices(books.tenant)
                  if i["Status"] == "VOIDED" and i["Type"] == "ACCREC"]
    else:
        assert isinstance(books, QuickBooksHarness)
        voided = [i["Id"] for i in books.box.invoices(books.realm)
                  if i["TotalAmt"] == 0 and i.get("PrivateNote") == "Voided"]
    assert voided, "the seed has a voided invoice"
    before = connector.invoice(voided[0])
    assert before.status == "voided"
    with pytest.raises(EditRefused):
        connector.set_invoice_due_date(voided[0], clock().date(), KEY)
    assert connector.invoice(voided[0]).due_date == before.due_date


def test_the_sandbox_announces_the_change_as_any_edit(books: Harness, clock: FakeClock) -> None:
    receiver = Receiver()
    try:
        connector = books.connector()
        target = books.invoice_due(Decimal("90.00"))
        books.box.config.webhook_url = receiver.url  # type: ignore[attr-defined]
        books.box.webhooks.arm()  # type: ignore[attr-defined]
        clock.advance(seconds=2)
        connector.set_invoice_due_date(target, clock().date() + timedelta(days=2), KEY)
        assert books.box.webhooks.flush() == 1  # type: ignore[attr-defined]
        [(body, _)] = receiver.posts
        payload = json.loads(body)
        if books.provider == "xero":
            [event] = payload["events"]
            assert (event["eventCategory"], event["eventType"], event["resourceId"]) == (
                "INVOICE", "UPDATE", target)
        else:
            [notification] = payload["eventNotifications"]
            assert [(e["name"], e["id"], e["operation"]) for e in
                    notification["dataChangeEvent"]["entities"]] == [
                ("Invoice", target, "Update")]
    finally:
        receiver.server.stop()


def test_quickbooks_rereads_once_after_a_stale_sync_token(clock: FakeClock) -> None:
    """A bookkeeper edits the invoice between our read and our write: QuickBooks answers 5010,
    the connector reads again and writes once more, keeping their edit."""
    books = QuickBooksHarness(clock)
    try:
        connector = books.connector()
        assert isinstance(connector, QuickBooksConnector)
        target = books.invoice_due(Decimal("120.00"))
        original_get = connector._get
        edited: list[bool] = []

        def get_then_edit(entity: str, provider_id: str, **params: str) -> dict[str, Any]:
            found = original_get(entity, provider_id, **params)
            if not edited:
                books.box.update_invoice(books.realm, target,
                                         CustomerMemo={"value": "Thanks!"})
                edited.append(True)
            return found

        connector._get = get_then_edit  # type: ignore[method-assign]
        new_due = clock().date() + timedelta(days=5)
        connector.set_invoice_due_date(target, new_due, KEY)
        found = books._raw(target)
        assert found["CustomerMemo"] == {"value": "Thanks!"}
        assert date.fromisoformat(found["DueDate"]) == new_due
        assert found["SyncToken"] == "2"  # created 0, their edit 1, ours 2
        writes = [r for r in books.box.requests(books.realm)
                  if r["method"] == "POST" and r["path"].endswith("/invoice")]
        assert len(writes) == 2 and writes[1]["requestid"] != writes[0]["requestid"]
    finally:
        books.server.stop()
