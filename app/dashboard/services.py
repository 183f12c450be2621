"""What the dashboard and the invoice page show: aging, DSO, what comes next, tasks, disputes,
and one invoice's whole history. Read-only except marking a task done."""

from __future__ import annotations

import calendar
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from collect import ledger, own_documents
from collect.book import plan_record
from collect.plan import foresee
from rules import PlannedAction
from rules.invoice import PaymentPlan as AgreedPlan
from store.db import db
from store.models import (
    Action,
    AuditEvent,
    Contact,
    Document,
    Invoice,
    Organisation,
    Payment,
    PaymentPlan,
    Task,
    User,
)

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
        .options(selectinload(Action.invoice), selectinload(Action.contact))
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
        ledger.audit(db.session(), org.id, "task_done", message, at=now,
                     invoice_id=task.invoice_id, action_id=task.action_id,
                     data={"task_id": task.id, "note": note, "title": task.title,
                           "by": user.email})
    db.session.commit()
    return task


@dataclass(frozen=True)
class TimelineItem:
    """One thing that happened to an invoice, as its page shows it."""

    at: datetime | date
    kind: str  # event | action | payment
    title: str  # the event's or the action's kind, or "payment"
    detail: str
    status: str = ""
    by: str = ""  # the person who did it (a collector's action), if a person did
    channel: str = ""  # how a message went: provider_email | dunwell_email | sms | note ...
    subject: str = ""  # the message exactly as it went out, where Dunwell wrote it
    text: str = ""
    amount: Decimal | None = None
    currency: str = ""
    period: tuple[date, date] | None = None  # a fee's or interest's period (its basis)
    rule: str = ""  # and the policy's rule that charged it
    documents: tuple[tuple[int, str], ...] = ()  # (document id, file name): letters, cases
    reference: str = ""  # what the provider answered
    event: AuditEvent | None = None  # worded in the reader's language (app/events.py)
    action: Action | None = None


def _sortable(moment: datetime | date) -> tuple[date, str]:
    if isinstance(moment, datetime):
        return moment.date(), moment.isoformat()
    return moment, ""


def provider_reference(action: Action) -> str:
    """What the provider answered, as the owner can look it up in the books."""
    result = action.result or {}
    parts = [f"{k}: {v}" for k, v in sorted(result.items())
             if isinstance(v, str | int) and k not in ("reason", "sms_body")]
    return ", ".join(parts)


def _action_item(action: Action, invoice: Invoice,
                 documents: dict[int, list[tuple[int, str]]]) -> TimelineItem:
    """An action with what went out: the channel it took (a text that fell back to email
    says so), the exact words where Dunwell wrote them (its own email, a text, a letter), a
    fee's amount and basis, the files it made, who asked for it."""
    result, details = action.result or {}, action.details or {}
    channel = action.channel or ""
    if result.get("sms_fallback"):
        channel = "provider_email"
    found = result.get("message")
    message: dict[str, Any] = found if isinstance(found, dict) else {}
    text = str(message.get("text") or result.get("sms_body") or "")
    if action.kind == "one_off_reminder":  # its words are fixed when asked for
        message = message or {"subject": details.get("subject")}
        text = text or str(details.get("text") or "")
    if action.kind == "note":
        channel, text = "note", str(details.get("note") or "")
    period = None
    if details.get("period_start") and details.get("period_end"):
        period = (date.fromisoformat(str(details["period_start"])),
                  date.fromisoformat(str(details["period_end"])))
    return TimelineItem(
        action.finished_at or action.scheduled_for, "action", action.kind,
        action.reason or "", action.status,
        by=str(details.get("sent_now_by") or details.get("by") or ""), channel=channel,
        subject=str(message.get("subject") or ""), text=text,
        amount=action.amount if action.kind in ("fee", "interest", "compensation",
                                                "discount") else None,
        currency=action.currency or invoice.currency, period=period,
        rule=str(details.get("rule_id") or ""),
        documents=tuple(documents.get(action.id, ())), reference=provider_reference(action),
        action=action)


def invoice_timeline(org: Organisation, invoice_id: int
                     ) -> tuple[Invoice, list[TimelineItem], list[Action]]:
    """Everything that happened to one invoice: the activity log (syncs, approvals, promises,
    disputes, pauses, notes, who did what), every action with what went out, and every
    payment; newest first."""
    session = db.session()
    invoice = session.scalar(select(Invoice).where(Invoice.org_id == org.id,
                                                   Invoice.id == invoice_id)
                             .options(selectinload(Invoice.contact)))
    if invoice is None:
        raise LookupError(invoice_id)
    items: list[TimelineItem] = []
    for event in session.scalars(select(AuditEvent).where(
            AuditEvent.org_id == org.id, AuditEvent.invoice_id == invoice.id)):
        items.append(TimelineItem(event.at, "event", event.kind, event.message,
                                  by=str((event.data or {}).get("by") or ""), event=event))
    actions = list(session.scalars(select(Action).where(
        Action.org_id == org.id, Action.invoice_id == invoice.id)
        .order_by(Action.scheduled_for, Action.id)))
    documents: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for document_id, action_id, filename in session.execute(
            select(Document.id, Document.action_id, Document.filename).where(
                Document.org_id == org.id, Document.invoice_id == invoice.id)
            .order_by(Document.id)):
        if action_id is not None:
            documents[action_id].append((document_id, filename))
    items.extend(_action_item(action, invoice, documents) for action in actions)
    for payment in session.scalars(select(Payment).where(
            Payment.org_id == org.id, Payment.invoice_id == invoice.id)):
        items.append(TimelineItem(payment.paid_on or payment.provider_updated_at or
                                  invoice.issue_date or date.min, "payment", "payment",
                                  "", payment.status, amount=payment.amount,
                                  currency=payment.currency or invoice.currency))
    # What the books say, as last synced: when the invoice was issued and last changed there.
    if invoice.issue_date is not None:
        items.append(TimelineItem(invoice.issue_date, "sync", "issued", ""))
    if invoice.provider_updated_at is not None:
        items.append(TimelineItem(invoice.provider_updated_at, "sync", "synced", ""))
    items.sort(key=lambda i: _sortable(i.at), reverse=True)
    return invoice, items, actions


@dataclass(frozen=True)
class NextStep:
    """What the policy will do next for an invoice, and when, if nobody pays."""

    at: datetime
    kind: str
    action: PlannedAction  # worded for the reader by app/events.describe_action
    channel: str


NEXT_DAYS = 120  # how far ahead the invoice page looks for the next step


def next_step(org: Organisation, invoice: Invoice, now: datetime) -> NextStep | None:
    """The first action the run would take, as the preview foresees it (nothing written)."""
    if invoice.status != "open" or invoice.due_date is None:
        return None
    found = foresee(db.session(), org, [invoice], now, NEXT_DAYS)
    if not found:
        return None
    first = found[0]
    return NextStep(first.at, first.action.kind, first.action, first.action.channel or "")


def active_plan(org: Organisation, invoice: Invoice) -> AgreedPlan | None:
    """The invoice's payment plan in force, if any (days and amounts as planning reads them)."""
    row = db.session.scalar(select(PaymentPlan).where(
        PaymentPlan.org_id == org.id, PaymentPlan.invoice_id == invoice.id,
        PaymentPlan.status == "active").order_by(PaymentPlan.id.desc()).limit(1))
    return plan_record(row) if row is not None else None


@dataclass(frozen=True)
class OwnDocuments:
    """What Dunwell made for an invoice, or, for a document Dunwell made, its invoice."""

    attached: list[own_documents.Attached]
    owed_with_them: Decimal  # the invoice's amount due with its open fee invoices'
    belongs_to: Invoice | None  # set when this invoice is a fee invoice Dunwell made


def own_documents_of(org: Organisation, invoice: Invoice) -> OwnDocuments:
    session = db.session()
    attached = own_documents.attached_to(session, org.id, [invoice.id]).get(invoice.id, [])
    owed = invoice.amount_due if invoice.status == "open" else Decimal(0)
    owed += sum((a.owed for a in attached
                 if a.document is not None and a.document.currency == invoice.currency),
                Decimal(0))
    parent_id = own_documents.made_for(session, org.id, [invoice.provider_id]).get(
        invoice.provider_id)
    parent = session.scalar(select(Invoice).where(Invoice.org_id == org.id,
                                                  Invoice.id == parent_id)) \
        if parent_id is not None else None
    return OwnDocuments(attached, owed, parent)


def overdue_count(org: Organisation, today: date, older_than_days: int) -> int:
    """Open invoices more than `older_than_days` past due that still owe something."""
    return sum(1 for amount in db.session.scalars(select(Invoice.amount_due).where(
        Invoice.org_id == org.id, Invoice.status == "open",
        Invoice.due_date < today - timedelta(days=older_than_days))) if amount > 0)


# -- DSO over time -------------------------------------------------------------------------

DSO_MONTHS = 12
SOLD = ("open", "paid")  # drafts, voided and deleted invoices were never credit sales


@dataclass(frozen=True)
class DsoPoint:
    """One month's DSO, as of its last day (the current month: as of today)."""

    month: date  # the first day of the month
    as_of: date
    receivables: Decimal
    credit_sales: Decimal

    @property
    def days(self) -> int | None:
        if self.credit_sales <= 0:
            return None
        return int((self.receivables / self.credit_sales * DSO_DAYS)
                   .quantize(Decimal(1), ROUND_HALF_UP))


def month_ends(today: date, months: int = DSO_MONTHS) -> list[tuple[date, date]]:
    """(first day, as-of day) of the last `months` calendar months, oldest first; the current
    month is read as of today."""
    out = []
    year, month = today.year, today.month
    for _ in range(months):
        last = date(year, month, calendar.monthrange(year, month)[1])
        out.append((date(year, month, 1), min(last, today)))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out[::-1]


def dso_history(org: Organisation, today: date, currency: str,
                months: int = DSO_MONTHS) -> list[DsoPoint]:
    """DSO at each month end: receivables at that day over the credit sales of the 90 days
    up to it, times 90. Receivables are rebuilt from the synced books as they stood that day:
    an invoice issued by then owes its total less the payments dated by then, less what was
    settled otherwise (credit notes, write-offs: total - amount due - payments), which the
    books do not date, so it counts from the invoice's last change at the provider (the
    latest it can have happened; a figure is never lowered before its time)."""
    zone = ZoneInfo(org.timezone)
    invoices = db.session.execute(select(
        Invoice.id, Invoice.issue_date, Invoice.total, Invoice.amount_due,
        Invoice.provider_updated_at).where(
        Invoice.org_id == org.id, Invoice.currency == currency, Invoice.status.in_(SOLD),
        Invoice.issue_date.is_not(None), Invoice.issue_date <= today)).all()
    payments: dict[int, list[tuple[date | None, Decimal]]] = defaultdict(list)
    for invoice_id, paid_on, amount, updated in db.session.execute(select(
            Payment.invoice_id, Payment.paid_on, Payment.amount, Payment.provider_updated_at)
            .join(Invoice, Invoice.id == Payment.invoice_id).where(
            Payment.org_id == org.id, Payment.status == "active",
            Invoice.currency == currency, Invoice.status.in_(SOLD))):
        assert invoice_id is not None  # joined with its invoice
        when = paid_on or (updated.astimezone(zone).date() if updated else None)
        payments[invoice_id].append((when, amount))
    settlements = []  # (invoice's issue day, total, [(day, amount settled)])
    for invoice_id, issued, total, amount_due, updated in invoices:
        assert issued is not None  # selected with an issue date
        settled = list(payments.get(invoice_id, []))
        otherwise = total - amount_due - sum((a for _, a in settled), Decimal(0))
        if otherwise > 0:
            settled.append((updated.astimezone(zone).date() if updated else None, otherwise))
        settlements.append((issued, total, settled))
    points = []
    for first, as_of in month_ends(today, months):
        since = as_of - timedelta(days=DSO_DAYS)
        owed = sold = Decimal(0)
        for issued, total, settled in settlements:
            if issued > as_of:
                continue
            if issued > since:
                sold += total
            # A settlement with no date at all is taken as already made.
            paid = sum((a for when, a in settled if when is None or when <= as_of),
                       Decimal(0))
            owed += max(total - paid, Decimal(0))
        points.append(DsoPoint(first, as_of, owed, sold))
    return points


@dataclass(frozen=True)
class LinePoint:
    point: DsoPoint
    x: int
    y: int | None


@dataclass(frozen=True)
class DsoChart:
    width: int
    height: int
    top: int
    bottom: int
    path: str  # SVG path data; a month without sales breaks the line
    points: list[LinePoint]
    ceiling: int  # the top of the y axis, in days


LINE_STEP, LINE_LEFT, LINE_TOP, LINE_HEIGHT = 56, 48, 20, 140


def dso_chart(points: list[DsoPoint]) -> DsoChart:
    """Coordinates of an inline SVG line chart: y in proportion to the highest DSO, rounded
    up to a multiple of 30 days so the axis reads in months."""
    highest = max((p.days for p in points if p.days is not None), default=0)
    ceiling = max(30, -(-highest // 30) * 30)
    bottom = LINE_TOP + LINE_HEIGHT
    placed, path, pen_down = [], [], False
    for n, point in enumerate(points):
        x = LINE_LEFT + n * LINE_STEP
        if point.days is None:
            placed.append(LinePoint(point, x, None))
            pen_down = False
            continue
        y = bottom - round(point.days * LINE_HEIGHT / ceiling)
        path.append(f"{'L' if pen_down else 'M'}{x} {y}")
        pen_down = True
        placed.append(LinePoint(point, x, y))
    width = LINE_LEFT + max(len(points) - 1, 0) * LINE_STEP + 32
    return DsoChart(width, bottom + 36, LINE_TOP, bottom, " ".join(path), placed, ceiling)


# -- Money collected after a reminder ------------------------------------------------------

ATTRIBUTION_DAYS = 14
COLLECTION_WINDOWS = (30, 90)


@dataclass(frozen=True)
class Collected:
    currency: str
    amount: Decimal
    invoices: int


def collected_after_reminder(org: Organisation, today: date, window_days: int,
                             attribution_days: int = ATTRIBUTION_DAYS) -> list[Collected]:
    """Payments dated in the last `window_days` days (today included) that came on the day a
    reminder for their invoice was sent or within `attribution_days` after it. Each payment
    counts once however many reminders came before it; per currency, with how many invoices
    they paid. Reminder days are read in the organisation's zone, like payment dates."""
    zone = ZoneInfo(org.timezone)
    since = today - timedelta(days=window_days - 1)
    reminded: dict[int, list[date]] = defaultdict(list)
    earliest = datetime.combine(since - timedelta(days=attribution_days + 1), datetime.min.time(),
                                zone)
    for invoice_id, finished in db.session.execute(select(Action.invoice_id, Action.finished_at)
                                                   .where(Action.org_id == org.id,
                                                          Action.kind == "reminder",
                                                          Action.status == "done",
                                                          Action.invoice_id.is_not(None),
                                                          Action.finished_at >= earliest)):
        assert invoice_id is not None and finished is not None  # both compared in the WHERE
        reminded[invoice_id].append(finished.astimezone(zone).date())
    totals: dict[str, Decimal] = defaultdict(Decimal)
    paid: dict[str, set[int]] = defaultdict(set)
    window = timedelta(days=attribution_days)
    for invoice_id, paid_on, amount, currency in db.session.execute(
            select(Payment.invoice_id, Payment.paid_on, Payment.amount,
                   func.coalesce(Payment.currency, Invoice.currency))
            .join(Invoice, Invoice.id == Payment.invoice_id).where(
                Payment.org_id == org.id, Payment.status == "active",
                Payment.paid_on >= since, Payment.paid_on <= today)):
        assert invoice_id is not None and paid_on is not None  # joined; compared in the WHERE
        if any(sent <= paid_on <= sent + window for sent in reminded.get(invoice_id, ())):
            totals[currency] += amount
            paid[currency].add(invoice_id)
    return sorted((Collected(c, totals[c], len(paid[c])) for c in totals),
                  key=lambda row: (row.currency != org.base_currency, row.currency))
