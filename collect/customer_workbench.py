"""What a collector does from a customer's page, over the customer's open invoices (all of
them, or those ticked): add a note, record a promise to pay by a day, send the next reminder
now. Each is the invoice page's own action (collect/invoice_actions.py) done for every chosen
invoice, so the ledger, the activity log (with the person who did it) and the planner see
exactly what an invoice's page would have written. Refused input refuses the whole request with
a code the page words (the caller rolls back: nothing is saved); the caller commits, refreshes
the invoices' next actions and gives the returned actions their jobs.

A note goes to the history of each chosen invoice in the books, not to the contact's. Xero keeps
a history for contacts as well as invoices, but QuickBooks has none for either (a customer's
Notes field is one text, rewritten whole, where a collector's line would overwrite the
bookkeeper's); on the invoices the note is one rule for both providers, written once per invoice
by the note action that already exists, and it is where the books' users and Dunwell's own
timeline look when they open an invoice."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy.orm import Session

from collect import invoice_actions
from collect.customers import open_invoices
from store.models import Action, Contact, Invoice, Organisation, User

ActionRefused = invoice_actions.ActionRefused


def chosen(session: Session, org: Organisation, contact: Contact,
           ticked: list[str]) -> list[Invoice]:
    """The ticked invoices, each one of the customer's open invoices (oldest due first);
    nothing ticked, or an invoice that is not one of them, is refused."""
    wanted: set[int] = set()
    for text in ticked:
        if not text.strip().isdigit():
            raise ActionRefused("none_chosen")
        wanted.add(int(text))
    if not wanted:
        raise ActionRefused("none_chosen")
    found = [i for i in open_invoices(session, org, contact) if i.id in wanted]
    if len(found) != len(wanted):
        raise ActionRefused("not_open")  # paid meanwhile, or not this customer's
    return found


def add_note(session: Session, invoices: list[Invoice], user: User, text: str | None,
             now: datetime, nonce: str | None) -> list[Action]:
    """The note on each invoice (its activity log and an action writing it to the books'
    history); the form's nonce is in each invoice's key, so a form sent twice is one note per
    invoice. Returns the actions to run once committed."""
    actions = []
    for invoice in invoices:
        action = invoice_actions.add_note(session, invoice, user, text, now, nonce)
        if action is not None:
            actions.append(action)
    return actions


def record_promise(session: Session, invoices: list[Invoice], user: User,
                   pay_by_text: str | None, amount_text: str | None, today: date,
                   now: datetime) -> list[Invoice]:
    """One promise to pay by a day over the invoices: all that is due on each, or `amount`
    spread over them oldest due first (an invoice it does not reach is not promised, and goes
    on being chased). An amount is of one currency: over invoices in several it is refused, as
    is more than they owe together. Returns the invoices promised."""
    shares: list[tuple[Invoice, Decimal | None]] = [(i, None) for i in invoices]
    if (amount_text or "").strip():
        if len({i.currency for i in invoices}) > 1:
            raise ActionRefused("promise_currencies")
        try:
            amount = Decimal((amount_text or "").strip().replace(",", "."))
        except InvalidOperation as exc:
            raise ActionRefused("bad_amount") from exc
        owed = sum((i.amount_due for i in invoices), Decimal(0))
        if not amount.is_finite() or amount <= 0 or amount > owed \
                or amount != amount.quantize(Decimal("0.01")):
            raise ActionRefused("bad_amount")
        shares = []
        for invoice in invoices:
            part = min(amount, invoice.amount_due)
            if part > 0:
                shares.append((invoice, part))
            amount -= part
    for invoice, share in shares:
        invoice_actions.record_promise(session, invoice, user, pay_by_text,
                                       None if share is None else str(share), today, now)
    return [invoice for invoice, _ in shares]


def send_next_reminders(session: Session, org: Organisation, invoices: list[Invoice],
                        user: User, today: date, now: datetime
                        ) -> tuple[list[Action], list[Invoice]]:
    """The ladder's next step now for each invoice that is due (its due date has come), as
    from its page; an invoice the daily run would leave alone (paused, disputed, promised, on a
    plan, a reminder on its way, nothing left on the ladder) or not due yet is left alone. None
    at all is refused. Returns the actions planned and the invoices left alone."""
    planned, left = [], []
    for invoice in invoices:
        if invoice.due_date is None or invoice.due_date > today:
            left.append(invoice)
            continue
        try:  # a refusal comes before anything is written for the invoice
            planned.append(invoice_actions.send_next_reminder(session, org, invoice, user, now))
        except ActionRefused:
            left.append(invoice)
    if not planned:
        raise ActionRefused("none_due")
    return planned, left
