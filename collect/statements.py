"""Monthly customer statements: planned into the action ledger like reminders, sent by the
executor like reminders.

`plan_statements` writes this month's statement for each customer with something open, once
the organisation's statement moment (day of month, local time) has come; the key is per
customer per month, so planning again is a no-op. Each statement is filed under its customer
(none of their invoices is borrowed): `send_statement` builds it from the books as they are
when it goes, and sends nothing if the customer has nothing open by then.
"""

from __future__ import annotations

import logging
from datetime import datetime, time

from sqlalchemy import select
from sqlalchemy.orm import Session

from collect import ledger, logos, portal
from collect.book import calendar_for
from collect.customers import credit_settings, statement_for
from collect.effects import Effect, send_own_email
from collect.outcomes import Skip
from rules.messages import with_logo, with_portal_link
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
    open_items: dict[int, int] = {}
    for contact_id, amount_due in session.execute(
            select(Invoice.contact_id, Invoice.amount_due).where(
                Invoice.org_id == org.id, Invoice.status == "open",
                Invoice.contact_id.is_not(None), Invoice.due_date.is_not(None))
            .order_by(Invoice.contact_id)):
        if contact_id is not None and amount_due > 0:  # money compared here: SQLite keeps text
            open_items[contact_id] = open_items.get(contact_id, 0) + 1
    if not open_items:
        return []
    names = {contact_id: name for contact_id, name in session.execute(
        select(Contact.id, Contact.name).where(
            Contact.org_id == org.id, Contact.id.in_(sorted(open_items)), Contact.is_customer,
            Contact.archived.is_(False), Contact.excluded.is_(False)))}
    planned = []
    for contact_id, count in open_items.items():
        if contact_id not in names:
            continue
        step = due_statement(org.id, contact_id, names[contact_id], count, schedule, calendar,
                             now)
        if step is None:
            continue
        action = ledger.record_planned(session, step, None, now)
        if action is not None:
            planned.append(action)
    session.flush()
    log.info("org %s: %d statement(s) planned", org.id, len(planned))
    return planned


def send_statement(effect: Effect) -> str:
    """Email this month's statement to the customer, once (the Message-ID is the action's).
    It asks for no one invoice: the portal's link, where the customer sees and pays them all."""
    action, org, contact = effect.action, effect.org, effect.contact
    if (action.channel or "dunwell_email") not in CHANNELS:
        raise Skip("channel", f"Statements go by Dunwell email, not {action.channel}")
    if not contact.email:
        raise Skip("no_email", f"{contact.name} has no email address")
    if not effect.done_part("emailed"):
        statement = statement_for(effect.session, org, contact, effect.now)
        if not statement.lines:
            raise Skip("nothing_open", f"{contact.name} has nothing open")
        link = portal.portal_url(effect.session, contact)
        message = with_logo(with_portal_link(render_statement(statement), link),
                            logos.logo_for(effect.session, org.id, link), org.name)
        if send_own_email(effect, to=contact.email, subject=message.subject, text=message.text,
                          html=message.html, sender_name=org.name, action_key=effect.key):
            effect.record_part("message", {"subject": message.subject, "text": message.text,
                                           "items": len(statement.lines)})
    return effect.finish_sent(str(action.reason), "emailed by Dunwell", statement=True)
