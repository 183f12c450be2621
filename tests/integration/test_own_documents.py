"""Our own documents are not debts to chase (issue 22, point 4), on both sandboxes: the fee
invoices and the credit note Dunwell made are recorded as its own, never get an action of
their own, appear with the invoice they belong to (its page, the organisation's invoice list,
the customer's page) and count towards that customer's balance."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from babel.numbers import format_currency
from sqlalchemy import func, select

from tests.integration import flows
from tests.integration.conftest import connect, run_jobs

pytestmark = pytest.mark.db

POLICY = {
    "version": 2,
    "reminder_steps": [{"offset_days": 0}, {"offset_days": 7, "tone": "firm"}],
    "late_fees": [{"id": "late", "rule": {"kind": "flat", "amount": "25.00", "grace_days": 0,
                                          "placement": "separate_invoice"}}],
    "early_payment_discount": {"percent": "2", "within_days": 10},
}


def money(amount: Decimal, currency: str, country: str) -> str:
    """As the pages write it in English for a book in `country` (app/formatting.reader_locale:
    a UK book's dollars are US$)."""
    return format_currency(amount, currency, locale=f"en_{country}")


def text_of(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def section(page: str, element_id: str) -> str:
    found = re.search(rf'<(\w+)[^>]*id="{element_id}"[^>]*>(.*?)</\1>', page, re.S)
    assert found, f"no #{element_id} on the page"
    return " ".join(text_of(found.group(2)).split())


def credit_notes(provider: str, box: Any, tenant: str) -> list[str]:
    if provider == "xero":
        return [str(n["CreditNoteID"]) for n in box.credit_notes(tenant)]
    return [str(m["Id"]) for m in box.credit_memos(tenant)]


def test_credit_notes_made_before_are_recorded_as_ours_by_the_migration(  # type: ignore[no-untyped-def]
        empty_database_url) -> None:
    from sqlalchemy import create_engine, insert
    from sqlalchemy.orm import Session

    from migrations import upgrade
    from store.models import Action, Invoice, Organisation, OwnDocument

    upgrade("j1sms0000001", url=empty_database_url)
    engine = create_engine(empty_database_url)
    at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    # Rows as that revision held them: the tables' columns named one by one (Core inserts of
    # the given values and the columns' defaults), not the models, whose later columns the
    # schema at j1sms0000001 does not have yet.
    with Session(engine) as session:
        org_id = session.execute(insert(Organisation.__table__).values(
            name="Old Ltd", country="GB", timezone="Europe/London", base_currency="GBP")
            .returning(Organisation.__table__.c.id)).scalar_one()
        invoice_id = session.execute(insert(Invoice.__table__).values(
            org_id=org_id, provider_id="INV-9", number="INV-9", currency="GBP",
            total=Decimal("100.00"), amount_paid=Decimal("98.00"), amount_due=Decimal(0),
            status="paid").returning(Invoice.__table__.c.id)).scalar_one()
        session.execute(insert(Action.__table__), [
            {"org_id": org_id, "invoice_id": invoice_id, "key": "1:9:discount",
             "kind": "discount", "scheduled_for": at, "status": "done", "finished_at": at,
             "amount": Decimal("2.00"),
             "result": {"placed": "credit_note", "credit_note_id": "CN-7"}},
            {"org_id": org_id, "invoice_id": invoice_id, "key": "1:9:discount:line",
             "kind": "discount", "scheduled_for": at, "status": "done", "finished_at": at,
             "amount": None, "result": {"placed": "line"}}])
        session.commit()
    upgrade(url=empty_database_url)
    with Session(engine) as session:
        rows = [(r.org_id, r.provider_id, r.kind, r.invoice_id)
                for r in session.scalars(select(OwnDocument))]
    engine.dispose()
    assert rows == [(org_id, "CN-7", "credit_note", invoice_id)]


@pytest.mark.parametrize("provider", ["xero", "quickbooks"])
def test_our_documents_are_shown_with_their_invoice_and_counted_never_chased(  # type: ignore[no-untyped-def]
        app, web, sandbox, qbo_sandbox, clock, provider: str) -> None:
    from app.settings.services import save_policy
    from jobs.tasks import enqueue_sync
    from rules import policy_from_json
    from store.db import db
    from store.models import Action, Invoice, Organisation, OwnDocument

    if provider == "quickbooks":
        clock.set(datetime(2026, 11, 24, 18, 0, tzinfo=UTC))  # 10:00 in California
    box = (sandbox if provider == "xero" else qbo_sandbox)[0]
    connected = connect(app, web, provider, live=False)
    run_jobs(app)  # the first sync, in review
    with app.app_context():
        org = db.session.get(Organisation, connected.org_id)
        country = org.country
        save_policy(org, "the test", policy_from_json(POLICY), clock())
        today = clock().astimezone(ZoneInfo(org.timezone)).date()
        recent = next(i for i in db.session.scalars(select(Invoice).where(
            Invoice.org_id == org.id, Invoice.status == "open").order_by(Invoice.id))
            if i.contact is not None and i.contact.email and i.amount_paid == 0
            and i.issue_date is not None and i.issue_date >= today - timedelta(days=9))
        discounted, discounted_total = recent.provider_id, recent.total
    notes_before = set(credit_notes(provider, box, connected.tenant_id))
    box.pay_invoice(connected.tenant_id, discounted, discounted_total * Decimal("0.98"))

    # Live, charging the lateness from before go-live: fee invoices for the late invoices,
    # and the 2 % discount taken by the customer who paid 98 % in time, as a credit note.
    flows.go_live(connected.http, web.url, connected.org_id, charge_earlier=True)
    with app.app_context():
        enqueue_sync(connected.org_id)
    run_jobs(app)
    made_notes = set(credit_notes(provider, box, connected.tenant_id)) - notes_before
    assert len(made_notes) == 1
    # Synced back, falling due after 14 days, and left 20 days more: never chased.
    for _ in range(2):
        clock.advance(days=17)
        with app.app_context():
            enqueue_sync(connected.org_id)
        run_jobs(app)

    http, base = connected.http, f"{web.url}/orgs/{connected.org_id}"
    with app.app_context():
        own = db.session.scalars(select(OwnDocument).where(
            OwnDocument.org_id == connected.org_id)).all()
        kinds = {row.provider_id: row.kind for row in own}
        # The credit note Dunwell made is recorded as its own, with the invoice it credits.
        [note] = [row for row in own if row.kind == "credit_note"]
        assert note.provider_id in made_notes
        credited = db.session.scalar(select(Invoice).where(Invoice.id == note.invoice_id))
        assert credited.provider_id == discounted
        fee_rows = [row for row in own if row.kind == "fee_invoice"]
        assert fee_rows and set(kinds.values()) == {"fee_invoice", "credit_note"}
        fees = db.session.scalars(select(Invoice).where(
            Invoice.org_id == connected.org_id,
            Invoice.provider_id.in_([row.provider_id for row in fee_rows]))).all()
        assert fees  # those made by the last run are read back by the next sync
        late_fees = [f for f in fees if f.status == "open" and f.due_date < clock().date()]
        assert late_fees, "a fee invoice long past its own due date"
        # The ledger: nothing planned, done or due for any document of ours.
        assert db.session.scalar(select(func.count(Action.id)).where(
            Action.invoice_id.in_([f.id for f in fees]))) == 0
        assert all(f.next_action_at is None for f in fees)
        fee = late_fees[0]
        parent = db.session.get(Invoice, next(row.invoice_id for row in fee_rows
                                              if row.provider_id == fee.provider_id))
        siblings = [f for f in fees if f.status == "open" and f.currency == parent.currency
                    and kinds[f.provider_id] == "fee_invoice"
                    and next(r.invoice_id for r in fee_rows if r.provider_id == f.provider_id)
                    == parent.id]
        owed_with_fees = (parent.amount_due if parent.status == "open" else Decimal(0)) + sum(
            (f.amount_due for f in siblings), Decimal(0))
        contact_id = parent.contact_id
        fee_id, fee_number, parent_id, parent_number = fee.id, fee.number, parent.id, \
            parent.number
        currency = parent.currency
        open_of_contact = sum((i.amount_due for i in db.session.scalars(select(Invoice).where(
            Invoice.org_id == connected.org_id, Invoice.contact_id == contact_id,
            Invoice.status == "open", Invoice.currency == parent.currency,
            Invoice.due_date.is_not(None)))), Decimal(0))
        fee_owed = fee.amount_due
        credited_id, credited_currency = credited.id, credited.currency
        credited_amount = db.session.scalar(
            select(Action.amount).where(Action.invoice_id == credited.id,
                                        Action.kind == "discount"))

    # The fee invoice's own page: Dunwell's, with its invoice, and no action planned.
    page = http.get(f"{base}/invoices/{fee_id}").text
    assert (f"Dunwell made this fee invoice for invoice {parent_number}. It is never reminded,"
            " fined or escalated on its own") in section(page, "own-document")
    assert section(page, "no-action") == ("No action is planned: Dunwell does not chase a"
                                          " document it made.")
    # The invoice it belongs to shows it, and what is owed with it.
    page = http.get(f"{base}/invoices/{parent_id}").text
    made = section(page, "own-documents")
    assert "Fee invoice" in made and fee_number in made
    assert f"owed {money(fee_owed, currency, country)}" in made
    with_fees = money(owed_with_fees, currency, country)
    assert f"Owed on this invoice with its fee invoices: {with_fees}." in made
    # The credited invoice shows the credit note Dunwell made and what it credited.
    page = http.get(f"{base}/invoices/{credited_id}").text
    made = section(page, "own-documents")
    assert "Credit note" in made and note.provider_id in made
    assert money(-credited_amount, credited_currency, country) in made
    assert "fee invoices" not in made.split("Credit note")[0]

    # The organisation's invoice list: the fee invoice right after its invoice, not chased
    # (the list is read a page at a time: the customer's invoices, on one page).
    page = text_of(http.get(base, params={"customer": contact_id, "status": "all",
                                          "per_page": 200}).text)
    rows = " ".join(page.split())
    at_parent = rows.index(f" {parent_number} ")
    at_fee = rows.index(f" {fee_number} ")
    between = rows[at_parent:at_fee]
    assert at_parent < at_fee and between.count(" open ") <= 1 + len(siblings), between
    assert rows[at_fee:].split(" open ")[0].count("fee invoice for " + parent_number) == 1
    assert "Never chased on its own" in rows[at_fee:at_fee + 400]

    # The customer's page: the fee invoice listed with its invoice, and in the total owed.
    page = http.get(f"{base}/customers/{contact_id}").text
    listed = section(page, "pay-dates")
    assert listed.index(parent_number) < listed.index(fee_number)
    assert f"fee invoice for {parent_number}" in listed
    credit = section(page, "credit")
    # The customer's open balance in the invoice's currency, the fee invoices included.
    assert f"{open_of_contact:,.2f}" in credit
    assert fee_owed > 0 and open_of_contact >= fee_owed
