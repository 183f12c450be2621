"""Quotes read by both connectors from their sandboxes over HTTP: paged, incremental, every
status, and the record read again by id (Xero Quotes, QuickBooks Estimates)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest

from connectors.base import NotFound, QuoteRecord
from tests.conftest import FakeClock
from tests.contract.harness import Harness, QuickBooksHarness, XeroHarness

HARNESSES = {"xero": XeroHarness, "quickbooks": QuickBooksHarness}


@pytest.fixture(params=sorted(HARNESSES))
def books(request: pytest.FixtureRequest, clock: FakeClock) -> Iterator[Harness]:
    harness = HARNESSES[request.param](clock)
    yield harness
    harness.server.stop()


def everything(pages: Iterator[list[QuoteRecord]]) -> list[QuoteRecord]:
    return [record for page in pages for record in page]


def test_the_demo_quotes_in_every_status(books: Harness) -> None:
    connector = books.connector()
    quotes = {q.number: q for q in everything(connector.quotes(None))}
    if books.provider == "xero":
        assert {n: (q.status, q.provider_status, q.total) for n, q in quotes.items()} == {
            "QU-0001": ("accepted", "ACCEPTED", Decimal("11400.00")),
            "QU-0002": ("sent", "SENT", Decimal("5040.00")),
            "QU-0003": ("declined", "DECLINED", Decimal("14400.00")),
            "QU-0004": ("draft", "DRAFT", Decimal("960.00")),
            "QU-0005": ("invoiced", "INVOICED", Decimal("3120.00"))}
        first = quotes["QU-0001"]
        assert (first.currency, first.issue_date.isoformat() if first.issue_date else None,
                first.expiry_date.isoformat() if first.expiry_date else None,
                first.accepted_on, first.invoice_provider_ids) == (
            "GBP", "2026-11-19", "2026-12-19", None, ())
    else:
        assert {n: (q.status, q.provider_status, q.total) for n, q in quotes.items()} == {
            "5001": ("accepted", "Accepted", Decimal("3000.00")),
            "5002": ("sent", "Pending", Decimal("480.00")),
            "5003": ("declined", "Rejected", Decimal("400.00")),
            "5004": ("invoiced", "Closed", Decimal("475.00"))}
        first = quotes["5001"]
        assert (first.currency, first.issue_date.isoformat() if first.issue_date else None,
                first.accepted_on.isoformat() if first.accepted_on else None) == (
            "USD", "2026-11-18", "2026-11-20")
    assert connector.quote(first.provider_id) == first
    with pytest.raises(NotFound):
        connector.quote("00000000-0000-4000-8000-000000000000" if books.provider == "xero"
                        else "999999")


def test_quotes_are_read_incrementally_and_page_by_page(books: Harness, clock: FakeClock
                                                        ) -> None:
    connector = books.connector()
    before = everything(connector.quotes(None))
    newest = max(q.updated_at for q in before if q.updated_at is not None)
    clock.advance(minutes=5)
    # 120 new quotes: more than one Xero page of 100.
    if books.provider == "xero":
        box, tenant = books.box, books.tenant  # type: ignore[attr-defined]
        contact = next(c for c in box.contacts(tenant) if c["IsCustomer"])
        for n in range(120):
            box.add_quote(tenant, contact["ContactID"], Decimal(100 + n))
    else:
        box, realm = books.box, books.realm  # type: ignore[attr-defined]
        customer = box.customers(realm)[0]
        for n in range(120):
            box.create(realm, "Estimate", {
                "CustomerRef": {"value": customer["Id"]},
                "Line": [{"Amount": str(100 + n), "DetailType": "SalesItemLineDetail",
                          "SalesItemLineDetail": {}}]})
    calls = connector.calls
    pages = list(connector.quotes(newest + timedelta(seconds=1)))
    read = [q for page in pages for q in page]
    assert len(read) == 120 and {q.status for q in read} == {"sent"}
    if books.provider == "xero":
        assert [len(p) for p in pages] == [100, 20] and connector.calls - calls == 2
    else:  # one CDC call answers them all
        assert [len(p) for p in pages] == [120] and connector.calls - calls == 1
    # Nothing changed since the newest: nothing read.
    latest = max(q.updated_at for q in read if q.updated_at is not None)
    clock.advance(minutes=5)
    assert everything(connector.quotes(latest + timedelta(seconds=1))) == []
