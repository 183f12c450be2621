"""Credit control in the planning pass: deposits tracked, retainer top-ups asked for, customers
over their limit signalled, shorter terms recommended or written back; and the new action kinds
carried out.

`plan_for_customers` runs at the end of collect.plan.plan_org (the planner's own pass, after every
sync and at the day's send time). Deposit reminders themselves are planned per invoice by
rules/engine.py (rules/deposits.py); here their milestones are written to `expected_payments`
for the owner to see. What is per customer (a retainer running low, a balance over the limit)
is planned here through the same ledger, filed under the customer (no invoice of theirs is
borrowed) with a key that names them. A shorter due date for
a blocked customer's new invoices is, as the policy's `terms_on_hold.apply` says, recorded once
per invoice in the activity log as a recommendation for the owner, or planned as a
`terms_change` action that writes it into the books through the connector.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from collect import customers as services
from collect import ledger
from collect.book import Book
from collect.effects import Effect, payment_link, send_own_email
from collect.outcomes import Skip
from collect.quote_deposits import plan_quote_deposits
from rules import Policy
from rules.credit import over_limit_since, terms_change_key, terms_verdict
from rules.deposits import deposit_message, expected_payments, qualifies
from rules.messages import language_of
from rules.retainers import due_top_up, top_up_message
from rules.statutory import round_money
from store.models import Action, AuditEvent, Contact, Invoice, Organisation, Retainer
from store.models import ExpectedPayment as ExpectedPaymentRow

log = logging.getLogger(__name__)


def track_expected_payments(session: Session, book: Book, invoices: Sequence[Invoice],
                            now: datetime) -> int:
    """Write the milestones of the invoices under a deposit rule, with the day each was met."""
    touched = 0
    for invoice in invoices:
        policy = book.policy_of(invoice)
        if invoice.due_date is None or policy.deposits is None:
            continue
        state = book.state(invoice)
        if not qualifies(state, policy.deposits):
            continue
        rows = {row.milestone: row for row in session.scalars(select(ExpectedPaymentRow).where(
            ExpectedPaymentRow.org_id == invoice.org_id,
            ExpectedPaymentRow.invoice_id == invoice.id))}
        for milestone in expected_payments(state, policy.deposits):
            row = rows.get(milestone.index + 1)
            if row is None:
                row = ExpectedPaymentRow(org_id=invoice.org_id, invoice_id=invoice.id,
                                         milestone=milestone.index + 1)
                session.add(row)
            row.contact_id, row.milestones = invoice.contact_id, milestone.count
            row.percent, row.amount = milestone.percent, milestone.amount
            row.cumulative, row.currency = milestone.cumulative, invoice.currency
            row.due_date, row.met_on, row.updated_at = milestone.due_date, milestone.met_on, now
            touched += 1
    return touched


def plan_top_ups(session: Session, org: Organisation, book: Book,
                 now: datetime) -> list[Action]:
    planned = []
    for retainer in session.scalars(select(Retainer).where(Retainer.org_id == org.id)
                                    .order_by(Retainer.id)):
        contact = session.get(Contact, retainer.contact_id)
        if contact is None or contact.excluded or contact.archived:
            continue
        entries = services.retainer_entries(session, retainer)
        received = sum(1 for e in entries if e.kind == "top_up")
        step = due_top_up(org.id, contact.id, contact.name, services.retainer_terms(retainer),
                          received, entries, book.policy, book.calendar, now)
        if step is None:
            continue
        action = ledger.record_planned(session, step, None, now)
        if action is not None:
            planned.append(action)
    return planned


def _blocked_customers(session: Session, org: Organisation,
                       now: datetime) -> list[services.CustomerCredit]:
    """Customers over their limit or on hold (read only when a limit, hold or rule exists)."""
    settings = services.credit_settings(session, org)
    limited = session.scalar(select(func.count()).select_from(Contact).where(
        Contact.org_id == org.id,
        (Contact.credit_limit.is_not(None)) | Contact.on_hold.is_(True)))
    if not limited and settings.default_credit_limit is None:
        return []
    return [c for c in services.customer_credit(session, org, now) if c.position.blocked]


def plan_limit_signals(session: Session, org: Organisation,
                       blocked: Sequence[services.CustomerCredit], now: datetime) -> list[Action]:
    """The stop-service signal for each customer over the limit, once per stretch over it
    (from the issue day of the invoice that took the balance over), when the organisation
    asked for it (holds signal when they are set)."""
    settings = services.credit_settings(session, org)
    if not settings.stop_service_on_hold:
        return []
    over = [c for c in blocked if c.position.over_limit and not c.contact.stop_service
            and not c.contact.on_hold]  # else already signalled, or the hold's signal covers it
    if not over:
        return []
    histories = [h for h in services.invoice_histories(session, org) if h.is_open]
    planned = []
    for credit in over:
        contact, p = credit.contact, credit.position
        since = over_limit_since([h for h in histories if h.contact_id == contact.id], p.limit,
                                 p.currency)
        if since is None:
            continue
        action = services.signal_stop_service(
            session, org, contact, "limit", since,
            f"{contact.name} is over the credit limit ({p.currency} {p.exposure} open against"
            f" {p.currency} {p.limit})", settings.stop_service_webhook_url, now)
        if action is not None:
            planned.append(action)
    return planned


def plan_terms_changes(session: Session, org: Organisation, policy: Policy,
                       blocked: Sequence[services.CustomerCredit],
                       now: datetime) -> list[Action]:
    """With `write_back`, each shorter due date becomes a ledger action keyed by the invoice
    and the new day: planning again writes nothing new, and the executor re-reads the invoice
    (paid, voided or due sooner by then: nothing is written)."""
    rule = policy.terms_on_hold
    if rule is None or rule.apply != "write_back" or not blocked:
        return []
    histories = [h for h in services.invoice_histories(session, org) if h.is_open]
    planned = []
    for credit in blocked:
        contact = credit.contact
        own = [h for h in histories if h.contact_id == contact.id]
        for change in services.terms_changes(org, contact, own, credit.position, policy):
            invoice = session.get(Invoice, change.invoice_id)
            if invoice is None or invoice.org_id != org.id:
                continue
            step = services.PlannedAction(
                key=terms_change_key(org.id, invoice.id, change.recommended_due),
                kind="terms_change", invoice_id=invoice.id, org_id=org.id, scheduled_for=now,
                reason=(f"{contact.name} is {change.because}: {invoice.number} shortened to"
                        f" {rule.due_in_days} days (due {change.recommended_due} instead of"
                        f" {change.due_date})"),
                details={"due_date": change.recommended_due.isoformat(),
                         "was": change.due_date.isoformat(), "because": change.because,
                         "due_in_days": rule.due_in_days})
            action = ledger.record_planned(session, step, invoice, now)
            if action is not None:
                log.info("org %s invoice %s: shorter terms planned (%s)", org.id, invoice.id,
                         action.key)
                planned.append(action)
    return planned


def record_terms_recommendations(session: Session, org: Organisation, policy: Policy,
                                 blocked: Sequence[services.CustomerCredit],
                                 now: datetime) -> int:
    """Tell the owner once per invoice the shorter due date the policy asks for (`recommend`;
    with `write_back` the ledger writes it instead)."""
    if policy.terms_on_hold is None or policy.terms_on_hold.apply != "recommend" \
            or not blocked:
        return 0
    histories = [h for h in services.invoice_histories(session, org) if h.is_open]
    told = 0
    for credit in blocked:
        own = [h for h in histories if h.contact_id == credit.contact.id]
        for change in services.terms_changes(org, credit.contact, own, credit.position, policy):
            seen = session.scalar(select(AuditEvent.id).where(
                AuditEvent.org_id == org.id, AuditEvent.invoice_id == change.invoice_id,
                AuditEvent.kind == "terms_recommended").limit(1))
            if seen is not None:
                continue
            ledger.audit(
                session, org.id, "terms_recommended",
                f"{credit.contact.name} is {change.because}: give this invoice"
                f" {policy.terms_on_hold.due_in_days} days (due {change.recommended_due}"
                f" instead of {change.due_date}); change it in the books",
                at=now, invoice_id=change.invoice_id,
                data={"recommended_due": change.recommended_due.isoformat(),
                      "due_date": change.due_date.isoformat(), "contact": credit.contact.name,
                      "days": policy.terms_on_hold.due_in_days, "because": change.because})
            log.info("org %s invoice %s: shorter terms recommended", org.id, change.invoice_id)
            told += 1
    return told


def plan_for_customers(session: Session, org: Organisation, book: Book,
                       invoices: Sequence[Invoice], now: datetime) -> list[Action]:
    """The credit-control part of a planning pass; the caller commits and enqueues."""
    track_expected_payments(session, book, invoices, now)
    planned = plan_quote_deposits(session, org, book, now)  # deposits on accepted quotes
    planned += plan_top_ups(session, org, book, now)
    blocked = _blocked_customers(session, org, now)
    planned += plan_limit_signals(session, org, blocked, now)
    record_terms_recommendations(session, org, book.policy, blocked, now)
    planned += plan_terms_changes(session, org, book.policy, blocked, now)
    return planned


# --------------------------------------------------------------------------- execution


def send_deposit_reminder(effect: Effect) -> str:
    """A milestone reminder: our email (or the provider's invoice email), then a note on the
    invoice. The executor has re-read the invoice: a payment since planning replans it."""
    action, invoice = effect.action, effect.invoice
    contact = invoice.contact
    channel = action.channel or "dunwell_email"
    details = {k: str(v) for k, v in (action.details or {}).items()}
    if channel in ("provider_email", "dunwell_email") and not (contact and contact.email):
        raise Skip("no_email", f"{invoice.number}: the contact has no email address")
    assert action.amount is not None
    still = round_money(action.amount, invoice.currency)  # the column keeps 4 places
    if channel == "provider_email" and not effect.done_part("emailed"):
        effect.begin("emailed")
        effect.connector.email_invoice(invoice.provider_id, idempotency_key=f"{effect.key}:email")
        effect.record_part("emailed")
    if channel == "dunwell_email" and not effect.done_part("emailed"):
        assert contact is not None and contact.email
        subject, text = deposit_message(contact.name, effect.org.name, invoice.number,
                                        invoice.currency, details, still,
                                        payment_link(effect), language_of(contact.language))
        if send_own_email(effect, to=contact.email, subject=subject, text=text, html=None,
                          sender_name=effect.org.name, action_key=effect.key):
            effect.record_part("message", {"subject": subject, "text": text})
    if not effect.done_part("noted"):
        effect.begin("noted")
        effect.connector.add_invoice_note(
            invoice.provider_id,
            f"Dunwell: milestone {details.get('milestone')} of {details.get('milestones')}"
            f" reminder sent; {invoice.currency} {still} still due"
            f" {details.get('milestone_due')}.", idempotency_key=f"{effect.key}:note")
    return effect.finish_sent(str(action.reason), "sent", noted=True)


def send_top_up_request(effect: Effect) -> str:
    """Ask the customer by Dunwell email to top up the retainer, once per key."""
    action, org, contact = effect.action, effect.org, effect.contact
    details = {k: str(v) for k, v in (action.details or {}).items()}
    if not contact.email:
        raise Skip("no_email", f"{contact.name} has no email address")
    assert action.amount is not None and action.currency is not None
    if not effect.done_part("emailed"):
        subject, text = top_up_message(contact.name, org.name, action.currency, details,
                                       round_money(action.amount, action.currency),
                                       language_of(contact.language))
        if send_own_email(effect, to=contact.email, subject=subject, text=text, html=None,
                          sender_name=org.name, action_key=effect.key):
            effect.record_part("message", {"subject": subject, "text": text})
    return effect.finish_sent(str(action.reason), "emailed by Dunwell", top_up=True)


def shorten_terms(effect: Effect) -> str:
    """Write the shorter due date into the books, once. The executor has re-read the invoice
    (the stored row is as the provider has it now): paid, voided or already due on or before
    the new day, nothing is written (terms are never lengthened), nor when the hold that asked
    for it was released meanwhile. After a write whose answer was lost, the invoice due on the
    new day is that write, done."""
    action, invoice = effect.action, effect.invoice
    details = action.details or {}
    new_due = date.fromisoformat(str(details["due_date"]))
    was = str(details.get("was") or invoice.due_date)
    because = str(details.get("because") or "on credit hold")
    unknown = effect.unknown_since("due_date") is not None
    verdict = terms_verdict(invoice.status, invoice.due_date, new_due, write_unknown=unknown)
    contact = invoice.contact
    if verdict == "write" and because == "on credit hold" and not (contact and contact.on_hold):
        raise Skip("released", f"{invoice.number}: the customer is no longer on"
                     " credit hold; its terms are left as they are")
    if verdict == "not_open":
        raise Skip(invoice.status, f"{invoice.number} is {invoice.status} now;"
                     " its terms are left as they are")
    if verdict == "already_shorter":
        raise Skip("already_shorter", f"{invoice.number} is due {invoice.due_date}"
                     f" already, not later than {new_due}; its terms are left as they are")
    if verdict == "done":
        log.info("org %s invoice %s action %s: due %s already; the lost write is recorded, not"
                 " made again", action.org_id, invoice.id, action.key, new_due)
        effect.record_part("due_date", "found")
    else:
        effect.begin("due_date")
        effect.connector.set_invoice_due_date(invoice.provider_id, new_due,
                                              idempotency_key=f"{effect.key}:due")
        effect.record_part("due_date", new_due.isoformat())
    invoice.due_date = new_due  # as the books have it now; the next sync agrees
    message = f"{invoice.number}: terms shortened from {was} to {new_due} ({because})"
    log.info("org %s invoice %s: terms shortened from %s to %s", action.org_id, invoice.id, was,
             new_due)
    return effect.finish(message, terms_changed=True, was=was, due_date=new_due.isoformat(),
                         because=because, looked_up=verdict == "done")
