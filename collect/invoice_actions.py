"""What a collector does from an invoice's page: record the customer's promise to pay, mark
the invoice disputed, add a note. Each is written with the person who did it to the activity
log; a promise and a dispute are the same rows the customer's portal writes (collect/portal.py),
so the planner treats them alike (reminders wait for a promise's day; a dispute stops chasing
and fees until it is resolved). Bad input is refused with a code the page words, and nothing
is written; the caller commits and refreshes the invoice's next action."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from collect import ledger, portal
from store.models import Invoice, User

PROMISE_MAX_DAYS = portal.PROMISE_MAX_DAYS  # further ahead is a payment plan, as in the portal
MAX_NOTE_CHARS = 2000


# Refused input is a portal.PortalRefused: the same codes, worded for the collector by the page.
ActionRefused = portal.PortalRefused


def _open(invoice: Invoice) -> None:
    if invoice.status != "open" or invoice.amount_due <= 0:
        raise ActionRefused("not_open")
    if invoice.contact is None:
        raise ActionRefused("no_customer")


def record_promise(session: Session, invoice: Invoice, user: User, pay_by_text: str | None,
                   amount_text: str | None, today: date, now: datetime) -> None:
    """The customer's promise, as the collector heard it (by phone, by email)."""
    _open(invoice)
    pay_by = portal.parse_day(pay_by_text)
    amount = portal.parse_amount(amount_text, invoice)
    if pay_by < today:
        raise ActionRefused("date_past")
    if pay_by > today + timedelta(days=PROMISE_MAX_DAYS):
        raise ActionRefused("date_far")
    assert invoice.contact is not None
    row = portal.promise(session, invoice.contact, invoice, pay_by, amount, today, now)
    _by(session, invoice, user, "promise_recorded",
        f"Promise to pay {invoice.currency} {amount} of {invoice.number} by {pay_by} recorded"
        f" by {user.email}", now, {"promise_id": row.id, "pay_by": pay_by.isoformat(),
                                   "amount": str(amount)})


def mark_disputed(session: Session, invoice: Invoice, user: User, reason: str | None,
                  now: datetime) -> None:
    """The invoice in dispute: reminders and fees stop until the dispute is resolved."""
    _open(invoice)
    assert invoice.contact is not None
    row = portal.dispute(session, invoice.contact, invoice, reason or "", None, now)
    _by(session, invoice, user, "dispute_marked",
        f"{invoice.number} marked disputed by {user.email}: {row.reason}", now,
        {"dispute_id": row.id})


def add_note(session: Session, invoice: Invoice, user: User, text: str | None,
             now: datetime) -> None:
    note = (text or "").strip()
    if not note:
        raise ActionRefused("note_missing")
    if len(note) > MAX_NOTE_CHARS:
        raise ActionRefused("note_long")
    _by(session, invoice, user, "note", f"Note by {user.email} on {invoice.number}: {note}",
        now, {"note": note})


def _by(session: Session, invoice: Invoice, user: User, kind: str, message: str,
        now: datetime, data: dict[str, object]) -> None:
    ledger.audit(session, invoice.org_id, kind, message, at=now, invoice_id=invoice.id,
                 data={**data, "user_id": user.id, "by": user.email})

