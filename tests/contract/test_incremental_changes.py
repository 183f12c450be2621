"""Incremental reads in the fewest calls: QuickBooks asks CDC for every record kind at once
(falling back kind by kind where CDC cannot answer under its cap or look back far enough), and
Xero reads the invoices a webhook names by their ids, many to a call."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests

import connectors.quickbooks as qbo
from connectors.quickbooks import QuickBooksConnector, parse_qbo_datetime
from tests.conftest import FakeClock
from tests.contract.harness import QuickBooksHarness, XeroHarness

KINDS = ("contacts", "invoices", "payments")


@pytest.fixture
def books(clock: FakeClock) -> Iterator[QuickBooksHarness]:
    harness = QuickBooksHarness(clock)
    yield harness
    harness.server.stop()


@pytest.fixture
def xero(clock: FakeClock) -> Iterator[XeroHarness]:
    harness = XeroHarness(clock)
    yield harness
    harness.server.stop()


def _connector(books: QuickBooksHarness) -> QuickBooksConnector:
    connector = books.connector()
    assert isinstance(connector, QuickBooksConnector)
    return connector


def _since(books: QuickBooksHarness) -> dict[str, datetime | None]:
    """Every kind's bookmark now, then a minute passes."""
    moment = books.clock()
    books.clock.advance(minutes=1)
    return {kind: moment for kind in KINDS}


def _read(pages: dict[str, Any]) -> dict[str, list[Any]]:
    return {kind: [record for page in kind_pages for record in page]
            for kind, (kind_pages, _) in pages.items()}


def _requests_after(books: QuickBooksHarness, count: int) -> list[dict[str, Any]]:
    return books.box.requests(books.realm)[count:]


def _change_each_kind(books: QuickBooksHarness, invoices: int = 1) -> tuple[str, list[str], str]:
    """A new customer, `invoices` invoices edited and one of them paid: the customer's id, the
    invoices' ids and the payment's id."""
    customer = books.box.create(books.realm, "Customer", {"DisplayName": "Changed Co"})["Id"]
    edited = [str(raw["Id"]) for raw in books.box.invoices(books.realm)
              if raw["Balance"] > 0][:invoices]
    assert len(edited) == invoices
    for invoice_id in edited:
        books.box.update_invoice(books.realm, invoice_id, CustomerMemo={"value": "Edited"})
    payment = books.box.pay_invoice(books.realm, edited[0], Decimal("1.00"))
    return str(customer), edited, str(payment["Id"])


def test_one_cdc_call_reads_customers_invoices_and_payments(books: QuickBooksHarness) -> None:
    connector = _connector(books)
    since = _since(books)
    customer, invoices, payment = _change_each_kind(books, invoices=3)
    before = len(books.box.requests(books.realm))
    changed = _read(connector.changes(since) or {})
    made = _requests_after(books, before)
    assert [r["path"].rsplit("/", 1)[-1] for r in made] == ["cdc"]
    assert made[0]["query"]["entities"] == "Customer,Invoice,Payment"
    assert customer in {c.provider_id for c in changed["contacts"]}
    assert {i.provider_id for i in changed["invoices"]} == set(invoices)
    assert [(p.provider_id, p.amount) for p in changed["payments"]] == [
        (f"{payment}:{invoices[0]}", Decimal("1.00"))]


def test_each_kind_keeps_to_its_own_bookmark(books: QuickBooksHarness) -> None:
    """CDC is asked from the oldest bookmark; a kind whose bookmark is newer gets only what
    changed after it."""
    connector = _connector(books)
    old = books.clock()
    books.clock.advance(minutes=1)
    edited = str(next(raw["Id"] for raw in books.box.invoices(books.realm) if raw["Balance"] > 0))
    books.box.update_invoice(books.realm, edited, CustomerMemo={"value": "Early"})
    books.clock.advance(minutes=1)
    newer = books.clock()
    books.clock.advance(minutes=1)
    changed = _read(connector.changes({"contacts": old, "invoices": newer,
                                       "payments": old}) or {})
    assert edited not in {i.provider_id for i in changed["invoices"]}


def test_a_kind_that_fills_the_cdc_answer_is_read_by_query(
        books: QuickBooksHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    """The answer's cap holds for all kinds together: a full answer is asked again in groups
    that fit, and a kind that alone fills one is read by query; nothing is lost."""
    connector = _connector(books)
    since = _since(books)
    customer, invoices, payment = _change_each_kind(books, invoices=6)
    books.box.config.cdc_max_objects = 5
    monkeypatch.setattr(qbo, "CDC_MAX_OBJECTS", 5)
    before = len(books.box.requests(books.realm))
    changed = _read(connector.changes(since) or {})
    made = [(r["path"].rsplit("/", 1)[-1], r["query"].get("entities"))
            for r in _requests_after(books, before)]
    # The full answer (the cap's 5 earliest changes: the customer, 4 invoices) is asked again
    # in groups: Invoice alone (its 4 are at least half the cap), whose answer is full again,
    # so it is read by a keyset query; Customer with Payment, which the answer showed none of.
    assert made == [("cdc", "Customer,Invoice,Payment"), ("cdc", "Invoice"),
                    ("cdc", "Customer,Payment"), ("query", None)], made
    assert customer in {c.provider_id for c in changed["contacts"]}
    assert set(invoices) <= {i.provider_id for i in changed["invoices"]}
    assert any(p.provider_id.startswith(f"{payment}:") for p in changed["payments"])


def test_a_bookmark_older_than_cdc_looks_back_reads_each_kind_by_query(
        books: QuickBooksHarness) -> None:
    connector = _connector(books)
    since = {kind: books.clock() - timedelta(days=31) for kind in KINDS}
    before = len(books.box.requests(books.realm))
    assert connector.changes(since) is None  # the sync reads kind by kind
    assert _requests_after(books, before) == []
    invoices = [i for page in connector.invoices(since["invoices"]) for i in page]
    paths = [r["path"].rsplit("/", 1)[-1] for r in _requests_after(books, before)]
    assert "cdc" not in paths and paths[0] == "query"
    expected = {str(i["Id"]) for i in books.box.invoices(books.realm)
                if parse_qbo_datetime(i["MetaData"]["LastUpdatedTime"]) >= since["invoices"]}
    assert expected and {i.provider_id for i in invoices} == expected
    # A missing bookmark (a kind never read) is no incremental read either.
    assert connector.changes({**since, "invoices": None}) is None


def delete_entity(books: QuickBooksHarness, entity: str, raw: dict[str, Any]) -> None:
    """A delete through the API, as another app or a bookkeeper makes one."""
    tokens = books.tokens().tokens
    answer = requests.post(
        f"{books.server.url}/v3/company/{books.realm}/{entity.lower()}",
        params={"operation": "delete", "minorversion": 75},
        json={"Id": raw["Id"], "SyncToken": raw["SyncToken"]},
        headers={"Authorization": f"Bearer {tokens.access_token}",
                 "Accept": "application/json"}, timeout=10)
    assert answer.status_code == 200, answer.text


def test_deletions_come_with_the_one_call(books: QuickBooksHarness) -> None:
    connector = _connector(books)
    target = books.invoice_due(Decimal("40.00"))
    payment = books.box.pay_invoice(books.realm, target, Decimal("40.00"))
    since = _since(books)
    delete_entity(books, "Payment", payment)
    invoice = next(i for i in books.box.invoices(books.realm) if str(i["Id"]) == target)
    delete_entity(books, "Invoice", invoice)
    books.clock.advance(minutes=1)
    before = len(books.box.requests(books.realm))
    changed = _read(connector.changes(since) or {})
    made = _requests_after(books, before)
    assert [r["path"].rsplit("/", 1)[-1] for r in made if r["method"] == "GET"] == ["cdc"]
    assert [(i.provider_id, i.status) for i in changed["invoices"]] == [(target, "deleted")]
    assert [(p.provider_id, p.status, p.invoice_provider_id) for p in changed["payments"]] == [
        (str(payment["Id"]), "deleted", None)]


def test_xero_reads_the_invoices_a_webhook_names_in_one_call(xero: XeroHarness) -> None:
    connector = xero.connector()
    named = [xero.open_invoice(), xero.open_invoice(part_paid=True), xero.invoice_due(
        Decimal("12.00"))]
    xero.pay(named[0], Decimal("1.00"))
    before = xero.calls()
    read = connector.invoices_by_id(named)
    assert xero.calls() - before == 1
    assert sorted(r.provider_id for r in read) == sorted(named)
    paid = next(r for r in read if r.provider_id == named[0])
    assert paid.amount_due == Decimal(str(xero._raw(named[0])["AmountDue"]))
