"""What a reminder's channel will send, for every preview of it: the provider's own invoice
email as the provider words it from the organisation's email settings (read through the
connector, once for many invoices), or Dunwell's own email as collect/execute.py sends it
(the organisation's text for the tone, in the customer's language, the invoice's currency).

A preview writes nothing: the caller rolls its session back (a portal link may be made)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date
from typing import TYPE_CHECKING

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from collect import portal
from collect.message_texts import reminder_message
from collect.plan import Foreseen
from collect.providers import PROVIDER_NAMES, connector_for
from connectors.base import ConnectorError, InvoiceEmailFacts
from rules import PlannedAction
from store.db import db
from store.models import Contact, Invoice, Organisation, PortalAccess

if TYPE_CHECKING:
    from app.settings.services import TimelineEntry

log = logging.getLogger(__name__)
PROVIDER_EMAIL, DUNWELL_EMAIL = "provider_email", "dunwell_email"
# The actions collect/execute.py sends through a reminder's channel.
SENT_BY_CHANNEL = frozenset({"reminder", "plan_instalment"})


@dataclass(frozen=True)
class ChannelText:
    """The subject and body one reminder will carry."""

    channel: str
    subject: str
    body: str
    language: str = "en"
    direction: str = "ltr"
    # The provider's email: False when the provider lets no app read the organisation's own
    # wording (Xero), so this is the provider's standard one.
    from_settings: bool = True


@dataclass
class Previews:
    """The texts of some reminders, by action key, and why the provider's could not be read."""

    texts: dict[str, ChannelText]
    provider_problem: str | None = None


def provider_name(org: Organisation) -> str:
    provider = org.connection.provider if org.connection else ""
    return PROVIDER_NAMES.get(provider, provider)


def _facts(invoice: Invoice) -> InvoiceEmailFacts:
    return InvoiceEmailFacts(
        provider_id=invoice.provider_id, number=invoice.number,
        contact_name=invoice.contact.name if invoice.contact else "",
        currency=invoice.currency, total=invoice.total, amount_due=invoice.amount_due,
        due_date=invoice.due_date)


def provider_emails(org: Organisation, invoices: Sequence[Invoice]
                    ) -> tuple[dict[int, ChannelText], str | None]:
    """The provider's own email of each invoice, or why it cannot be shown now."""
    if not invoices:
        return {}, None
    connection = org.connection
    if connection is None or connection.status != "active":
        return {}, _("%(provider)s is not connected, so its email cannot be shown.",
                     provider=provider_name(org) or _("The provider"))
    try:
        emails = connector_for(connection).invoice_emails([_facts(i) for i in invoices])
    except ConnectorError as exc:
        log.info("org %s: the provider's invoice email could not be read: %s", org.id, exc)
        return {}, _("%(provider)s did not answer just now, so its email cannot be shown; try"
                     " again in a minute.", provider=provider_name(org))
    return {invoice.id: ChannelText(PROVIDER_EMAIL, email.subject, email.body,
                                    from_settings=email.from_settings)
            for invoice, email in zip(invoices, emails, strict=True)}, None


def _portal_link(session: Session, contact: Contact | None) -> str | None:
    """The customer's portal link as the email will carry it: the link itself once the
    customer has a portal key; before that only its start, as the first email makes the key
    (and a preview makes nothing)."""
    if contact is None:
        return None
    if session.scalar(select(PortalAccess.id).where(PortalAccess.contact_id == contact.id)):
        return portal.portal_url(session, contact)
    return f"{str(current_app.config.get('BASE_URL') or '').rstrip('/')}/portal/…"


def own_email(session: Session, org: Organisation, invoice: Invoice, tone: str | None,
              today: date, payment_link: str | None = None) -> ChannelText:
    """Dunwell's own email, as collect/execute.py sends it (the payment link, where the
    provider has one, is asked for at the send)."""
    message = reminder_message(session, org, invoice, tone, today, payment_link,
                               _portal_link(session, invoice.contact))
    return ChannelText(DUNWELL_EMAIL, message.subject, message.text, message.locale,
                       message.direction)


@dataclass(frozen=True)
class Sample:
    invoice: Invoice
    text: ChannelText


def of_settings_page(org: Organisation) -> dict[str, Sample | str | None]:
    """The provider's own email for the first open invoice the settings page can show it for
    (one read of the provider's settings), or why it cannot be shown."""
    invoice = db.session.scalar(select(Invoice).where(
        Invoice.org_id == org.id, Invoice.status == "open", Invoice.contact_id.is_not(None))
        .order_by(Invoice.due_date, Invoice.id).limit(1))
    if invoice is None:
        return {"provider_email": None, "provider_email_problem": None}
    emails, problem = provider_emails(org, [invoice])
    sample = Sample(invoice, emails[invoice.id]) if invoice.id in emails else None
    return {"provider_email": sample, "provider_email_problem": problem}


def of_week(session: Session, org: Organisation, found: Sequence[Foreseen]) -> Previews:
    """The texts of the reminders a preview of the coming days lists (collect/plan.foresee)."""
    return reminder_texts(session, org, [(f.invoice, f.action, f.at.astimezone(UTC).date())
                                         for f in found])


def of_timeline(session: Session, org: Organisation, invoice: Invoice,
                entries: Sequence[TimelineEntry]) -> Previews:
    """The texts of one invoice's coming reminders ("What will happen"): our own email with
    the payment link it will carry, asked of the provider once."""
    items = [(invoice, e.action, e.at.astimezone(UTC).date()) for e in entries]
    link = None
    ours = any(a.kind in SENT_BY_CHANNEL and a.channel == DUNWELL_EMAIL for _, a, _ in items)
    if ours and org.connection is not None and org.connection.status == "active":
        try:
            link = connector_for(org.connection).online_invoice_url(invoice.provider_id)
        except ConnectorError:
            link = None  # as the send: the email goes without the link
    return reminder_texts(session, org, items, {invoice.id: link})


def reminder_texts(session: Session, org: Organisation,
                   items: Iterable[tuple[Invoice, PlannedAction, date]],
                   payment_links: Mapping[int, str | None] | None = None) -> Previews:
    """What each reminder among these (invoice, action, the day it goes) will send, by the
    action's key: one read of the provider's settings for all its emails. Our own email's
    payment link is left out unless given (the provider is asked for it at the send)."""
    chosen = [(i, a, day) for i, a, day in items if a.kind in SENT_BY_CHANNEL]
    by_provider = list({i.id: i for i, a, _ in chosen if a.channel == PROVIDER_EMAIL}.values())
    emails, problem = provider_emails(org, by_provider)
    texts: dict[str, ChannelText] = {}
    for invoice, action, day in chosen:
        if action.channel == PROVIDER_EMAIL and invoice.id in emails:
            texts[action.key] = emails[invoice.id]
        elif action.channel == DUNWELL_EMAIL:
            texts[action.key] = own_email(session, org, invoice, action.tone, day,
                                          (payment_links or {}).get(invoice.id))
    return Previews(texts, problem)
