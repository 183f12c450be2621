"""A QuickBooks incremental sync reads every record kind's changes in one CDC call and applies
them, deletions included; a bookmark older than CDC looks back is read kind by kind by query."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, update

from benchmarks.sync_full import new_organisation
from connectors.quickbooks import parse_qbo_datetime
from tests.conftest import FakeClock
from tests.contract.harness import QuickBooksHarness
from tests.contract.test_incremental_changes import delete_entity


@pytest.fixture
def books(clock: FakeClock) -> Iterator[QuickBooksHarness]:
    harness = QuickBooksHarness(clock)
    yield harness
    harness.server.stop()


def test_an_incremental_sync_is_one_call_and_applies_deletions(
        app: Any, books: QuickBooksHarness) -> None:
    from store.db import db
    from store.models import Contact, Invoice, Payment
    from sync.engine import sync_organisation

    target = books.invoice_due(Decimal("30.00"))
    payment = books.box.pay_invoice(books.realm, target, Decimal("10.00"))
    edited = str(next(i["Id"] for i in books.box.invoices(books.realm)
                      if i["Balance"] > 0 and str(i["Id"]) != target))
    with app.app_context():
        session = db.session()
        org = new_organisation(session)
        connector = books.connector()
        assert sync_organisation(session, org, connector).mode == "full"
        books.clock.advance(minutes=2)
        delete_entity(books, "Payment", payment)
        invoice = next(i for i in books.box.invoices(books.realm) if str(i["Id"]) == target)
        delete_entity(books, "Invoice", invoice)
        books.box.update_invoice(books.realm, edited, CustomerMemo={"value": "Edited"})
        customer = books.box.create(books.realm, "Customer", {"DisplayName": "Late Co"})["Id"]
        books.clock.advance(minutes=2)
        before = len(books.box.requests(books.realm))
        result = sync_organisation(session, org, connector)
        made = [r["path"].rsplit("/", 1)[-1] for r in books.box.requests(books.realm)[before:]]
        assert (result.mode, result.api_calls, made) == ("incremental", 1, ["cdc"])
        gone = session.scalar(select(Invoice).where(Invoice.org_id == org.id,
                                                    Invoice.provider_id == target))
        assert gone is not None and gone.status == "deleted"
        assert gone.id in result.changed_invoice_ids
        allocations = session.scalars(select(Payment).where(
            Payment.org_id == org.id,
            Payment.provider_id.startswith(f"{payment['Id']}:"))).all()
        assert allocations and {p.status for p in allocations} == {"deleted"}
        assert session.scalar(select(Contact.name).where(
            Contact.org_id == org.id, Contact.provider_id == str(customer))) == "Late Co"

        # Nothing changed since: one call, nothing written.
        books.clock.advance(minutes=2)
        again = sync_organisation(session, org, connector)
        assert (again.api_calls, again.changed_invoice_ids) == (1, set())


def test_a_bookmark_older_than_cdc_looks_back_is_read_by_query(
        app: Any, books: QuickBooksHarness) -> None:
    from store.db import db
    from store.models import SyncCursor
    from sync.engine import sync_organisation

    with app.app_context():
        session = db.session()
        org = new_organisation(session)
        connector = books.connector()
        sync_organisation(session, org, connector)
        old = books.clock() - timedelta(days=31)
        session.execute(update(SyncCursor).where(SyncCursor.org_id == org.id,
                                                 SyncCursor.stream == "invoices")
                        .values(cursor=old))
        session.commit()
        before = len(books.box.requests(books.realm))
        result = sync_organisation(session, org, connector)
        made = [r["path"].rsplit("/", 1)[-1] for r in books.box.requests(books.realm)[before:]]
        # Kind by kind: customers and payments by CDC, invoices by query from 31 days back.
        assert result.mode == "incremental"
        assert made == ["cdc", "query", "cdc"], made
        assert result.counts["invoices"] == sum(
            1 for i in books.box.invoices(books.realm)
            if parse_qbo_datetime(i["MetaData"]["LastUpdatedTime"]) >= old) > 0
