"""Deposits on accepted quotes: planned in the planning pass, carried out by the executor.

The rules are rules/deposits.py (which milestones a quote owes, how a payment is matched to it).
Here each planning pass writes the deposit milestones of the organisation's accepted quotes to
`quote_deposits` for the owner to see, and the reminders due to the ledger under their
deterministic keys (`<org>:quote<quote>:deposit:<milestone>:<reminder>`), with no invoice. The
executor (collect/execute.py) claims such an action like any other and hands it to
`send_quote_deposit_reminder`, which re-reads the quote from the provider (no longer accepted,
or the deposit met since planning: skipped) and sends Dunwell's own email at most once through
the same path as every other email of ours.

Only accepted quotes are read: a handful per organisation, whatever the size of its books. They
are looked at in every planning pass (after each sync and at the day's send time), under the
organisation's policy (a customer's own policy overrides apply to their invoices only), and in
safe mode their reminders wait for the owner's approval like any other action.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from collect import ledger
from collect.book import Book, planning_policy
from collect.effects import Effect, send_own_email
from collect.outcomes import Skip
from connectors.base import NotFound
from rules.deposits import (
    QuoteState,
    due_quote_deposit_reminders,
    quote_deposit_message,
    quote_expected_payments,
)
from rules.engine import sendable
from rules.messages import language_of
from rules.statutory import round_money
from store.models import Action, Contact, Invoice, Organisation, Payment, Quote, QuoteDeposit
from sync.engine import upsert_quotes

log = logging.getLogger(__name__)


def quote_state(session: Session, quote: Quote) -> QuoteState:
    """The quote as rules/ reads it, with the payments on the invoices linked to it."""
    payments: list[tuple[date, Decimal]] = []
    linked = [str(i) for i in quote.invoice_provider_ids or []]
    if linked:
        payments = [(paid_on, amount) for paid_on, amount in session.execute(
            select(Payment.paid_on, Payment.amount).join(Invoice, Payment.invoice_id == Invoice.id)
            .where(Invoice.org_id == quote.org_id, Invoice.provider_id.in_(linked),
                   Payment.status == "active")) if paid_on is not None]
    return QuoteState(quote_id=quote.id, org_id=quote.org_id, number=quote.number,
                      status=quote.status, currency=quote.currency, total=quote.total,
                      accepted_on=quote.accepted_on, payments=tuple(payments))


def track_quote_deposits(session: Session, book: Book, quotes: list[Quote],
                         now: datetime) -> int:
    """Write the deposit milestones of the accepted quotes, with the day each was met."""
    rule = book.policy.deposits
    if rule is None:
        return 0
    touched = 0
    for quote in quotes:
        rows = {row.milestone: row for row in session.scalars(select(QuoteDeposit).where(
            QuoteDeposit.org_id == quote.org_id, QuoteDeposit.quote_id == quote.id))}
        for milestone in quote_expected_payments(quote_state(session, quote), rule):
            row = rows.get(milestone.index + 1)
            if row is None:
                row = QuoteDeposit(org_id=quote.org_id, quote_id=quote.id,
                                   milestone=milestone.index + 1)
                session.add(row)
            row.contact_id, row.milestones = quote.contact_id, milestone.count
            row.percent, row.amount = milestone.percent, milestone.amount
            row.cumulative, row.currency = milestone.cumulative, quote.currency
            row.due_date, row.met_on, row.updated_at = milestone.due_date, milestone.met_on, now
            touched += 1
    return touched


def _keys(session: Session, org_id: int, quote_ids: list[int]) -> dict[int, set[str]]:
    """The ledger's keys of these quotes' reminders (one skipped because the quote changed
    is left out: its step may be planned again)."""
    found: dict[int, set[str]] = defaultdict(set)
    for quote_id in quote_ids:
        prefix = f"{org_id}:quote{quote_id}:deposit:"
        for key, status, result in session.execute(
                select(Action.key, Action.status, Action.result).where(
                    Action.org_id == org_id, Action.key.startswith(prefix, autoescape=True))):
            if status == "skipped" and (result or {}).get("reason") == ledger.REPLAN_REASON:
                continue
            found[quote_id].add(key)
    return found


def plan_quote_deposits(session: Session, org: Organisation, book: Book,
                        now: datetime) -> list[Action]:
    """The planning pass's part for quotes: milestones tracked, reminders due planned."""
    rule = book.policy.deposits
    if rule is None or rule.applies_to == "invoices":
        return []
    quotes = list(session.scalars(select(Quote).where(
        Quote.org_id == org.id, Quote.status == "accepted").order_by(Quote.id)))
    if not quotes:
        return []
    track_quote_deposits(session, book, quotes, now)
    if not sendable(now, book.policy, book.calendar):
        return []
    keys = _keys(session, org.id, [q.id for q in quotes])
    planned = []
    for quote in quotes:
        contact = quote.contact
        if contact is None or contact.excluded or contact.disputed or contact.archived:
            continue
        for step in due_quote_deposit_reminders(quote_state(session, quote), keys[quote.id],
                                                book.policy, book.calendar, now):
            action = ledger.record_planned_for_quote(session, step, now)
            if action is not None:
                planned.append(action)
    session.flush()
    return planned


# --------------------------------------------------------------------------- execution


def quote_of(session: Session, action: Action) -> Quote | None:
    """The quote a deposit reminder is filed under (None: gone, or not the organisation's)."""
    quote_id = (action.details or {}).get("quote_id")
    quote = session.get(Quote, int(quote_id)) if quote_id else None
    return quote if quote is not None and quote.org_id == action.org_id else None


def send_quote_deposit_reminder(effect: Effect) -> str:
    """One quote deposit reminder, by Dunwell's own email at most once. Before the email the
    quote is re-read from the provider: no longer accepted, or the deposit met since planning,
    nothing is sent."""
    session, action, org = effect.session, effect.action, effect.org
    quote = quote_of(session, action)
    assert quote is not None  # the executor looked before it claimed the action
    if not (action.result or {}).get("emailed"):
        try:
            record = effect.connector.quote(quote.provider_id)
        except NotFound as exc:
            raise Skip("gone", f"Quote {quote.number} is no longer in the books; nothing sent"
                       ) from exc
        upsert_quotes(session, org.id, [record])
        session.refresh(quote)
        if quote.status != "accepted":
            raise Skip(quote.status, f"Quote {quote.number} is {quote.status} now; nothing sent")
        rule = planning_policy(session, org).deposits
        milestone = int((action.details or {}).get("milestone", 1)) - 1
        current = [m for m in quote_expected_payments(quote_state(session, quote), rule)
                   if m.index == milestone] if rule is not None else []
        if not current or current[0].met_on is not None:
            raise Skip("met", f"The deposit of quote {quote.number} is met or no longer asked"
                       " for; nothing sent")
    contact = session.get(Contact, quote.contact_id) if quote.contact_id else None
    if contact is None or not contact.email:
        raise Skip("no_email", f"Quote {quote.number}: the contact has no email address")
    if not effect.done_part("emailed"):
        assert action.amount is not None and action.currency is not None
        details = {k: str(v) for k, v in (action.details or {}).items()}
        subject, text = quote_deposit_message(
            contact.name, org.name, quote.number, action.currency, details,
            round_money(action.amount, action.currency), language_of(contact.language))
        if send_own_email(effect, to=contact.email, subject=subject, text=text, html=None,
                          sender_name=org.name, action_key=effect.key):
            effect.record_part("message", {"subject": subject, "text": text})
    return effect.finish_sent(str(action.reason), "emailed by Dunwell")
