"""What the organisation pages show, read in a few queries, always scoped to the member."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask import abort
from flask_login import current_user
from sqlalchemy import case, func, select
from sqlalchemy.orm import load_only, selectinload

from app.access import may, role_in
from collect import own_documents
from collect.providers import PROVIDER_NAMES
from store.db import db
from store.models import (
    Action,
    AuditEvent,
    Document,
    Invoice,
    Membership,
    Organisation,
    SyncRun,
    Task,
    User,
)


def organisations_of(user: User) -> list[Organisation]:
    return list(db.session.scalars(
        select(Organisation).join(Membership, Membership.org_id == Organisation.id)
        .where(Membership.user_id == user.id).order_by(Organisation.name)))


def role_of(user: User, org: Organisation) -> str | None:
    return role_in(user.id, org.id)


def may_in(org: Organisation, endpoint: str, method: str = "POST") -> bool:
    """Whether the signed-in person may call this route of the organisation (the role matrix
    in app/access.py): pages show a button only to those it would work for."""
    return may(role_of(current_user, org), endpoint, method)


def organisation_for(user: User, org_id: int) -> Organisation:
    """The organisation if the user is a member; 404 otherwise (never reveal it exists)."""
    org = db.session.scalar(
        select(Organisation).join(Membership, Membership.org_id == Organisation.id)
        .where(Membership.user_id == user.id, Organisation.id == org_id))
    if org is None:
        abort(404)
    return org


@dataclass
class InvoiceRow:
    invoice: Invoice
    contact_name: str
    next_action_local: str | None
    due_now: bool
    reminders_sent: int
    # A fee invoice Dunwell made: the number of the invoice it is for (listed right after it).
    made_for: str | None = None


@dataclass
class Overview:
    org: Organisation
    sync: SyncRun | None
    invoices: list[InvoiceRow]
    events: list[AuditEvent]
    open_count: int
    overdue_total_by_currency: dict[str, Decimal]
    tasks: list[Task]
    documents: list[Document]


def latest_sync(org: Organisation) -> SyncRun | None:
    return db.session.scalar(select(SyncRun).where(SyncRun.org_id == org.id)
                             .order_by(SyncRun.started_at.desc(), SyncRun.id.desc()).limit(1))


def local_time(org: Organisation, moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(ZoneInfo(org.timezone)).strftime("%a %d %b %Y, %H:%M")


def overview(org: Organisation, now_local: datetime, limit: int = 500) -> Overview:
    session = db.session()
    sent = dict(session.execute(
        select(Action.invoice_id, func.count()).where(
            Action.org_id == org.id, Action.status == "done").group_by(Action.invoice_id)).all())
    open_first = case((Invoice.status == "open", 0), else_=1)
    invoices = session.scalars(
        select(Invoice).where(Invoice.org_id == org.id).options(selectinload(Invoice.contact))
        .order_by(open_first, Invoice.next_action_at.is_(None), Invoice.next_action_at,
                  Invoice.due_date).limit(limit)).all()
    # Each fee invoice Dunwell made is listed right after the invoice it is for.
    rows = [InvoiceRow(invoice=i, contact_name=i.contact.name if i.contact else "",
                       next_action_local=local_time(org, i.next_action_at),
                       due_now=i.next_action_at is not None and i.next_action_at <= now_local,
                       reminders_sent=sent.get(i.id, 0), made_for=made_for)
            for i, made_for in own_documents.beside_their_invoices(
                session, org.id, invoices, lambda i: i)]
    events = list(session.scalars(select(AuditEvent).where(AuditEvent.org_id == org.id)
                                  .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
                                  .limit(100)))
    overdue: dict[str, Decimal] = {}
    for invoice in invoices:
        if invoice.status == "open" and invoice.due_date and \
                invoice.due_date < now_local.date():
            overdue[invoice.currency] = overdue.get(invoice.currency, Decimal(0)) + \
                invoice.amount_due
    open_count = session.scalar(select(func.count()).select_from(Invoice).where(
        Invoice.org_id == org.id, Invoice.status == "open")) or 0
    tasks = list(session.scalars(select(Task).where(Task.org_id == org.id,
                                                    Task.status == "open")
                                 .order_by(Task.created_at.desc()).limit(50)))
    # Not the content: a page lists them; the download reads one.
    documents = list(session.scalars(
        select(Document).where(Document.org_id == org.id)
        .options(load_only(Document.id, Document.filename, Document.kind, Document.created_at))
        .order_by(Document.created_at.desc()).limit(50)))
    return Overview(org=org, sync=latest_sync(org), invoices=rows, events=events,
                    open_count=open_count, overdue_total_by_currency=overdue, tasks=tasks,
                    documents=documents)


@dataclass(frozen=True)
class DailyLimitNotice:
    """The provider's daily budget for this organisation is spent: what waits, and until when."""

    provider: str  # the provider's name, as the owner knows it
    deferred: int  # open actions due before the budget refills
    until_local: str  # when it refills, in the organisation's zone


DEFERRABLE = ("planned", "claimed", "failed")


def daily_limit_notice(org: Organisation, now: datetime) -> DailyLimitNotice | None:
    """Shown while the provider's day in which the limit was reached lasts.

    The provider's day (and our shared budget's day counter, connectors/ratelimit.py) starts at
    00:00 UTC, so the notice is read from the `daily_limit` activity event the worker writes
    when an action is deferred for the day, and is gone once that day has rolled over. Every
    action still open and due before then waits for the budget to refill."""

    day_start = datetime.combine(now.astimezone(UTC).date(), time.min, tzinfo=UTC)
    refills = day_start + timedelta(days=1)
    reached = db.session.scalar(
        select(AuditEvent.id).where(AuditEvent.org_id == org.id,
                                    AuditEvent.kind == "daily_limit",
                                    AuditEvent.at >= day_start, AuditEvent.at < refills)
        .limit(1))
    if reached is None:
        return None
    deferred = db.session.scalar(
        select(func.count()).select_from(Action).where(
            Action.org_id == org.id, Action.status.in_(DEFERRABLE),
            Action.scheduled_for < refills)) or 0
    provider = org.connection.provider if org.connection else ""
    zone = ZoneInfo(org.timezone)
    return DailyLimitNotice(provider=PROVIDER_NAMES.get(provider, provider or "the provider"),
                            deferred=int(deferred),
                            until_local=f"{local_time(org, refills)} ({zone.key})")


def document_for(org: Organisation, document_id: int) -> Document:
    """A document of this organisation; 404 for anyone else's."""
    document = db.session.scalar(select(Document).where(Document.org_id == org.id,
                                                        Document.id == document_id))
    if document is None:
        abort(404)
    return document
