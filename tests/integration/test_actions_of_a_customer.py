"""A customer's actions (statements, retainer top-ups, the stop-service signal of a credit hold)
are filed under the customer and borrow none of their invoices: planned once however often the
planners run, also beside the rows an earlier planner wrote under a borrowed invoice's key; and
deleting the customer or an invoice leaves the ledger's rows (SET NULL), each still filed
under at most one of the two."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import IntegrityError

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # a Tuesday, 10:00 in London
HOLD_DAY = date(2026, 11, 24)


def _book(session):  # type: ignore[no-untyped-def]
    """An organisation whose customer Ada is on hold, has a retainer running dry and two open
    invoices; Bob owes one. Statements go on the 24th at 09:00."""
    from store.models import Contact, CreditSettings, Invoice, Organisation, Retainer

    org = Organisation(name="Harbour Ltd", country="GB", timezone="Europe/London",
                       base_currency="GBP", mode="live", live_since=NOW - timedelta(days=30))
    session.add(org)
    session.flush()
    ada = Contact(org_id=org.id, provider_id="C-ADA", name="Ada Ltd", email="ada@example.com",
                  on_hold=True, hold_reason="cheque bounced", on_hold_at=NOW)
    bob = Contact(org_id=org.id, provider_id="C-BOB", name="Bob Ltd", email="bob@example.com")
    session.add_all([ada, bob])
    session.flush()
    invoices = []
    for n, (contact, due) in enumerate([(ada, date(2026, 10, 1)), (ada, date(2026, 11, 1)),
                                        (bob, date(2026, 11, 10))]):
        invoice = Invoice(org_id=org.id, provider_id=f"P{n}", number=f"INV-{n}",
                          contact_id=contact.id, contact_provider_id=contact.provider_id,
                          currency="GBP", issue_date=due - timedelta(days=30), due_date=due,
                          total=Decimal("100.00"), amount_paid=Decimal("0.00"),
                          amount_due=Decimal("100.00"), status="open")
        session.add(invoice)
        invoices.append(invoice)
    session.add(CreditSettings(org_id=org.id, stop_service_on_hold=True, statement_day=24,
                               statement_time="09:00", statement_channel="dunwell_email"))
    session.add(Retainer(org_id=org.id, contact_id=ada.id, currency="GBP",
                         threshold=Decimal("500.00"), top_up_to=Decimal("2000.00"),
                         started_on=date(2026, 11, 20)))
    session.commit()
    return org, ada, bob, invoices


def _plan_for_customers(session, org):  # type: ignore[no-untyped-def]
    """Every planner of a customer's actions, once."""
    from collect import credit_requests, customers, statements
    from collect.book import Book
    from store.models import Contact

    planned = statements.plan_statements(session, org, NOW)
    planned += credit_requests.plan_top_ups(session, org, Book(session, org, []), NOW)
    for contact in session.scalars(select(Contact).where(Contact.org_id == org.id)):
        signal = customers.signal_hold(session, org, contact, NOW)
        if signal is not None:
            planned.append(signal)
    session.commit()
    return planned


def test_a_customers_actions_are_filed_under_the_customer_and_planned_once(app) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Action

    with app.app_context():
        session = db.session
        org, ada, bob, _ = _book(session)
        planned = _plan_for_customers(session, org)
        found = {(a.kind, a.contact_id, a.invoice_id, a.key, a.planned_amount_due)
                 for a in planned}
        assert found == {
            ("statement", ada.id, None, f"{org.id}:contact{ada.id}:statement:2026-11", None),
            ("statement", bob.id, None, f"{org.id}:contact{bob.id}:statement:2026-11", None),
            ("retainer_top_up", ada.id, None, f"{org.id}:contact{ada.id}:retainer_top_up:0",
             None),
            ("stop_service", ada.id, None,
             f"{org.id}:contact{ada.id}:stop_service:hold:2026-11-24", None)}
        # The same day planned again, and again: nothing new.
        assert _plan_for_customers(session, org) == []
        assert _plan_for_customers(session, org) == []
        assert session.scalar(select(func.count()).select_from(Action)) == 4


def test_rows_an_earlier_planner_filed_under_an_invoice_are_not_planned_again(app) -> None:  # type: ignore[no-untyped-def]
    """As the migration (o1contact001) leaves them: the customer in contact_id, no invoice,
    and the keys they were planned under (a hold's named the invoice it borrowed)."""
    from store.db import db
    from store.models import Action

    with app.app_context():
        session = db.session
        org, ada, bob, invoices = _book(session)
        borrowed = invoices[0].id
        for key, kind, contact, status in [
                (f"{org.id}:contact{ada.id}:statement:2026-11", "statement", ada, "done"),
                (f"{org.id}:contact{bob.id}:statement:2026-11", "statement", bob,
                 "pending_approval"),
                (f"{org.id}:contact{ada.id}:retainer_top_up:0", "retainer_top_up", ada, "done"),
                (f"{org.id}:{borrowed}:stop_service:hold{ada.id}:2026-11-24", "stop_service",
                 ada, "done")]:
            session.add(Action(org_id=org.id, contact_id=contact.id, invoice_id=None, key=key,
                               kind=kind, status=status, scheduled_for=NOW - timedelta(hours=1),
                               created_at=NOW - timedelta(hours=1),
                               details={"trigger": "credit_hold"} if kind == "stop_service"
                               else None))
        session.commit()
        assert _plan_for_customers(session, org) == []
        assert session.scalar(select(func.count()).select_from(Action)) == 4
        # A new hold (released, then held again on another day) is a new signal.
        from collect import customers

        ada.on_hold_at = NOW + timedelta(days=8)
        signal = customers.signal_hold(session, org, ada, NOW + timedelta(days=8))
        assert signal is not None and (signal.key, signal.contact_id, signal.invoice_id) == (
            f"{org.id}:contact{ada.id}:stop_service:hold:2026-12-02", ada.id, None)


def _foreign_keys_on(session) -> None:  # type: ignore[no-untyped-def]
    """SQLite enforces foreign keys (and their ON DELETE) only when a connection asks."""
    if session.get_bind().dialect.name == "sqlite":
        session.commit()
        session.connection().exec_driver_sql("PRAGMA foreign_keys=ON")
        assert session.connection().exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_deleting_the_customer_or_the_invoice_keeps_the_ledger_rows(app) -> None:  # type: ignore[no-untyped-def]
    from collect.execute import execute_action
    from store.db import db
    from store.models import Action, Contact, Invoice

    with app.app_context():
        session = db.session
        org, ada, bob, invoices = _book(session)
        statement = next(a for a in _plan_for_customers(session, org)
                         if a.kind == "statement" and a.contact_id == bob.id)
        reminder = Action(org_id=org.id, invoice_id=invoices[0].id, key=f"{org.id}:reminder",
                          kind="reminder", status="done", scheduled_for=NOW, created_at=NOW)
        session.add(reminder)
        session.commit()
        statement_id, reminder_id, bob_id = statement.id, reminder.id, bob.id

        # At most one of the two: a row naming both is refused by the database.
        with pytest.raises(IntegrityError):
            with session.begin_nested():
                session.add(Action(org_id=org.id, invoice_id=invoices[0].id,
                                   contact_id=ada.id, key=f"{org.id}:both", kind="statement",
                                   status="planned", scheduled_for=NOW, created_at=NOW))
        session.rollback()

        _foreign_keys_on(session)
        session.execute(delete(Invoice).where(Invoice.contact_id == bob_id))
        session.execute(delete(Contact).where(Contact.id == bob_id))
        session.execute(delete(Invoice).where(Invoice.id == invoices[0].id))
        session.commit()
        session.expire_all()
        kept = {a.id: (a.invoice_id, a.contact_id) for a in session.scalars(
            select(Action).where(Action.id.in_((statement_id, reminder_id))))}
        assert kept == {statement_id: (None, None), reminder_id: (None, None)}
        # The statement of a customer who is gone is not sent: skipped, with the reason.
        gone = session.get(Action, statement_id)
        assert execute_action(session, gone, None, NOW, "worker-1") == "skipped"
        assert (gone.result, session.get(Action, statement_id).status) == (
            {"reason": "gone"}, "skipped")
        if session.get_bind().dialect.name == "sqlite":
            session.commit()
            session.connection().exec_driver_sql("PRAGMA foreign_keys=OFF")
        assert session.execute(text("SELECT COUNT(*) FROM actions WHERE invoice_id IS NOT NULL"
                                    " AND contact_id IS NOT NULL")).scalar() == 0


def test_the_pages_and_the_api_name_the_customer_of_a_customers_action(app, web) -> None:  # type: ignore[no-untyped-def]
    """A statement waiting for approval is shown with its customer (linked), on the approvals
    page and the dashboard, and on the customer's page; the API gives its contact_id."""
    import requests

    from app.organisations.members import new_api_token
    from store.db import db
    from store.models import Action, Membership, User
    from tests.integration import flows
    from tests.integration.conftest import EMAIL, PASSWORD, create_user

    create_user(app)
    with app.app_context():
        session = db.session
        org, ada, bob, _ = _book(session)
        user = session.scalars(select(User).where(User.email == EMAIL)).one()
        session.add(Membership(user_id=user.id, org_id=org.id, role="owner"))
        statement = next(a for a in _plan_for_customers(session, org)
                         if a.kind == "statement" and a.contact_id == bob.id)
        statement.status = "planned"
        waiting = Action(org_id=org.id, contact_id=ada.id, key=f"{org.id}:contact{ada.id}:x",
                         kind="statement", status="pending_approval", scheduled_for=NOW,
                         created_at=NOW, channel="dunwell_email")
        session.add(waiting)
        session.commit()
        token = new_api_token(org, user, "test", NOW)
        session.commit()
        org_id, ada_id, bob_id, statement_id = org.id, ada.id, bob.id, statement.id
        waiting_id = waiting.id
    http = requests.Session()
    flows.sign_in(http, web.url, EMAIL, PASSWORD)

    def customer_link(contact_id: int) -> str:
        return f'href="/orgs/{org_id}/customers/{contact_id}"'

    approvals = http.get(f"{web.url}/orgs/{org_id}/settings/approvals").text
    row = approvals.split(f'id="action-{waiting_id}"')[1].split("</tr>")[0]
    assert customer_link(ada_id) in row and "<bdi>Ada Ltd</bdi>" in row
    coming_up = http.get(f"{web.url}/orgs/{org_id}/dashboard").text.split('id="upcoming"')[1]
    assert customer_link(bob_id) in coming_up.split("</table>")[0]
    page = http.get(f"{web.url}/orgs/{org_id}/customers/{bob_id}").text
    assert f'<tr id="action-{statement_id}">' in page.split('id="customer-actions"')[1]
    listed = requests.get(f"{web.url}/api/v1/actions",
                          headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
    assert {(a["id"], a["invoice_id"], a["contact_id"]) for a in listed["actions"]
            if a["kind"] == "statement" and a["status"] == "planned"} >= {
        (statement_id, None, bob_id)}


def test_the_agency_case_file_holds_the_statements_that_listed_the_invoice(app) -> None:  # type: ignore[no-untyped-def]
    from collect.documents import case_facts
    from store.db import db
    from store.models import Action

    with app.app_context():
        session = db.session
        org, ada, bob, invoices = _book(session)
        invoice = invoices[1]  # Ada's, issued 2 October
        for key, contact, finished in [
                ("before", ada, datetime(2026, 9, 24, 9, tzinfo=UTC)),  # before it was issued
                ("october", ada, datetime(2026, 10, 24, 9, tzinfo=UTC)),
                ("bobs", bob, datetime(2026, 10, 24, 9, tzinfo=UTC))]:
            session.add(Action(
                org_id=org.id, contact_id=contact.id, key=f"{org.id}:{key}", kind="statement",
                status="done", channel="dunwell_email", scheduled_for=finished,
                finished_at=finished, created_at=finished, reason="Statement",
                result={"message": {"subject": f"Statement {key}", "text": "..."}}))
        session.commit()
        facts = case_facts(session, org, invoice, NOW)
        assert [(m.kind, m.subject, m.recipient) for m in facts.messages] == [
            ("statement", "Statement october", "ada@example.com")]
        assert [a.kind for a in facts.timeline] == ["statement"]
