"""What a collector does from an invoice's page: record the customer's promise to pay, mark
the invoice disputed, add a note. Each is written with the person who did it to the activity
log; a promise and a dispute are the same rows the customer's portal writes (collect/portal.py),
so the planner treats them alike (reminders wait for a promise's day; a dispute stops chasing
and fees until it is resolved). Bad input is refused with a code the page words, and nothing
is written; the caller commits and refreshes the invoice's next action.

A note, the next reminder sent now and a payment plan go through the ledger as the daily run's
actions do: a note is an action of its own (written to the books' history once, by its key), the
reminder is the ladder's next step planned for now (rules.engine.reminder_now), and a plan is
the command line's (collect/payment_plans.py). A pause holds planning (rules/, collect/book.py)
until its day or until someone resumes it."""

from __future__ import annotations

import re
import secrets
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from collect import ledger, portal
from collect.book import Book
from collect.payment_plans import PlanRefused, agree_payment_plan
from rules import PlannedAction, action_key
from rules.engine import reminder_now
from store.models import Action, Invoice, InvoicePause, Organisation, PaymentPlan, User

PROMISE_MAX_DAYS = portal.PROMISE_MAX_DAYS  # further ahead is a payment plan, as in the portal
MAX_NOTE_CHARS = 2000
MAX_REASON_CHARS = 500
PAUSE_MAX_DAYS = 365  # longer is not a pause: exclude the customer, or write the invoice off
NONCE = re.compile(r"[0-9a-f]{16,32}")


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
                                   "amount": str(amount), "currency": invoice.currency,
                                   "number": invoice.number})


def mark_disputed(session: Session, invoice: Invoice, user: User, reason: str | None,
                  now: datetime) -> None:
    """The invoice in dispute: reminders and fees stop until the dispute is resolved."""
    _open(invoice)
    assert invoice.contact is not None
    row = portal.dispute(session, invoice.contact, invoice, reason or "", None, now)
    _by(session, invoice, user, "dispute_marked",
        f"{invoice.number} marked disputed by {user.email}: {row.reason}", now,
        {"dispute_id": row.id, "number": invoice.number, "reason": row.reason})


def add_note(session: Session, invoice: Invoice, user: User, text: str | None,
             now: datetime, nonce: str | None = None) -> Action | None:
    """The note in the activity log, and an action that writes it to the invoice's history in
    the books. `nonce` (the form's) is part of the key: the same form sent twice is one note.
    Returns the action to run once committed (None: that form was taken already)."""
    note = (text or "").strip()
    if not note:
        raise ActionRefused("note_missing")
    if len(note) > MAX_NOTE_CHARS:
        raise ActionRefused("note_long")
    once = nonce if nonce and NONCE.fullmatch(nonce) else secrets.token_hex(16)
    action = ledger.record_planned(session, PlannedAction(
        key=action_key(invoice.org_id, invoice.id, "note", once), kind="note",
        invoice_id=invoice.id, org_id=invoice.org_id, scheduled_for=now,
        reason=f"Note by {user.email} to the history of {invoice.number} in the books",
        details={"note": note, "by": user.email, "user_id": user.id}), invoice, now)
    if action is None:
        return None
    _by(session, invoice, user, "note", f"Note by {user.email} on {invoice.number}: {note}",
        now, {"note": note, "number": invoice.number, "action_id": action.id})
    return action


def pause(session: Session, invoice: Invoice, user: User, until_text: str | None,
          reason: str | None, today: date, now: datetime) -> InvoicePause:
    """Chasing paused until a day (it resumes on that day), or, with no day, until resumed.
    A pause replaces the invoice's earlier one."""
    if invoice.status != "open" or invoice.amount_due <= 0:
        raise ActionRefused("not_open")
    why = (reason or "").strip()
    if not why:
        raise ActionRefused("pause_reason_missing")
    if len(why) > MAX_REASON_CHARS:
        raise ActionRefused("reason_long")
    until = None
    if (until_text or "").strip():
        try:
            until = portal.parse_day(until_text)
        except ActionRefused as exc:
            raise ActionRefused("pause_bad_date") from exc
        if until <= today:
            raise ActionRefused("pause_past")
        if until > today + timedelta(days=PAUSE_MAX_DAYS):
            raise ActionRefused("pause_far")
    for earlier in _pauses_in_force(session, invoice, today):
        earlier.ended_at, earlier.ended_by = now, user.id
    row = InvoicePause(org_id=invoice.org_id, invoice_id=invoice.id, until=until, reason=why,
                       created_by=user.id, created_at=now)
    session.add(row)
    session.flush()
    _by(session, invoice, user, "paused",
        f"Chasing of {invoice.number} paused by {user.email} "
        + (f"until {until}" if until else "until resumed") + f": {why}", now,
        {"pause_id": row.id, "until": until.isoformat() if until else None, "reason": why,
         "number": invoice.number})
    return row


def pause_in_force(session: Session, invoice: Invoice, today: date) -> InvoicePause | None:
    found = _pauses_in_force(session, invoice, today)
    return found[-1] if found else None


def _pauses_in_force(session: Session, invoice: Invoice, today: date) -> list[InvoicePause]:
    return list(session.scalars(select(InvoicePause).where(
        InvoicePause.invoice_id == invoice.id, InvoicePause.ended_at.is_(None),
        or_(InvoicePause.until.is_(None), InvoicePause.until > today))
        .order_by(InvoicePause.id)))


def resume(session: Session, invoice: Invoice, user: User, today: date, now: datetime) -> None:
    """Chasing resumes now: the ladder goes on from the steps already taken."""
    found = _pauses_in_force(session, invoice, today)
    if not found:
        raise ActionRefused("not_paused")
    for row in found:
        row.ended_at, row.ended_by = now, user.id
    _by(session, invoice, user, "resumed",
        f"Chasing of {invoice.number} resumed by {user.email}", now,
        {"pause_id": found[-1].id, "number": invoice.number})


def send_next_reminder(session: Session, org: Organisation, invoice: Invoice, user: User,
                       now: datetime) -> Action:
    """The ladder's next step, planned for now through the ledger (the caller commits and
    gives it a job, or holds it for approval in safe mode); refused with a code wherever the
    daily run would not chase (an opt-out, a dispute, a pause, a promise, a plan)."""
    if invoice.due_date is None:
        raise ActionRefused("not_open")
    book = Book(session, org, [invoice])
    found = reminder_now(book.state(invoice), book.past(invoice), book.policy_of(invoice),
                         book.calendar, now, user.email)
    if isinstance(found, str):
        raise ActionRefused(found)
    action = ledger.record_planned(session, found, invoice, now)
    if action is None:
        raise ActionRefused("reminder_waiting")
    _by(session, invoice, user, "reminder_requested",
        f"{found.reason} (asked by {user.email})", now,
        {"action_id": action.id, "number": invoice.number, "step": (found.step_index or 0) + 1,
         "channel": found.channel})
    return action


def agree_plan(session: Session, org: Organisation, invoice: Invoice, user: User,
               days: list[str], amounts: list[str], now: datetime) -> PaymentPlan:
    """A payment plan from the invoice's page: rows of (day, amount), empty rows left out,
    agreed by the command line's rules (collect/payment_plans.py)."""
    rows = []
    for day_text, amount_text in zip(days, amounts, strict=False):
        if not day_text.strip() and not amount_text.strip():
            continue
        try:
            amount = Decimal(amount_text.strip().replace(",", "."))
            rows.append((date.fromisoformat(day_text.strip()), amount))
        except (ValueError, InvalidOperation) as exc:
            raise PlanRefused(f"not a day and an amount: {day_text!r} {amount_text!r}",
                              "plan_row") from exc
        if not amount.is_finite():
            raise PlanRefused(f"not an amount: {amount_text!r}", "plan_row")
    if not rows:
        raise PlanRefused("no instalment given", "plan_empty")
    return agree_payment_plan(session, org, invoice, rows, now, by=user)


def _by(session: Session, invoice: Invoice, user: User, kind: str, message: str,
        now: datetime, data: dict[str, object]) -> None:
    ledger.audit(session, invoice.org_id, kind, message, at=now, invoice_id=invoice.id,
                 data={**data, "user_id": user.id, "by": user.email})

