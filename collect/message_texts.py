"""The organisation's own reminder texts: one subject and body per language and tone, in place
of the shipped text (rules/templates) until the owner resets it; and a test send of a text to
the signed-in owner, never to a customer.

A text is rendered against a sample invoice in every language before it is stored
(rules.messages.validate_template, in the budgeted sandbox of rules/template_safety.py), so a
hostile or broken text is refused when saved and never fails at send time.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime
from html import escape

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from collect import ledger, logos
from collect.book import calendar_for
from collect.mail import send_email, server_for
from collect.providers import redis_client
from connectors.base import ConfigurationError, TransientError
from rules.messages import (
    MAX_TEMPLATE_CHARS,
    SAMPLE,
    TONES,
    Message,
    MessageContext,
    MessageTemplateError,
    join_template,
    language_of,
    render,
    shipped_template,
    split_template,
    validate_template,
    with_logo,
    with_portal_link,
)
from rules.policy import LANGUAGES
from store.models import Invoice, MessageText, Organisation, User

log = logging.getLogger(__name__)

MAX_SUBJECT_CHARS = 500
TEST_SENDS = 5  # per organisation ...
TEST_SEND_WINDOW_SECONDS = 600  # ... in ten minutes
TEST_MARK = "[TEST]"


class TextRefused(ValueError):
    """A text that cannot be saved or sent; `field` names the form field it is about."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class TestSendsSpent(TextRefused):
    """The organisation sent its test emails for now (the rate limit)."""


@dataclass(frozen=True)
class Text:
    subject: str
    body: str
    custom: bool


def _checked_choice(language: str, tone: str) -> None:
    if language not in LANGUAGES:
        raise TextRefused("template.language",
                          f"Language must be one of {', '.join(LANGUAGES)}.")
    if tone not in TONES:
        raise TextRefused("template.tone", f"Tone must be one of {', '.join(TONES)}.")


def _row(session: Session, org_id: int, language: str, tone: str) -> MessageText | None:
    return session.scalar(select(MessageText).where(
        MessageText.org_id == org_id, MessageText.language == language,
        MessageText.tone == tone))


def message_source(session: Session, org_id: int, language: str, tone: str) -> str:
    """The template a reminder is rendered from: the organisation's own text for this language
    and tone if it has one, else the shipped one (used by collect/execute.py)."""
    row = _row(session, org_id, language, tone)
    if row is None:
        return shipped_template(language, tone)
    return join_template(row.subject, row.body)


def reminder_message(session: Session, org: Organisation, invoice: Invoice, tone: str | None,
                     today: date, payment_link: str | None,
                     portal_link: str | None) -> Message:
    """Our own reminder email for an invoice, as collect/execute.py sends it and the previews
    show it: the organisation's text for the tone in the contact's language, the invoice's
    amount in its currency, the customer's portal link last."""
    contact = invoice.contact
    language = language_of(contact.language if contact else None)
    days = (today - invoice.due_date).days if invoice.due_date else 0
    context = MessageContext(
        contact_name=contact.name if contact else "", invoice_number=invoice.number,
        amount_due=invoice.amount_due, currency=invoice.currency,
        due_date=invoice.due_date or today, days_overdue=max(days, 0),
        business_name=org.name, payment_link=payment_link, locale=language)
    source = message_source(session, org.id, language, tone or "friendly")
    message = with_portal_link(render(source, context), portal_link)
    return with_logo(message, logos.logo_for(session, org.id, portal_link), org.name)


def texts_of(session: Session, org: Organisation) -> dict[str, dict[str, Text]]:
    """Every language and tone with the text in force, and whether it is the owner's own."""
    own = {(r.language, r.tone): r for r in session.scalars(
        select(MessageText).where(MessageText.org_id == org.id))}
    texts: dict[str, dict[str, Text]] = {}
    for language in LANGUAGES:
        texts[language] = {}
        for tone in TONES:
            row = own.get((language, tone))
            if row is not None:
                texts[language][tone] = Text(row.subject, row.body, True)
            else:
                subject, body = split_template(shipped_template(language, tone))
                texts[language][tone] = Text(subject, body, False)
    return texts


def checked_source(subject: str, body: str) -> str:
    """The text as one template, rendered in every language for a sample invoice; refused
    with the reason (and the field it is about) when it cannot be used."""
    subject, body = subject.strip(), body.replace("\r\n", "\n")
    if not subject:
        raise TextRefused("template.subject", "Give the email a subject.")
    if len(subject) > MAX_SUBJECT_CHARS:
        raise TextRefused("template.subject",
                          f"A subject may hold at most {MAX_SUBJECT_CHARS} characters.")
    if not body.strip():
        raise TextRefused("template.body", "Write the text of the email.")
    if len(body) > MAX_TEMPLATE_CHARS:
        raise TextRefused("template.body",
                          f"A text may hold at most {MAX_TEMPLATE_CHARS:,} characters.")
    try:
        source = join_template(subject, body)
        validate_template(source)
    except MessageTemplateError as exc:
        text = str(exc)
        raise TextRefused("template.body", text[:1].upper() + text[1:] + ".") from exc
    return source


def save_text(session: Session, org: Organisation, user: User, language: str, tone: str,
              subject: str, body: str, now: datetime) -> MessageText:
    """Store the owner's text for one language and tone (the caller commits); nothing is
    stored when it is refused."""
    _checked_choice(language, tone)
    checked_source(subject, body)
    row = _row(session, org.id, language, tone)
    if row is None:
        row = MessageText(org_id=org.id, language=language, tone=tone)
        session.add(row)
    row.subject, row.body = subject.strip(), body.replace("\r\n", "\n")
    row.updated_by, row.updated_at = user.id, now
    ledger.audit(session, org.id, "template_saved",
                 f"Reminder text ({language}, {tone}) saved by {user.email}", at=now,
                 data={"language": language, "tone": tone, "by": user.email})
    return row


def reset_text(session: Session, org: Organisation, user: User, language: str, tone: str,
               now: datetime) -> bool:
    """Back to the shipped text; False when the organisation had none of its own."""
    _checked_choice(language, tone)
    # Typed as a Result; a DELETE's is a CursorResult, which has the rowcount.
    gone = session.execute(delete(MessageText).where(  # type: ignore[attr-defined]
        MessageText.org_id == org.id, MessageText.language == language,
        MessageText.tone == tone)).rowcount
    if gone:
        ledger.audit(session, org.id, "template_reset",
                     f"Reminder text ({language}, {tone}) reset to the default by {user.email}",
                     at=now, data={"language": language, "tone": tone, "by": user.email})
    return bool(gone)


# -- test send ----------------------------------------------------------------------------


def _context(session: Session, org: Organisation, language: str, invoice_id: int | None,
             now: datetime) -> MessageContext:
    if invoice_id is None:
        return replace(SAMPLE, locale=language, business_name=org.name)

    invoice = session.scalar(select(Invoice).where(Invoice.org_id == org.id,
                                                   Invoice.id == invoice_id))
    if invoice is None:
        raise LookupError(invoice_id)
    today = calendar_for(org).today(now)
    due = invoice.due_date or today
    contact = invoice.contact
    return MessageContext(
        contact_name=contact.name if contact else "", invoice_number=invoice.number,
        amount_due=invoice.amount_due, currency=invoice.currency, due_date=due,
        days_overdue=max((today - due).days, 0), business_name=org.name, locale=language)


def _spend_test_send(org_id: int) -> None:

    key = f"dunwell:test-send:{org_id}"
    redis = redis_client()
    count = int(redis.incr(key))
    if count == 1:
        redis.expire(key, TEST_SEND_WINDOW_SECONDS)
    if count > TEST_SENDS:
        wait = max(int(redis.ttl(key)), 1)
        raise TestSendsSpent("template.test", (
            f"At most {TEST_SENDS} test emails per {TEST_SEND_WINDOW_SECONDS // 60} minutes:"
            f" try again in {(wait + 59) // 60} minute(s)."))


def test_send(session: Session, org: Organisation, user: User, language: str, tone: str,
              subject: str | None, body: str | None, invoice_id: int | None,
              now: datetime) -> Message:
    """Render the text (as edited, or as in force) for the chosen invoice (or the sample) and
    email it, marked as a test, to the signed-in user's own address: the recipient is never
    taken from the form or the invoice. Rate-limited per organisation. Commits the audit."""

    _checked_choice(language, tone)
    source = (checked_source(subject, body or "") if subject is not None and body is not None
              else message_source(session, org.id, language, tone))
    context = _context(session, org, language, invoice_id, now)
    try:
        message = render(source, context)
    except MessageTemplateError as exc:
        raise TextRefused("template.body", str(exc)) from exc
    _spend_test_send(org.id)
    banner = (f"{TEST_MARK} This is a test of your {tone} reminder text ({language}), sent to"
              " you only. No customer received it.\n\n")
    try:
        send_email(to=user.email, subject=f"{TEST_MARK} {message.subject}",
                   text=banner + message.text,
                   html=message.html.replace("<p>", f"<p><strong>{escape(banner.strip())}"
                                                    "</strong></p><p>", 1),
                   sender_name=org.name, action_key=f"test-send:{org.id}:{uuid.uuid4().hex}",
                   server=server_for(session, org.id))  # the organisation's sender, if set up
    except ConfigurationError as exc:
        raise TextRefused("template.test", f"The test was not sent: {exc}.") from exc
    except TransientError as exc:
        raise TextRefused("template.test",
                          f"The test was not sent ({exc}); try again in a minute.") from exc
    ledger.audit(session, org.id, "template_test",
                 f"Test of the {tone} reminder text ({language}) sent to {user.email}", at=now,
                 invoice_id=invoice_id, data={"language": language, "tone": tone,
                                              "by": user.email})
    session.commit()
    log.info("org %s: test reminder text (%s, %s) sent to the signed-in user", org.id,
             language, tone)
    return message
