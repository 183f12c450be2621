"""The SMS channel: a reminder step texted through Twilio, at most once, in the customer's
hours, never to a number that said STOP; else the step falls back to email, with the reason.

Exactly once: the text's body is fixed in the action's result before the first try, and the
send is written down as `texted` in progress (`Effect.begin`). A retry that finds it in progress
(the worker died, or Twilio's answer was lost) looks the text up at Twilio (messages to that
number from our sender, since the first try, with that body) and records what it finds instead
of sending again. Twilio's status callbacks keep each text's delivery status; an undelivered or
failed text counts as not sent: its action is failed in the ledger, and its retry emails.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from collect import ledger, portal
from collect.book import policy_for
from collect.effects import Effect
from collect.providers import token_vault
from connectors.base import RateLimited
from connectors.twilio import (
    FINAL_STATUSES,
    NOT_SENT_STATUSES,
    NumberRefused,
    SentText,
    TwilioAccount,
    TwilioMessages,
)
from rules.messages import LOCALES, SAMPLE, TONES, MessageContext, language_of
from rules.sms import (
    Segments,
    next_text_moment,
    number_for,
    segments_of,
    sender_for,
    sms_text,
    zones_for,
)
from store.models import (
    Action,
    Contact,
    Invoice,
    Organisation,
    SmsMessage,
    SmsOptOut,
    SmsSettings,
)

log = logging.getLogger(__name__)

TEXTED = "texted"  # the part of the action's result: the text's Twilio SID once sent
BODY = "sms_body"
FALLBACK = "sms_fallback"  # why the step went by email instead
UNDELIVERED = "sms_undelivered"
FALLBACK_CHANNEL = "provider_email"
LOOKUP_SLACK = timedelta(minutes=5)  # Twilio's clock against ours, for the lookup


class QuietHours(RateLimited):
    """Not now in the customer's hours: the action waits (as for a spent budget), uncounted."""


def account_for(session: Session, org_id: int) -> TwilioAccount | None:
    """The organisation's Twilio account, or the server's; None: texts are not set up."""
    settings = session.scalar(select(SmsSettings).where(SmsSettings.org_id == org_id))
    if settings is None or not settings.enabled:
        return None
    config = current_app.config
    api_url = config.get("TWILIO_API_URL") or None
    if settings.account_sid and settings.auth_token_enc:
        return TwilioAccount(settings.account_sid, token_vault().decrypt(settings.auth_token_enc),
                             settings.sender or str(config.get("TWILIO_FROM") or ""), api_url)
    if config.get("TWILIO_ACCOUNT_SID") and config.get("TWILIO_AUTH_TOKEN"):
        return TwilioAccount(str(config["TWILIO_ACCOUNT_SID"]), str(config["TWILIO_AUTH_TOKEN"]),
                             settings.sender or str(config.get("TWILIO_FROM") or ""), api_url)
    return None


def opted_out(session: Session, org_id: int, number: str) -> bool:
    return bool(session.scalar(select(SmsOptOut.opted_out).where(
        SmsOptOut.org_id == org_id, SmsOptOut.number == number)))


def contact_number(contact: Contact | None, org: Organisation) -> tuple[str | None, str]:
    """The contact's E.164 mobile, or None and why not (the organisation's country reads a
    national number when the books give the contact none)."""
    if contact is None:
        return None, "no_number"
    found = number_for(contact.mobile, contact.phone, contact.country or org.country)
    return found.e164, found.reason or ""


def text_for(invoice: Invoice, org: Organisation, tone: str | None, now: datetime,
             payment_link: Callable[[], str | None]) -> str:
    """The reminder as the customer will read it, with its link: the customer's portal (where
    they pay, promise a date, ask for time or dispute), else the invoice's online page."""
    contact = invoice.contact
    days = (now.date() - invoice.due_date).days if invoice.due_date else 0
    link = payment_link()
    return sms_text(MessageContext(
        contact_name=contact.name if contact else "", invoice_number=invoice.number,
        amount_due=invoice.amount_due, currency=invoice.currency,
        due_date=invoice.due_date or now.date(), days_overdue=max(days, 0),
        business_name=org.name, payment_link=link,
        locale=language_of(contact.language if contact else None)), tone or "friendly")


@dataclass(frozen=True)
class TextPreview:
    language: str
    tone: str
    text: str
    segments: Segments
    cost: Decimal | None  # per message, in the organisation's cost currency


def previews(settings: SmsSettings | None, org: Organisation) -> list[TextPreview]:
    """Each shipped text for a sample invoice (with a sample link to it): its characters,
    segments, and the cost per message where one is set."""
    per_segment = settings.cost_per_segment if settings else None
    found = []
    for language in LOCALES:
        for tone in TONES:
            text = sms_text(replace(SAMPLE, business_name=org.name,
                                    locale=language), tone)
            counted = segments_of(text)
            found.append(TextPreview(language, tone, text, counted, counted.cost(per_segment)))
    return found


def _fall_back(effect: Effect, reason: str, by_email: bool = True) -> str:
    """No text for this step: said in the ledger's result and, for a ladder step that goes by
    email instead, in the activity log. A one-off text (`by_email` False) goes by nothing
    else: its own refusal says why (collect/execute.py)."""
    if (effect.action.result or {}).get(FALLBACK) != reason:
        effect.record_part(FALLBACK, reason)
        if by_email:
            ledger.audit(effect.session, effect.action.org_id, "sms_fallback",
                         f"{effect.invoice.number}: no text ({reason.replace('_', ' ')}); "
                         "the reminder goes by email", at=effect.now,
                         invoice_id=effect.invoice.id, action_id=effect.action.id,
                         data={"reason": reason, "number": effect.invoice.number})
        effect.session.commit()
    log.info("org %s action %s: no text (%s); %s", effect.action.org_id, effect.action.key,
             reason, "by email" if by_email else "not sent")
    return FALLBACK_CHANNEL


def send_text(effect: Effect, payment_link: Callable[[], str | None],
              by_email: bool = True) -> str:
    """Text the reminder; the channel the step went by: "sms", or the fallback email's
    (`by_email` False: a one-off text, which no email replaces)."""
    action, invoice, org, session = effect.action, effect.invoice, effect.org, effect.session
    result = action.result or {}
    if result.get(UNDELIVERED):
        return _fall_back(effect, "undelivered", by_email)
    if result.get(FALLBACK):
        return FALLBACK_CHANNEL
    if effect.done_part(TEXTED):
        return "sms"
    account = account_for(session, org.id)
    if account is None:
        return _fall_back(effect, "sms_not_set_up", by_email)
    number, reason = contact_number(invoice.contact, org)
    if number is None:
        return _fall_back(effect, reason, by_email)
    if opted_out(session, org.id, number):
        return _fall_back(effect, "opted_out", by_email)
    sender = sender_for(account.sender, str(current_app.config.get("TWILIO_FROM") or ""),
                        number_for(number, None, None).region)
    if sender is None:
        return _fall_back(effect, "sender_not_allowed", by_email)
    client = TwilioMessages(replace(account, sender=sender))
    since = effect.unknown_since(TEXTED)
    if since is None:
        _wait_for_the_customers_hours(effect, number)
    body = str(result.get(BODY) or "")
    if not body:
        body = text_for(invoice, org, action.tone, effect.now,
                        lambda: portal.portal_url(session, invoice.contact) or payment_link())
        effect.record_part(BODY, body)
    if since is not None:
        found = client.find(number, body, since - LOOKUP_SLACK)
        if found is not None:
            log.info("org %s action %s: the text %s was sent; not sent again", org.id,
                     action.key, found.sid)
            return _sent(effect, found, number)
    effect.begin(TEXTED)
    try:
        sent = client.send(number, body, status_callback=status_callback_url())
    except NumberRefused as exc:
        effect.forget_write()  # Twilio refused it: nothing was sent
        if exc.reason == "opted_out":
            record_reply(session, org.id, number, "opt_out", "STOP (Twilio)", effect.now)
        return _fall_back(effect, exc.reason, by_email)
    return _sent(effect, sent, number)


def _sent(effect: Effect, sent: SentText, number: str) -> str:
    effect.session.add(SmsMessage(
        org_id=effect.action.org_id, action_id=effect.action.id,
        contact_id=effect.invoice.contact_id, number=number, sid=sent.sid, status=sent.status,
        segments=sent.segments, body=sent.body, error_code=sent.error_code,
        created_at=effect.now, updated_at=effect.now))
    effect.record_part(TEXTED, sent.sid)  # commits the row with it
    return "sms"


def text_moment(session: Session, org: Organisation, number: str,
                now: datetime) -> datetime | None:
    """The first moment from `now` a text to `number` may go: the organisation's send window
    in the customer's zone(s), cut to the law's hours, no public holiday (rules/sms.py)."""
    policy = policy_for(session, org)
    region = number_for(number, None, None).region or org.country
    return next_text_moment(now, zones_for(number, None), policy.send_time,
                            policy.send_window_hours, region, policy.business_days_only)


def _wait_for_the_customers_hours(effect: Effect, number: str) -> None:
    moment = text_moment(effect.session, effect.org, number, effect.now)
    if moment is None or moment > effect.now:
        wait = (moment - effect.now).total_seconds() if moment else 24 * 3600.0
        log.info("org %s action %s: outside the customer's hours; the text waits %.0f s",
                 effect.org.id, effect.action.key, wait)
        raise QuietHours("outside the customer's hours", retry_after=wait)


def status_callback_url() -> str | None:
    base = str(current_app.config.get("BASE_URL") or "").rstrip("/")
    return f"{base}/webhooks/twilio/status" if base else None


# ----------------------------------------------------------------------- webhooks' effects


def record_status(session: Session, sid: str, status: str, error_code: int | None,
                  now: datetime) -> Action | None:
    """A status callback: the text's status kept; an undelivered or failed text fails its
    action in the ledger (the retry emails). The action to run again, if any."""
    message = session.scalar(select(SmsMessage).where(SmsMessage.sid == sid))
    if message is None:
        return None
    if message.status in FINAL_STATUSES and status not in FINAL_STATUSES:
        return None  # callbacks may come out of order: a final status stays
    message.status, message.error_code, message.updated_at = status, error_code, now
    action = session.get(Action, message.action_id) if message.action_id else None
    if status not in NOT_SENT_STATUSES or action is None or action.status != "done":
        session.commit()
        return None
    ledger.finish(session, action, "failed",
                  f"The text to {mask(message.number)} was {status}"
                  f"{f' (Twilio {error_code})' if error_code else ''}; the reminder goes by"
                  " email instead", now, result={UNDELIVERED: sid})
    action.finished_at = None
    session.commit()
    return action


def record_reply(session: Session, org_id: int, number: str, meaning: str, keyword: str,
                 now: datetime) -> None:
    """STOP: no more texts to the number; START: texts again. Said in the activity log."""
    row = session.scalar(select(SmsOptOut).where(SmsOptOut.org_id == org_id,
                                                 SmsOptOut.number == number))
    out = meaning == "opt_out"
    if row is None:
        row = SmsOptOut(org_id=org_id, number=number, opted_out=out, keyword=keyword[:32],
                        changed_at=now)
        session.add(row)
    elif row.opted_out == out:
        return
    row.opted_out, row.keyword, row.changed_at = out, keyword[:32], now
    ledger.audit(session, org_id, "sms_opt_out" if out else "sms_opt_in",
                 f"{mask(number)} replied {keyword}: "
                 + ("no more texts to this number" if out else "texts may go to it again"),
                 at=now, data={"number": number, "masked": mask(number), "keyword": keyword})


def orgs_texting(session: Session, number: str) -> list[int]:
    """The organisations that texted this number: an inbound reply concerns them."""
    return list(session.scalars(select(SmsMessage.org_id).where(SmsMessage.number == number)
                                .distinct()))


# ------------------------------------------------------------------------- the owner's view


def opt_outs(session: Session, org_id: int) -> list[SmsOptOut]:
    """The numbers that replied STOP and have not replied START since, newest first."""
    return list(session.scalars(select(SmsOptOut).where(
        SmsOptOut.org_id == org_id, SmsOptOut.opted_out.is_(True))
        .order_by(SmsOptOut.changed_at.desc())))


def unreachable_contacts(session: Session, org: Organisation) -> list[tuple[Contact, str]]:
    """Customers a text cannot reach, and why ("no_number", "unparseable", "not_mobile",
    "opted_out"): their steps go by email."""
    out = {row.number for row in opt_outs(session, org.id)}
    found = []
    for contact in session.scalars(select(Contact).where(
            Contact.org_id == org.id, Contact.is_customer.is_(True),
            Contact.archived.is_(False)).order_by(Contact.name)):
        number, reason = contact_number(contact, org)
        if number in out:
            reason = "opted_out"
        if reason:
            found.append((contact, reason))
    return found


def mask(number: str) -> str:
    """A number as the owner's pages show it: enough to recognise, not to copy."""
    return f"{number[:-4]}••••" if len(number) > 6 else "••••"


def texting_of(session: Session, org: Organisation,
               contact: Contact) -> tuple[str | None, str] | None:
    """For the customer's page: the number texts go to, or why none does ("no_number",
    "unparseable", "not_mobile", "opted_out"); None while the organisation's texts are off."""
    settings = session.scalar(select(SmsSettings).where(SmsSettings.org_id == org.id))
    if settings is None or not settings.enabled:
        return None
    number, reason = contact_number(contact, org)
    if number is not None and opted_out(session, org.id, number):
        return None, "opted_out"
    return number, reason
