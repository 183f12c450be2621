"""Reminder planning: which step of the ladder is due for an invoice, and when the next is.

Pure functions of (invoice, history, policy, calendar, now). `next_action_at` is stored per
invoice and indexed; `evaluate` is empty for every moment before it, so the daily run only
needs to look at invoices whose moment has come.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Literal

from rules.calendar import OrgCalendar
from rules.policy import Policy, ReminderStep

InvoiceStatus = Literal["draft", "open", "paid", "voided", "deleted"]


@dataclass(frozen=True)
class InvoiceState:
    invoice_id: int
    org_id: int
    number: str
    status: InvoiceStatus
    due_date: date
    amount_due: Decimal
    currency: str
    has_email: bool = True


@dataclass(frozen=True)
class PastAction:
    key: str
    status: str


@dataclass(frozen=True)
class PlannedAction:
    key: str
    kind: Literal["reminder"]
    invoice_id: int
    org_id: int
    step_index: int
    step_count: int
    template: str
    channel: str
    scheduled_for: datetime


def reminder_key(org_id: int, invoice_id: int, step_index: int) -> str:
    return f"{org_id}:{invoice_id}:reminder:{step_index}"


def scheduled_moment(invoice: InvoiceState, step: ReminderStep, policy: Policy,
                     calendar: OrgCalendar) -> datetime:
    day = invoice.due_date + timedelta(days=step.offset_days)
    if policy.business_days_only:
        day = calendar.next_business_day(day)
    return calendar.at_local(day, policy.send_time)


def _eligible(invoice: InvoiceState, policy: Policy) -> bool:
    return (invoice.status == "open" and invoice.has_email
            and invoice.amount_due >= policy.min_amount_due and invoice.amount_due > 0)


def _first_open_step(invoice: InvoiceState, history: Sequence[PastAction],
                     policy: Policy) -> int:
    """Steps at or before the last one in the ledger are done or superseded."""
    keys = {past.key for past in history}
    last = -1
    for index in range(len(policy.reminder_steps)):
        if reminder_key(invoice.org_id, invoice.invoice_id, index) in keys:
            last = index
    return last + 1


def _window(day: date, policy: Policy, calendar: OrgCalendar) -> tuple[datetime, datetime]:
    start = calendar.at_local(day, policy.send_time)
    return start, start + timedelta(hours=policy.send_window_hours)


def _sendable(now: datetime, policy: Policy, calendar: OrgCalendar) -> bool:
    today = calendar.today(now)
    if policy.business_days_only and not calendar.is_business_day(today):
        return False
    start, end = _window(today, policy, calendar)
    return start <= now < end


def evaluate(invoice: InvoiceState, history: Sequence[PastAction], policy: Policy,
             calendar: OrgCalendar, now: datetime) -> list[PlannedAction]:
    """The action to run now, if any: only the latest due step (earlier ones are superseded)."""
    if not _eligible(invoice, policy) or not _sendable(now, policy, calendar):
        return []
    steps = policy.reminder_steps
    due = None
    for index in range(_first_open_step(invoice, history, policy), len(steps)):
        moment = scheduled_moment(invoice, steps[index], policy, calendar)
        if moment > now:
            break
        due = (index, moment)
    if due is None:
        return []
    index, moment = due
    return [PlannedAction(
        key=reminder_key(invoice.org_id, invoice.invoice_id, index), kind="reminder",
        invoice_id=invoice.invoice_id, org_id=invoice.org_id, step_index=index,
        step_count=len(steps), template=steps[index].template, channel=steps[index].channel,
        scheduled_for=moment,
    )]


def next_action_at(invoice: InvoiceState, history: Sequence[PastAction], policy: Policy,
                   calendar: OrgCalendar, now: datetime) -> datetime | None:
    """The first moment at or after `now` when evaluate() would return an action."""
    if not _eligible(invoice, policy):
        return None
    first = _first_open_step(invoice, history, policy)
    if first >= len(policy.reminder_steps):
        return None
    moment = max(scheduled_moment(invoice, policy.reminder_steps[first], policy, calendar), now)
    day = calendar.today(moment)
    for _ in range(60):
        if not policy.business_days_only or calendar.is_business_day(day):
            start, end = _window(day, policy, calendar)
            if moment < end:
                return max(moment, start)
        day += timedelta(days=1)
    return None
