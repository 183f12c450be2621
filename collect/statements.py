"""Monthly customer statements: planned into the action ledger like reminders, sent by the
executor like reminders.

`plan_statements` writes this month's statement for each customer with something open, once
the organisation's statement moment (day of month, local time) has come; the key is per
customer per month, so planning again is a no-op. Each statement rides on the customer's
oldest open invoice (the ledger's actions belong to an invoice): the executor re-reads that
invoice before sending, as for any action, and `send_statement` then builds the statement
from the books as they are at that moment.
"""

from __future__ import annotations

import logging
from datetime import datetime, time

from sqlalchemy import select
from sqlalchemy.orm import Session

from collect import ledger, portal
from collect.book import calendar_for
from collect.customers import credit_settings, statement_for
from collect.effects import Effect, payment_link, send_own_email
from collect.outcomes import Skip
from rules.messages import with_portal_link
from rules.statements import StatementSchedule, due_statement, render_statement
from store.models import Action, Contact, Invoice, Organisation

log = logging.getLogger(__name__)

CHANNELS = ("dunwell_email",)  # the providers' own email sends one invoice, not a statement


def plan_statements(session: Session, org: Organisation, now: datetime) -> list[Action]:
    """Plan the statements now due; the caller commits and enqueues the returned actions."""
    settings = credit_settings(session, org)
    if settings.statement_day is None:
        return []
    schedule = StatementSchedule(settings.statement_day,
                                 time.fromisoformat(settings.statement_time),
                                 settings.statement_channel)
    calendar = calendar_for(org)
    carriers: dict[int, tuple[Invoice, int]] = {}
    for invoice in session.scalars(
            select(Invoice).where(Invoice.org_id == org.id, Invoice.status == "open",
                                  Invoice.contact_id.is_not(None),
                                  Invoice.due_date.is_not(None))
            .order_by(Invoice.contact_id, Invoice.due_date, Invoice.id)):
        assert invoice.contact_id is not None
        if invoice.amount_due <= 0:  # compared here: SQLite keeps money as text
            continue
        carrier, count = carriers.get(invoice.contact_id, (invoice, 0))
        carriers[invoice.contact_id] = (carrier, count + 1)
    if not carriers:
        return []
    names = {contact_id: name for contact_id, name in session.execute(
        select(Contact.id, Contact.name).where(
            Contact.org_id == org.id, Contact.id.in_(sorted(carriers)), Contact.is_customer,
            Contact.archived.is_(False), Contact.excluded.is_(False)))}
    planned = []
    for contact_id, (carrier, count) in carriers.items():
        if contact_id not in names:
            continue
        step = due_statement(org.id, contact_id, names[contact_id], carrier.id, count,
                             schedule, calendar, now)
        if step is None:
            continue
        action = ledger.record_planned(session, step, carrier, now)
        if action is not None:
            planned.append(action)
    session.flush()
    log.info("org %s: %d statement(s) planned", org.id, len(planned))
    return planned


def send_statement(effect: Effect) -> str:
    """Email this month's statement to the customer, once (the Message-ID is the action's)."""
    action, org = effect.action, effect.org
    contact_id = (action.details or {}).get("contact_id")
    contact = effect.session.get(Contact, contact_id) if contact_id else None
    if contact is None or contact.org_id != org.id:
        raise Skip("gone", "The customer no longer exists")
    if (action.channel or "dunwell_email") not in CHANNELS:
        raise Skip("channel", f"Statements go by Dunwell email, not {action.channel}")
    if not contact.email:
        raise Skip("no_email", f"{contact.name} has no email address")
    if not effect.done_part("emailed"):
        statement = statement_for(effect.session, org, contact, effect.now,
                                  payment_link=payment_link(effect))
        if not statement.lines:
            raise Skip("nothing_open", f"{contact.name} has nothing open")
        message = with_portal_link(render_statement(statement),
                                   portal.portal_url(effect.session, contact))
        if send_own_email(effect, to=contact.email, subject=message.subject, text=message.text,
                          html=message.html, sender_name=org.name, action_key=effect.key):
            effect.record_part("message", {"subject": message.subject, "text": message.text,
                                           "items": len(statement.lines)})
    return effect.finish_sent(str(action.reason), "emailed by Dunwell", statement=True)
