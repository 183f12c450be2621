"""What the dashboard and the invoice page show: aging, DSO, what comes next, tasks, disputes,
and one invoice's whole history. Read-only except marking a task done."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from app.extensions import db
from app.models import Action, AuditEvent, Contact, Invoice, Organisation, Payment, Task, User
from jobs import ledger

BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")
DSO_DAYS = 90


def bucket_of(due: date | None, today: date) -> str:
    late = (today - due).days if due is not None else 0
    if late <= 0:
        return "current"
    if late <= 30:
        return "1-30"
    if late <= 60:
        return "31-60"
    if late <= 90:
        return "61-90"
    return "90+"


@dataclass
class Aging:
    currency: str
    buckets: dict[str, Decimal] = field(default_factory=lambda: {b: Decimal(0) for b in BUCKETS})

    @property
    def total(self) -> Decimal:
        return sum(self.buckets.values(), Decimal(0))

    @property
    def overdue(self) -> Decimal:
        return self.total - self.buckets["current"]


def aging(org: Organisation, today: date) -> list[Aging]:
    """Open balances by how late they are, per currency, the largest book first."""
    by_currency: dict[str, Aging] = {}
    for currency, due, amount in db.session.execute(
            select(Invoice.currency, Invoice.due_date, Invoice.amount_due).where(
                Invoice.org_id == org.id, Invoice.status == "open")):
        # Money is compared in Python: SQLite keeps it as exact text, not a number.
        if amount <= 0:
            continue
        row = by_currency.setdefault(currency, Aging(currency))
        row.buckets[bucket_of(due, today)] += amount
    return sorted(by_currency.values(),
                  key=lambda a: (a.currency != org.base_currency, -a.total, a.currency))


def dso(org: Organisation, today: date, currency: str, days: int = DSO_DAYS) -> int | None:
    """Days sales outstanding: what is owed now over what was invoiced in the last `days`
    days, times `days`. None when nothing was invoiced (the figure would mean nothing)."""
    since = today - timedelta(days=days)
    owed = sum(db.session.scalars(select(Invoice.amount_due).where(
        Invoice.org_id == org.id, Invoice.status == "open", Invoice.currency == currency)),
        Decimal(0))
    sold = sum(db.session.scalars(select(Invoice.total).where(
        Invoice.org_id == org.id, Invoice.currency == currency,
        Invoice.status.in_(("open", "paid")), Invoice.issue_date > since,
        Invoice.issue_date <= today)), Decimal(0))
    if sold <= 0:
        return None
    return int((owed / sold * days).to_integral_value())


@dataclass(frozen=True)
class ChartBar:
    label: str
    amount: Decimal
    x: int
    y: int
    height: int
    css: str


CHART_HEIGHT, BAR_WIDTH, GAP, TOP = 160, 84, 24, 24


def chart_bars(row: Aging) -> list[ChartBar]:
    """Bars of an inline SVG: heights in proportion to the largest bucket."""
    biggest = max(row.buckets.values()) or Decimal(1)
    bars = []
    for n, name in enumerate(BUCKETS):
        amount = row.buckets[name]
        height = int(amount / biggest * CHART_HEIGHT) if amount > 0 else 0
        css = "bar" if n == 0 else "bar late" if n < 3 else "bar bad"
        bars.append(ChartBar(name, amount, GAP + n * (BAR_WIDTH + GAP),
                             TOP + CHART_HEIGHT - height, height, css))
    return bars


def upcoming_actions(org: Organisation, now: datetime, limit: int = 20) -> list[Action]:
    """Actions in the ledger that have not run yet, soonest first."""
    return list(db.session.scalars(select(Action).where(
        Action.org_id == org.id, Action.status.in_(("planned", "claimed", "failed")))
        .options(selectinload(Action.invoice))
        .order_by(Action.scheduled_for, Action.id).limit(limit)))


def next_due_invoices(org: Organisation, now: datetime, days: int = 14,
                      limit: int = 20) -> list[Invoice]:
    """Invoices whose next action comes within `days`."""
    return list(db.session.scalars(select(Invoice).where(
        Invoice.org_id == org.id, Invoice.next_action_at.is_not(None),
        Invoice.next_action_at <= now + timedelta(days=days))
        .options(selectinload(Invoice.contact))
        .order_by(Invoice.next_action_at, Invoice.id).limit(limit)))


def open_tasks(org: Organisation) -> list[Task]:
    return list(db.session.scalars(select(Task).where(Task.org_id == org.id,
                                                      Task.status == "open")
                                   .order_by(Task.created_at, Task.id).limit(100)))


def disputed_invoices(org: Organisation) -> list[Invoice]:
    return list(db.session.scalars(
        select(Invoice).outerjoin(Contact, Contact.id == Invoice.contact_id)
        .where(Invoice.org_id == org.id, Invoice.status == "open",
               or_(Invoice.disputed.is_(True), Contact.disputed.is_(True)))
        .options(selectinload(Invoice.contact)).order_by(Invoice.due_date).limit(100)))


class TaskNoteTooLong(ValueError):
    """A note longer than we keep."""


MAX_NOTE = 2000


def complete_task(org: Organisation, task_id: int, user: User, note: str,
                  now: datetime) -> Task:
    """Mark a task done; the note goes to the activity log with the invoice it is about."""
    task = db.session.scalar(select(Task).where(Task.org_id == org.id, Task.id == task_id))
    if task is None:
        raise LookupError(task_id)
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise TaskNoteTooLong(f"A note may hold at most {MAX_NOTE} characters.")
    if task.status != "done":
        task.status = "done"
        message = f"{task.title}: done by {user.email}" + (f". Note: {note}" if note else "")
        ledger.audit(db.session, org.id, "task_done", message, at=now,
                     invoice_id=task.invoice_id, action_id=task.action_id,
                     data={"task_id": task.id, "note": note})
    db.session.commit()
    return task


@dataclass(frozen=True)
class TimelineItem:
    at: datetime | date
    kind: str  # event | action | payment
    title: str
    detail: str
    status: str = ""


def _sortable(moment: datetime | date) -> tuple[date, str]:
    if isinstance(moment, datetime):
        return moment.date(), moment.isoformat()
    return moment, ""


def provider_reference(action: Action) -> str:
    """What the provider answered, as the owner can look it up in the books."""
    result = action.result or {}
    parts = [f"{k}: {v}" for k, v in sorted(result.items())
             if isinstance(v, str | int) and k not in ("reason",)]
    return ", ".join(parts)


def invoice_timeline(org: Organisation, invoice_id: int
                     ) -> tuple[Invoice, list[TimelineItem], list[Action]]:
    """Everything that happened to one invoice: synced changes and other events, every action
    with its provider reference, and every payment; newest first."""
    session = db.session
    invoice = session.scalar(select(Invoice).where(Invoice.org_id == org.id,
                                                   Invoice.id == invoice_id)
                             .options(selectinload(Invoice.contact)))
    if invoice is None:
        raise LookupError(invoice_id)
    items: list[TimelineItem] = []
    for event in session.scalars(select(AuditEvent).where(
            AuditEvent.org_id == org.id, AuditEvent.invoice_id == invoice.id)):
        items.append(TimelineItem(event.at, "event", event.kind.replace("_", " "),
                                  event.message))
    actions = list(session.scalars(select(Action).where(
        Action.org_id == org.id, Action.invoice_id == invoice.id)
        .order_by(Action.scheduled_for, Action.id)))
    for action in actions:
        items.append(TimelineItem(action.finished_at or action.scheduled_for, "action",
                                  action.kind.replace("_", " "), action.reason or "",
                                  action.status))
    for payment in session.scalars(select(Payment).where(
            Payment.org_id == org.id, Payment.invoice_id == invoice.id)):
        items.append(TimelineItem(payment.paid_on or payment.provider_updated_at or
                                  invoice.issue_date or date.min, "payment", "payment",
                                  f"{payment.amount} {payment.currency or invoice.currency}",
                                  payment.status))
    items.sort(key=lambda i: _sortable(i.at), reverse=True)
    return invoice, items, actions


def overdue_count(org: Organisation, today: date, older_than_days: int) -> int:
    """Open invoices more than `older_than_days` past due that still owe something."""
    return sum(1 for amount in db.session.scalars(select(Invoice.amount_due).where(
        Invoice.org_id == org.id, Invoice.status == "open",
        Invoice.due_date < today - timedelta(days=older_than_days))) if amount > 0)
