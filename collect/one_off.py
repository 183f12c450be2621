"""A one-off reminder a collector sends from an invoice's page: by Dunwell's email or by text,
in one of the organisation's tones (the settings page's list) and the customer's language,
with an optional line of the collector's own. It is not a ladder step: its key
(`org:invoice:one_off:<form nonce>`) and its kind (`one_off_reminder`) are its own, so the
ladder neither counts it as a step taken nor waits for it.

The text is fixed when it is asked for (`details`), so what the preview shows is what goes out,
even when it waits: a text goes in the customer's hours (rules/sms.py, the ladder's texts'
rule), an email in the organisation's send window (rules.engine.first_sendable, as the ladder's
emails); either is booked for its next allowed moment and the page says when. The executor
(collect/execute.send_one_off) sends the stored text once, like any other message.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from collect import ledger, portal, sms
from collect.book import Book
from collect.message_texts import reminder_message
from connectors.base import RateLimited
from rules import PlannedAction, action_key
from rules.actions import ActionKind
from rules.engine import first_sendable
from rules.messages import TONES, language_of, with_personal_line
from rules.sms import MAX_BODY, Segments, segments_of, zones_for
from store.models import Action, Contact, Invoice, Organisation, SmsSettings, User

KIND: ActionKind = "one_off_reminder"
CHANNELS = ("dunwell_email", "sms")
CHANGED = "changed_since_asked"  # a skip: the invoice's amount moved before it went
MAX_LINE_CHARS = 300  # a short personal line, not a letter
NONCE = re.compile(r"[0-9a-f]{16,32}")

Refused = portal.PortalRefused


class NotYet(RateLimited):
    """Booked for a later moment (the customer's hours, the send window): the action waits,
    uncounted, as for a spent budget."""


@dataclass(frozen=True)
class OneOff:
    """The reminder exactly as it will go out, and when."""

    channel: str
    tone: str
    language: str
    subject: str  # an email's; a text has none
    text: str
    html: str
    send_at: datetime  # now, or the next moment it may go
    zone: str  # the time zone `send_at` is said in: the customer's (a text), the organisation's
    number: str | None = None  # a text's E.164 number
    segments: Segments | None = None
    cost: Decimal | None = None  # a text's, where the organisation sets a price per segment
    cost_currency: str | None = None
    link: str | None = None  # the customer's portal link in it (signed anew each time)

    @property
    def digest(self) -> str:
        """What the preview showed, in short: the send refuses other words than these (the
        portal link aside: the same link, signed at another second)."""
        text = self.text.replace(self.link, "<link>") if self.link else self.text
        return hashlib.sha256(f"{self.channel}\n{self.subject}\n{text}".encode()
                              ).hexdigest()[:32]


def text_reach(session: Session, org: Organisation, invoice: Invoice) -> tuple[str | None, str]:
    """The number a one-off text would go to, or why none can ("sms_not_set_up", "no_number",
    "unparseable", "not_mobile", "opted_out"): the customer page's reasons."""
    if sms.account_for(session, org.id) is None:
        return None, "sms_not_set_up"
    found = sms.texting_of(session, org, invoice.contact) if invoice.contact else None
    if found is None:
        return None, "sms_not_set_up" if invoice.contact else "no_number"
    return found


def _portal_link(session: Session, contact: Contact, previewed: str | None) -> str | None:
    """The customer's portal link: the one the preview showed when it is still theirs (signed
    by us for their current key), so the words that go out are the preview's to the letter;
    else a fresh one. A link that is not theirs is refused."""
    fresh = portal.portal_url(session, contact)
    if not previewed or fresh is None:
        return fresh
    base = fresh.rsplit("/", 1)[0] + "/"
    token = previewed[len(base):] if previewed.startswith(base) else ""
    found = portal.contact_for_token(session, token, str(current_app.config["SECRET_KEY"])) \
        if token else None
    if found is None or found.id != contact.id:
        raise Refused("one_off_changed")
    return previewed


def compose(session: Session, org: Organisation, invoice: Invoice, channel: str | None,
            tone: str | None, line: str | None, now: datetime,
            previewed_link: str | None = None) -> OneOff:
    """The reminder for the collector's choice, or Refused with a code the page words
    (`previewed_link`: the portal link its preview showed, kept)."""
    if invoice.status != "open" or invoice.amount_due <= 0:
        raise Refused("not_open")
    contact = invoice.contact
    if contact is None:
        raise Refused("no_customer")
    book = Book(session, org, [invoice])
    state = book.state(invoice) if invoice.due_date is not None else None
    for code, applies in (("excluded", contact.excluded),
                          ("disputed", invoice.disputed or contact.disputed),
                          ("own_document", state is not None and state.own_document)):
        if applies:
            raise Refused(code)
    if channel not in CHANNELS:
        raise Refused("one_off_channel")
    if tone not in TONES:
        raise Refused("one_off_template")
    personal = " ".join((line or "").split())
    if len(personal) > MAX_LINE_CHARS:
        raise Refused("one_off_line_long")
    policy = book.policy_of(invoice)
    link = _portal_link(session, contact, previewed_link)
    if channel == "sms":
        number, reason = text_reach(session, org, invoice)
        if number is None:
            raise Refused(reason if reason.startswith("sms_") else f"sms_{reason}")
        text = sms.text_for(invoice, org, tone, now, lambda: link)
        text = f"{personal} {text}"[:MAX_BODY] if personal else text
        counted = segments_of(text)
        settings = session.scalar(select(SmsSettings).where(SmsSettings.org_id == org.id))
        moment = sms.text_moment(session, org, number, now)
        if moment is None:
            raise Refused("sms_no_hours")
        return OneOff(channel, tone, language_of(contact.language), "", text, "", moment,
                      zones_for(number, None)[0], number, counted,
                      counted.cost(settings.cost_per_segment if settings else None),
                      settings.cost_currency if settings else None, link)
    if not contact.email:
        raise Refused("no_email")
    message = with_personal_line(reminder_message(
        session, org, invoice, tone, book.calendar.today(now), None, link), personal)
    moment = first_sendable(now, policy, book.calendar)
    if moment is None:
        raise Refused("no_window")
    return OneOff(channel, tone, message.locale, message.subject, message.text, message.html,
                  moment, org.timezone, link=link)


def plan(session: Session, org: Organisation, invoice: Invoice, user: User,
         channel: str | None, tone: str | None, line: str | None, nonce: str | None,
         now: datetime, previewed: str | None = None,
         previewed_link: str | None = None) -> tuple[Action, OneOff]:
    """The one-off reminder into the ledger for its moment, with who asked, and the activity
    log's entry (the caller commits and gives it a job; it waits there for its moment). The
    same form sent twice is one reminder (the form's nonce is in the key): Refused
    "one_off_taken". `previewed`: the preview's digest; other words (the invoice changed
    since) are refused, "one_off_changed"; `previewed_link` is the portal link it showed."""
    found = compose(session, org, invoice, channel, tone, line, now, previewed_link)
    if previewed is not None and previewed != found.digest:
        raise Refused("one_off_changed")
    once = nonce if nonce and NONCE.fullmatch(nonce) else secrets.token_hex(16)
    how = "text" if found.channel == "sms" else "email"
    action = ledger.record_planned(session, PlannedAction(
        key=action_key(invoice.org_id, invoice.id, "one_off", once), kind=KIND,
        invoice_id=invoice.id, org_id=invoice.org_id, scheduled_for=found.send_at,
        reason=f"One-off {found.tone} {how} reminder for {invoice.number}, asked for by"
               f" {user.email}",
        template=found.tone, channel=found.channel, tone=found.tone,
        details={"by": user.email, "user_id": user.id, "language": found.language,
                 "subject": found.subject, "text": found.text, "html": found.html,
                 "line": " ".join((line or "").split())}), invoice, now)
    if action is None:
        raise Refused("one_off_taken")
    local = found.send_at.astimezone(ZoneInfo(found.zone))
    ledger.audit(session, invoice.org_id, "one_off_requested",
                 f"One-off {found.tone} {how} reminder for {invoice.number} asked for by"
                 f" {user.email}; it goes out {found.send_at.isoformat()}", at=now,
                 invoice_id=invoice.id, action_id=action.id,
                 data={"action_id": action.id, "number": invoice.number,
                       "channel": found.channel, "tone": found.tone,
                       "send_at": found.send_at.isoformat(), "zone": found.zone,
                       "send_day": local.date().isoformat(),
                       "send_time": local.strftime("%H:%M"),
                       "later": found.send_at > now, "by": user.email, "user_id": user.id})
    return action, found
