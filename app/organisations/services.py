"""What the organisation pages show, read in a few queries, always scoped to the member."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import abort
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import load_only

from app.access import may, role_in
from app.events import ACTION_KINDS
from collect import invoice_list
from collect.providers import PROVIDER_NAMES
from store.db import db
from store.models import (
    Action,
    AuditEvent,
    Document,
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
class Overview:
    org: Organisation
    sync: SyncRun | None
    events: list[AuditEvent]
    open_count: int
    # Open invoices per currency: how many, what they owe, how much of it is overdue.
    open_totals: list[invoice_list.CurrencyTotal]
    tasks: list[Task]
    documents: list[Document]


def latest_sync(org: Organisation) -> SyncRun | None:
    return db.session.scalar(select(SyncRun).where(SyncRun.org_id == org.id)
                             .order_by(SyncRun.started_at.desc(), SyncRun.id.desc()).limit(1))


def local_time(org: Organisation, moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(ZoneInfo(org.timezone)).strftime("%a %d %b %Y, %H:%M")


def overview(org: Organisation, now_local: datetime,
             listed: invoice_list.InvoicePage | None = None) -> Overview:
    """The organisation page's figures; its invoice list is read by `invoices` below, with
    the headline's totals in the same read of the book."""
    session = db.session()
    events = list(session.scalars(select(AuditEvent).where(AuditEvent.org_id == org.id)
                                  .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
                                  .limit(100)))
    open_totals = listed.open_totals if listed is not None \
        else invoice_list.open_totals(session, org.id, now_local.date())
    tasks = list(session.scalars(select(Task).where(Task.org_id == org.id,
                                                    Task.status == "open")
                                 .order_by(Task.created_at.desc()).limit(50)))
    # Not the content: a page lists them; the download reads one.
    documents = list(session.scalars(
        select(Document).where(Document.org_id == org.id)
        .options(load_only(Document.id, Document.filename, Document.kind, Document.created_at))
        .order_by(Document.created_at.desc()).limit(50)))
    return Overview(org=org, sync=latest_sync(org), events=events,
                    open_count=sum(t.count for t in open_totals), open_totals=open_totals,
                    tasks=tasks, documents=documents)


# The kinds of action the list may be narrowed to, worded as everywhere else (app/events.py).
NEXT_KIND_LABELS = {kind: ACTION_KINDS[kind] for kind in invoice_list.NEXT_KINDS}


def invoices(org: Organisation, args: Mapping[str, str], now: datetime
             ) -> invoice_list.InvoicePage:
    """One page of the organisation's invoices as the query string asks."""
    today = now.astimezone(ZoneInfo(org.timezone)).date()
    return invoice_list.invoice_page(db.session(), org.id,
                                     invoice_list.InvoiceQuery.from_args(args), now, today)


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
