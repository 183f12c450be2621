"""Deposits on accepted quotes: planned in the planning pass, carried out by the executor.

The rules are rules/deposits.py (which milestones a quote owes, how a payment is matched to it).
Here each planning pass writes the deposit milestones of the organisation's accepted quotes to
`quote_deposits` for the owner to see, and the reminders due to the ledger under their
deterministic keys (`<org>:quote<quote>:deposit:<milestone>:<reminder>`), with no invoice: the
executor hands such an action to `execute_quote_deposit`, which claims it, re-reads the quote
from the provider (no longer accepted, or the deposit met since planning: skipped), and sends
Dunwell's own email at most once through the same path as every other email of ours.

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
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from collect import ledger, shared_clock
from connectors.base import (
    ConfigurationError,
    Connector,
    NotFound,
    ProviderRejected,
    RateLimited,
    TransientError,
)
from rules.deposits import (
    QuoteReminder,
    QuoteState,
    due_quote_deposit_reminders,
    quote_deposit_message,
    quote_expected_payments,
)
from rules.engine import sendable
from rules.messages import language_of
from rules.policy import DepositRule
from rules.statutory import round_money
from store.models import Action, Contact, Invoice, Organisation, Payment, Quote, QuoteDeposit
from sync.engine import upsert_quotes

if TYPE_CHECKING:
    from collect.plan import Book

log = logging.getLogger(__name__)

KIND = "quote_deposit_reminder"


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


def _record(session: Session, step: QuoteReminder, now: datetime) -> Action | None:
    """Write the planned reminder; None if its key is in the ledger already."""
    existing = session.scalar(select(Action).where(Action.key == step.key))
    if existing is not None:
        if existing.status != "skipped" or \
                (existing.result or {}).get("reason") != ledger.REPLAN_REASON:
            return None
        existing.status, existing.result = ledger.ActionStatus.PLANNED, None
        action = existing
    else:
        action = Action(org_id=step.org_id, invoice_id=None, key=step.key, kind=step.kind,
                        status=ledger.ActionStatus.PLANNED, created_at=now, attempts=0)
    action.step_index, action.step_count = step.step_index, step.step_count
    action.template, action.channel = "deposit", step.channel
    action.scheduled_for, action.reason = step.scheduled_for, step.reason
    action.amount, action.currency = step.amount, step.currency
    action.details, action.updated_at = dict(step.details), now
    if existing is not None:
        return action
    try:
        with session.begin_nested():
            session.add(action)
    except IntegrityError:
        log.info("action %s already planned by another worker", step.key)
        return None
    return action


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
            action = _record(session, step, now)
            if action is not None:
                planned.append(action)
    session.flush()
    return planned


# --------------------------------------------------------------------------- execution


def _finish(session: Session, action: Action, status: str, message: str, now: datetime,
            reason: str) -> str:
    ledger.finish(session, action, status, message, now, result={"reason": reason})
    session.commit()
    return status


def execute_quote_deposit(session: Session, action: Action, connector: Connector,
                          now: datetime, owner: str) -> str:
    """Carry out one quote deposit reminder, at most once; its final or current status."""
    from collect.execute import (
        UNCONFIRMED,
        UNCONFIRMED_MESSAGE,
        UNCONFIRMED_REASON,
        ClaimLost,
        Deferred,
        Effect,
        _defer,
        failed_in_passing,
        send_own_email,
    )

    quote_id = (action.details or {}).get("quote_id")
    quote = session.get(Quote, int(quote_id)) if quote_id else None
    org = session.get(Organisation, action.org_id)
    if quote is None or org is None or quote.org_id != action.org_id:
        return _finish(session, action, "skipped", "Quote no longer exists", now, "gone")
    if not ledger.claim(session, action, owner, shared_clock.now()):
        log.info("action %s is held by %s until %s; not run twice", action.key,
                 action.claimed_by, action.lease_until)
        return "held"

    def carry_out() -> str:
        """The claimed reminder sent and its outcome recorded, each commit fenced."""
        try:
            if not (action.result or {}).get("emailed"):
                # Re-read before writing: accepted still, and the deposit not met since planning?
                upsert_quotes(session, org.id, [connector.quote(quote.provider_id)])
                session.refresh(quote)
                if quote.status != "accepted":
                    return _finish(session, action, "skipped",
                                   f"Quote {quote.number} is {quote.status} now; nothing sent", now,
                                   quote.status)
                rule = _rule(session, org)
                milestone = int((action.details or {}).get("milestone", 1)) - 1
                current = [m for m in quote_expected_payments(quote_state(session, quote), rule)
                           if m.index == milestone] if rule is not None else []
                if not current or current[0].met_on is not None:
                    return _finish(session, action, "skipped",
                                   f"The deposit of quote {quote.number} is met or no longer"
                                   " asked for; nothing sent", now, "met")
            contact = session.get(Contact, quote.contact_id) if quote.contact_id else None
            if contact is None or not contact.email:
                return _finish(session, action, "skipped",
                               f"Quote {quote.number}: the contact has no email address", now,
                               "no_email")
            # A quote's action has no invoice; the email path reads none.
            effect = Effect(session, action, None, org, connector, now, owner)  # type: ignore[arg-type]
            if not effect.done_part("emailed"):
                assert action.amount is not None and action.currency is not None
                details = {k: str(v) for k, v in (action.details or {}).items()}
                subject, text = quote_deposit_message(
                    contact.name, org.name, quote.number, action.currency, details,
                    round_money(action.amount, action.currency), language_of(contact.language))
                if send_own_email(effect, to=contact.email, subject=subject, text=text, html=None,
                                  sender_name=org.name, action_key=effect.key):
                    effect.record_part("message", {"subject": subject, "text": text})
            if (action.result or {}).get("emailed") == UNCONFIRMED:
                status = effect.finish(f"{action.reason}: {UNCONFIRMED_MESSAGE}",
                                       unconfirmed=UNCONFIRMED_REASON)
            else:
                status = effect.finish(f"{action.reason}: emailed by Dunwell")
        except RateLimited as exc:
            _defer(session, action, now)
            raise Deferred(exc.retry_after) from exc
        except ProviderRejected as exc:
            ledger.finish(session, action, "skipped", f"Provider refused: {exc}", now,
                          result={"reason": "rejected"}, error=str(exc))
            status = "skipped"
        except NotFound:
            return _finish(session, action, "skipped",
                           f"Quote {quote.number} is no longer in the books; nothing sent", now,
                           "gone")
        except ConfigurationError as exc:
            ledger.finish(session, action, "dead", f"Needs the owner: {exc}", now, error=str(exc))
            status = "dead"
        except TransientError as exc:
            return failed_in_passing(session, action, exc, now)
        session.commit()
        return status

    try:
        with ledger.fenced(session, [action], owner):
            status = carry_out()
    except ClaimLost:
        session.rollback()
        log.warning("org %s quote %s action %s: the claim passed to another worker; stopped"
                    " without writing", action.org_id, quote.id, action.key)
        return "held"
    log.info("org %s quote %s action %s: %s", org.id, quote.id, action.key, status)
    return status


def _rule(session: Session, org: Organisation) -> DepositRule | None:
    from collect.plan import planning_policy

    return planning_policy(session, org).deposits
