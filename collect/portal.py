"""The customer's portal: who a link lets in, and what a customer may say there.

A link is `/portal/<token>`, the token an itsdangerous timed signature (the app's SECRET_KEY,
a salt of its own) over the contact's id and the key of its PortalAccess row. Checking it needs
no lookup but that row: a bad signature, an expired link, a link made under an older key
(rotated) and an unknown contact all come back as None, and the portal answers all of them
with the same 404, so a guessed link learns nothing.

Promises, disputes and plan requests are written here, each with an entry in the activity log
(the owner's record of what customers said); the caller commits and refreshes the invoices'
next action (collect/plan.py), as this layer may not reach up to the planner.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from collect.mail import send_email
from connectors.base import ConfigurationError, TransientError
from rules.invoice import Promise
from rules.messages import language_of
from rules.promises import promise_broken, promise_kept
from store import clock
from store.db import among
from store.models import (
    AuditEvent,
    Contact,
    Invoice,
    InvoiceDispute,
    Membership,
    Organisation,
    PaymentPromise,
    PlanRequest,
    PortalAccess,
    PortalSettings,
    User,
)

log = logging.getLogger(__name__)

SALT = "dunwell.portal.v1"
LINK_DAYS = 90  # a reminder's link works for a quarter; a newer message carries a newer one
PROMISE_MAX_DAYS = 90  # how far ahead a customer may promise without asking for a plan
MAX_REASON_CHARS = 4000
MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024
# What a dispute may attach, by the file's first bytes (the browser's type is not believed).
ATTACHMENT_TYPES = {b"%PDF-": "application/pdf", b"\x89PNG\r\n\x1a\n": "image/png",
                    b"\xff\xd8\xff": "image/jpeg"}
PLAN_EVERY_DAYS = (7, 14, 30)
MAX_PLAN_INSTALMENTS = 24  # the most an owner may let a customer ask for
MAX_PLAN_DAYS = 730


class PortalRefused(ValueError):
    """Input the portal will not take; `code` names the reason (the page words it)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


# ----------------------------------------------------------------------------------- links


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=SALT)


def access_for(session: Session, contact: Contact) -> PortalAccess:
    """The contact's portal key, made on first use."""
    access = session.scalar(select(PortalAccess).where(PortalAccess.contact_id == contact.id))
    if access is None:
        access = PortalAccess(org_id=contact.org_id, contact_id=contact.id,
                              key=secrets.token_urlsafe(24), version=1)
        session.add(access)
        session.flush()
    return access


def link_token(session: Session, contact: Contact, secret_key: str) -> str:
    access = access_for(session, contact)
    return str(_serializer(secret_key).dumps({"c": contact.id, "k": access.key}))


def portal_url(session: Session, contact: Contact | None) -> str | None:
    """The contact's portal link as a message carries it (the app's BASE_URL and secret)."""
    if contact is None:
        return None
    config = current_app.config
    base = str(config.get("BASE_URL") or "").rstrip("/")
    return f"{base}/portal/{link_token(session, contact, str(config['SECRET_KEY']))}"


def rotate(session: Session, contact: Contact, now: datetime) -> PortalAccess:
    """A new key: every link given out before stops working."""
    access = access_for(session, contact)
    access.key = secrets.token_urlsafe(24)
    access.version += 1
    access.rotated_at = now
    session.add(AuditEvent(org_id=contact.org_id, kind="portal_link_rotated", at=now,
                           message=f"Portal link of {contact.name} replaced; older links no"
                                   " longer work", data={"contact": contact.name}))
    return access


def contact_for_token(session: Session, token: str, secret_key: str,
                      max_age_days: int = LINK_DAYS) -> Contact | None:
    """The contact a link lets in, or None (bad, expired, rotated or unknown: the same)."""
    try:
        payload = _serializer(secret_key).loads(token, max_age=max_age_days * 86400)
    except BadSignature:  # SignatureExpired is one too
        return None
    if not isinstance(payload, dict):
        return None
    contact_id, key = payload.get("c"), payload.get("k")
    if not isinstance(contact_id, int) or not isinstance(key, str):
        return None
    access = session.scalar(select(PortalAccess).where(PortalAccess.contact_id == contact_id))
    if access is None or not secrets.compare_digest(access.key, key):
        return None
    contact = session.get(Contact, contact_id)
    if contact is None or contact.org_id != access.org_id or contact.archived:
        return None
    return contact


# -------------------------------------------------------------------------------- the page


@dataclass(frozen=True)
class PortalInvoice:
    invoice: Invoice
    promise: PaymentPromise | None
    dispute: InvoiceDispute | None
    plan_request: PlanRequest | None


def settings_for(session: Session, org_id: int) -> PortalSettings:
    found = session.scalar(select(PortalSettings).where(PortalSettings.org_id == org_id))
    return found or PortalSettings(org_id=org_id, plan_max_instalments=3, plan_max_days=90)


def set_limits(session: Session, org_id: int, instalments: int, days: int,
               now: datetime) -> PortalSettings:
    """The owner's limits on plan requests (checked by the caller against the maxima)."""
    found = session.scalar(select(PortalSettings).where(PortalSettings.org_id == org_id))
    if found is None:
        found = PortalSettings(org_id=org_id)
        session.add(found)
    found.plan_max_instalments, found.plan_max_days = instalments, days
    session.add(AuditEvent(org_id=org_id, kind="portal_limits", at=now,
                           message=f"Plan requests in the portal: up to {instalments}"
                                   f" instalments within {days} days",
                           data={"instalments": instalments, "days": days}))
    return found


def open_invoices(session: Session, contact: Contact) -> list[PortalInvoice]:
    """The contact's open invoices, with what the customer said of each (latest first)."""
    invoices = session.scalars(
        select(Invoice).where(Invoice.org_id == contact.org_id, Invoice.contact_id == contact.id,
                              Invoice.status == "open")
        .order_by(Invoice.due_date, Invoice.id)).all()
    invoices = [i for i in invoices if i.amount_due > 0]  # SQLite keeps money as text
    ids = [i.id for i in invoices]

    def latest(model, *where):  # type: ignore[no-untyped-def]
        rows = session.scalars(select(model).where(model.invoice_id.in_(ids), *where)
                               .order_by(model.id)).all() if ids else []
        return {row.invoice_id: row for row in rows}

    promises = latest(PaymentPromise, PaymentPromise.status != "replaced")
    # An open dispute, else the latest resolved one (the customer sees chasing resume).
    disputes = {**latest(InvoiceDispute, InvoiceDispute.status == "resolved"),
                **latest(InvoiceDispute, InvoiceDispute.status == "open")}
    requests = latest(PlanRequest)
    return [PortalInvoice(i, promises.get(i.id), disputes.get(i.id), requests.get(i.id))
            for i in invoices]


def customer_invoice(session: Session, contact: Contact, invoice_id: int) -> Invoice:
    """One of this contact's open invoices, or PortalRefused("unknown_invoice")."""
    invoice = session.get(Invoice, invoice_id)
    if invoice is None or invoice.org_id != contact.org_id or invoice.contact_id != contact.id:
        raise PortalRefused("unknown_invoice")
    if invoice.status != "open" or invoice.amount_due <= 0:
        raise PortalRefused("not_open")
    return invoice


def parse_day(text: str | None) -> date:
    try:
        return date.fromisoformat((text or "").strip())
    except ValueError as exc:
        raise PortalRefused("bad_date") from exc


def parse_amount(text: str | None, invoice: Invoice) -> Decimal:
    """An amount of the invoice's currency, up to what is due; empty: all of it."""
    if not (text or "").strip():
        return invoice.amount_due
    try:
        amount = Decimal((text or "").strip().replace(",", "."))
    except InvalidOperation as exc:
        raise PortalRefused("bad_amount") from exc
    if not amount.is_finite() or amount <= 0 or amount > invoice.amount_due \
            or amount != amount.quantize(Decimal("0.01")):
        raise PortalRefused("bad_amount")
    return amount


# ------------------------------------------------------------------------- what is said


def _log(session: Session, invoice: Invoice, kind: str, message: str, now: datetime,
         data: dict[str, object]) -> None:
    session.add(AuditEvent(org_id=invoice.org_id, invoice_id=invoice.id, kind=kind,
                           message=message, at=now, data=data))


def promise(session: Session, contact: Contact, invoice: Invoice, pay_by: date,
            amount: Decimal, today: date, now: datetime) -> PaymentPromise:
    """The customer's promise; an earlier open one of the invoice is replaced by it."""
    if pay_by < today:
        raise PortalRefused("date_past")
    if pay_by > today + timedelta(days=PROMISE_MAX_DAYS):
        raise PortalRefused("date_far")
    for earlier in session.scalars(select(PaymentPromise).where(
            PaymentPromise.invoice_id == invoice.id, PaymentPromise.status == "open")):
        earlier.status, earlier.settled_at = "replaced", now
    row = PaymentPromise(org_id=invoice.org_id, contact_id=contact.id, invoice_id=invoice.id,
                         pay_by=pay_by, amount=amount, currency=invoice.currency,
                         paid_before=invoice.amount_paid, status="open", created_at=now)
    session.add(row)
    session.flush()
    _log(session, invoice, "promise_made",
         f"{contact.name} promised to pay {invoice.currency} {amount} of {invoice.number}"
         f" by {pay_by}; reminders wait until then", now,
         {"promise_id": row.id, "pay_by": pay_by.isoformat(), "amount": str(amount),
          "currency": invoice.currency, "number": invoice.number, "contact": contact.name})
    return row


def promises_of(session: Session, invoices: list[Invoice],
                today: date) -> dict[int, Promise]:
    """Each invoice's latest promise as the planner reads it (kept: paid as promised)."""
    ids = [i.id for i in invoices]
    by_id = {i.id: i for i in invoices}
    found: dict[int, Promise] = {}
    for start in range(0, len(ids), 500):
        for row in session.scalars(select(PaymentPromise).where(
                among(session, PaymentPromise.invoice_id, ids[start:start + 500]),
                PaymentPromise.status.in_(("open", "kept", "broken")))
                .order_by(PaymentPromise.id)):
            invoice = by_id[row.invoice_id]
            kept = row.status == "kept" or (row.status == "open" and promise_kept(
                invoice.amount_paid - row.paid_before, row.amount, invoice.amount_due))
            found[row.invoice_id] = Promise(row.id, row.pay_by, kept)
    return found


def settle_promises(session: Session, org_id: int, today: date, now: datetime) -> int:
    """Open promises whose day has passed are recorded kept or broken (the activity log says
    which; broken ones count against the customer's risk score). Returns how many changed."""
    changed = 0
    for row in session.scalars(select(PaymentPromise).where(
            PaymentPromise.org_id == org_id, PaymentPromise.status == "open",
            PaymentPromise.pay_by < today)):
        invoice = session.get(Invoice, row.invoice_id)
        if invoice is None:
            continue
        kept = invoice.status == "paid" or promise_kept(
            invoice.amount_paid - row.paid_before, row.amount, invoice.amount_due)
        if not kept and not promise_broken(row.pay_by, kept, today):
            continue
        row.status, row.settled_at = ("kept" if kept else "broken"), now
        _log(session, invoice, f"promise_{row.status}",
             f"Promise to pay {invoice.number} by {row.pay_by}: "
             + ("kept" if kept else "broken; a follow-up goes out"), now,
             {"promise_id": row.id, "number": invoice.number,
              "pay_by": row.pay_by.isoformat()})
        changed += 1
    return changed


def broken_promises(session: Session, org_id: int) -> dict[int, int]:
    """Contact id -> promises broken, for the risk score."""
    counts: dict[int, int] = {}
    for (contact_id,) in session.execute(select(PaymentPromise.contact_id).where(
            PaymentPromise.org_id == org_id, PaymentPromise.status == "broken")):
        if contact_id is not None:
            counts[contact_id] = counts.get(contact_id, 0) + 1
    return counts


def sniff(content: bytes) -> str:
    for magic, content_type in ATTACHMENT_TYPES.items():
        if content.startswith(magic):
            return content_type
    raise PortalRefused("bad_attachment_type")


def dispute(session: Session, contact: Contact, invoice: Invoice, reason: str,
            attachment: tuple[str, bytes] | None, now: datetime) -> InvoiceDispute:
    """The invoice in dispute: chasing and fees stop for it until the owner resolves it."""
    reason = (reason or "").strip()
    if not reason:
        raise PortalRefused("reason_missing")
    if len(reason) > MAX_REASON_CHARS:
        raise PortalRefused("reason_long")
    name = content_type = content = None
    if attachment is not None:
        name, content = attachment
        if len(content) > MAX_ATTACHMENT_BYTES:
            raise PortalRefused("attachment_large")
        content_type = sniff(content)
        name = "".join(c for c in name if c.isalnum() or c in "._- ")[-120:] or "attachment"
    row = InvoiceDispute(org_id=invoice.org_id, contact_id=contact.id, invoice_id=invoice.id,
                         reason=reason, status="open", attachment_name=name,
                         attachment_type=content_type, attachment=content, created_at=now)
    session.add(row)
    invoice.disputed = True
    session.flush()
    _log(session, invoice, "dispute_opened",
         f"{contact.name} disputes {invoice.number}: reminders and fees stop until it is"
         f" resolved", now, {"dispute_id": row.id, "attachment": bool(content),
                             "contact": contact.name, "number": invoice.number})
    return row


def resolve_dispute(session: Session, row: InvoiceDispute, user_id: int | None,
                    note: str, now: datetime) -> None:
    """Resolved: the invoice is chased again (unless another dispute of it is open)."""
    row.status, row.resolved_at, row.resolved_by = "resolved", now, user_id
    row.resolution = (note or "").strip()[:MAX_REASON_CHARS] or None
    invoice = session.get(Invoice, row.invoice_id)
    assert invoice is not None
    session.flush()
    still_open = session.scalar(select(InvoiceDispute.id).where(
        InvoiceDispute.invoice_id == invoice.id, InvoiceDispute.status == "open").limit(1))
    invoice.disputed = still_open is not None
    _log(session, invoice, "dispute_resolved",
         f"Dispute of {invoice.number} resolved; chasing resumes", now,
         {"dispute_id": row.id, "number": invoice.number})


def request_plan(session: Session, contact: Contact, invoice: Invoice, instalments: int,
                 first_on: date, every_days: int, today: date, now: datetime) -> PlanRequest:
    """A request for the owner; limits are the organisation's portal settings."""
    limits = settings_for(session, invoice.org_id)
    if every_days not in PLAN_EVERY_DAYS:
        raise PortalRefused("bad_interval")
    if not 2 <= instalments <= limits.plan_max_instalments:
        raise PortalRefused("too_many_instalments")
    if first_on < today:
        raise PortalRefused("date_past")
    last_on = first_on + timedelta(days=every_days * (instalments - 1))
    if last_on > today + timedelta(days=limits.plan_max_days):
        raise PortalRefused("plan_too_long")
    if session.scalar(select(PlanRequest.id).where(
            PlanRequest.invoice_id == invoice.id, PlanRequest.status == "pending").limit(1)):
        raise PortalRefused("plan_pending")
    row = PlanRequest(org_id=invoice.org_id, contact_id=contact.id, invoice_id=invoice.id,
                      instalments=instalments, first_on=first_on, every_days=every_days,
                      status="pending", created_at=now)
    session.add(row)
    session.flush()
    _log(session, invoice, "plan_requested",
         f"{contact.name} asks to pay {invoice.number} in {instalments} instalments every"
         f" {every_days} days from {first_on}; waiting for the owner", now,
         {"plan_request_id": row.id, "contact": contact.name, "number": invoice.number,
          "instalments": instalments, "every_days": every_days,
          "first_on": first_on.isoformat()})
    return row


def requested_instalments(row: PlanRequest, invoice: Invoice) -> list[tuple[date, Decimal]]:
    """The request as dated amounts adding up to what is due (the last takes the cents)."""
    share = (invoice.amount_due / row.instalments).quantize(Decimal("0.01"))
    days = [row.first_on + timedelta(days=row.every_days * n) for n in range(row.instalments)]
    amounts = [share] * (row.instalments - 1)
    amounts.append(invoice.amount_due - share * (row.instalments - 1))
    return list(zip(days, amounts, strict=True))


def decide_plan(session: Session, row: PlanRequest, approve: bool, user_id: int | None,
                plan_id: int | None, now: datetime) -> None:
    row.status = "approved" if approve else "declined"
    row.decided_at, row.decided_by, row.plan_id = now, user_id, plan_id
    invoice = session.get(Invoice, row.invoice_id)
    assert invoice is not None
    _log(session, invoice, f"plan_request_{row.status}",
         f"Plan request for {invoice.number} {row.status}", now,
         {"plan_request_id": row.id, "number": invoice.number})


def tell_owners(session: Session, invoice: Invoice, what: str,
                words: Callable[[str], tuple[str, str]]) -> int:
    """Email the organisation's owners that a customer said something in the portal that
    waits for them (`what`: a dispute, a plan request), each in the language they chose for
    Dunwell's pages (`words(language)`: the subject and text, the way to the invoice in it);
    after the answer is saved, best effort: a mail server that is down or not set up is
    logged, and the activity log holds it anyway. Returns how many were sent."""
    org = session.get(Organisation, invoice.org_id)
    assert org is not None
    owners = session.execute(
        select(User.email, User.language).join(Membership, Membership.user_id == User.id)
        .where(Membership.org_id == org.id, Membership.role == "owner")).all()
    sent = 0
    for email, language in owners:
        subject, text = words(language_of(language))
        try:
            send_email(to=email, subject=subject, text=text, html=None, sender_name="Dunwell",
                       action_key=f"portal:{invoice.id}:{what}:{clock.now().isoformat()}")
            sent += 1
        except (ConfigurationError, TransientError) as failure:
            log.warning("org %s: an owner was not emailed about invoice %s: %s", org.id,
                        invoice.id, failure)
    return sent


def invoice_page_url(invoice: Invoice) -> str:
    """The collector's page of the invoice, as an email to the owner links it."""
    base = str(current_app.config.get("BASE_URL") or "").rstrip("/")
    return f"{base}/orgs/{invoice.org_id}/invoices/{invoice.id}"


def organisation_of(session: Session, contact: Contact) -> Organisation:
    org = session.get(Organisation, contact.org_id)
    assert org is not None
    return org
