"""A customer marked disputed as a whole, with its days (collect/contact_disputes.py): setting
and clearing the mark is dated, with who did it in the activity log, and the book gives the
days to each of the customer's invoices as holds (read in one query for a batch), as the
invoice's own pauses and disputes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import event, select

from tests.integration.test_plan_batches import _invoice, _org

pytestmark = pytest.mark.db

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)


def test_setting_and_clearing_the_mark_dates_the_dispute_with_who_did_it(app) -> None:  # type: ignore[no-untyped-def]
    from collect.contact_disputes import set_disputed
    from store.db import db
    from store.models import AuditEvent, ContactDispute, User

    with app.app_context():
        session = db.session()
        _, (ada, bob, _) = _org(session, 1, None)
        user = User(email="collector@example.com", password_hash="x")
        session.add(user)
        session.flush()
        assert set_disputed(session, ada, True, user, NOW)
        assert not set_disputed(session, ada, True, user, NOW + timedelta(days=1))  # as it was
        assert not set_disputed(session, bob, False, user, NOW)
        assert set_disputed(session, ada, False, user, NOW + timedelta(days=20))
        assert set_disputed(session, ada, True, user, NOW + timedelta(days=30))
        session.commit()
        rows = [(r.contact_id, r.started_at, r.ended_at, r.started_by, r.ended_by)
                for r in session.scalars(select(ContactDispute).order_by(ContactDispute.id))]
        assert rows == [(ada.id, NOW, NOW + timedelta(days=20), user.id, user.id),
                        (ada.id, NOW + timedelta(days=30), None, user.id, None)]
        assert ada.disputed and not bob.disputed
        logged = [(e.data["disputed"], e.data["by"], e.data["contact_id"], e.message)
                  for e in session.scalars(select(AuditEvent).where(
                      AuditEvent.kind == "customer_disputed").order_by(AuditEvent.id))]
        assert logged == [
            (True, user.email, ada.id, f"Customer 0 marked disputed by {user.email}"),
            (False, user.email, ada.id, f"Dispute of Customer 0 cleared by {user.email}"),
            (True, user.email, ada.id, f"Customer 0 marked disputed by {user.email}")]


def test_the_book_gives_a_customers_disputes_to_each_of_its_invoices(app) -> None:  # type: ignore[no-untyped-def]
    from collect.book import BATCH, InvoiceReads
    from rules import OrgCalendar
    from rules.invoice import Hold
    from store.db import db
    from store.models import ContactDispute

    with app.app_context():
        session = db.session()
        # Auckland: a dispute set at 13:00 UTC on 03-04 began on 03-05 there.
        org, (ada, bob, _) = _org(session, 2, None, timezone="Pacific/Auckland", country="NZ")
        invoices = [_invoice(session, org, ada if k % 3 else bob, k, 40)
                    for k in range(BATCH + 5)]
        session.add_all([
            ContactDispute(org_id=org.id, contact_id=ada.id,
                           started_at=datetime(2026, 2, 1, 13, tzinfo=UTC),
                           ended_at=datetime(2026, 2, 21, 9, tzinfo=UTC)),
            ContactDispute(org_id=org.id, contact_id=ada.id,
                           started_at=datetime(2026, 3, 4, 13, tzinfo=UTC))])
        session.commit()
        statements: list[str] = []

        def seen(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
            if "contact_disputes" in statement:
                statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", seen)
        try:
            reads = InvoiceReads.read(session, invoices, date(2026, 3, 5))
        finally:
            event.remove(db.engine, "before_cursor_execute", seen)
        assert len(statements) == 1  # one read for the batch, not one per invoice
        calendar = OrgCalendar("Pacific/Auckland", "NZ")
        customer = (Hold(date(2026, 2, 2), date(2026, 2, 21)), Hold(date(2026, 3, 5), None))
        for invoice in invoices:
            expected = customer if invoice.contact_id == ada.id else ()
            assert reads.holds(invoice.id, calendar) == expected, invoice.number
