"""Reminder planning: which step of the ladder is due for an invoice now, and when the next is.

Pure functions of (invoice, history, policy, calendar, now). `next_action_at` is stored per
invoice and indexed; `evaluate` is empty for every moment before it, so the daily run only
needs to look at invoices whose moment has come.

The ladder is a ratchet: once a step is in the ledger (in any state), it and every earlier step
are settled. When several steps are due at once (an invoice synced long overdue, or a run that
was down for days), only the latest is sent; the customer gets one reminder, not a burst.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Literal

from rules.calendar import OrgCalendar, require_aware
from rules.policy import Policy, ReminderStep

InvoiceStatus = Literal["draft", "open", "paid", "voided", "deleted"]
Window = tuple[datetime, datetime]
# Safety stop for the search of a sending window; any real calendar has one within a week or two.
LOOKAHEAD_DAYS = 60


@dataclass(frozen=True)
class InvoiceState:
    """What the planner needs to know about one invoice, as the database holds it."""

    invoice_id: int
    org_id: int
    number: str
    status: InvoiceStatus  # "open" = approved and not fully paid
    due_date: date  # calendar date in the organisation's zone
    amount_due: Decimal
    currency: str
    has_email: bool = True  # the contact can receive the provider's email


@dataclass(frozen=True)
class PastAction:
    """A ledger entry for the invoice, in any state: planned, done, skipped, failed..."""

    key: str
    status: str


@dataclass(frozen=True)
class PlannedAction:
    """An action to write to the ledger; its key makes planning it twice a no-op."""

    key: str
    kind: Literal["reminder"]
    invoice_id: int
    org_id: int
    step_index: int  # 0-based index into policy.reminder_steps
    step_count: int
    template: str
    channel: str
    scheduled_for: datetime  # aware UTC: when this step became (or becomes) due


def reminder_key(org_id: int, invoice_id: int, step_index: int) -> str:
    """Stable forever: the ledger's uniqueness and the provider's idempotency key rest on it."""
    return f"{org_id}:{invoice_id}:reminder:{step_index}"


@lru_cache(maxsize=65536)
def _send_moment(calendar: OrgCalendar, business_days_only: bool, day: date,
                 send_time: time) -> datetime:
    if business_days_only:
        day = calendar.next_business_day(day)
    return calendar.at_local(day, send_time)


def scheduled_moment(invoice: InvoiceState, step: ReminderStep, policy: Policy,
                     calendar: OrgCalendar) -> datetime:
    """When a step falls due: its day, moved past weekends and holidays, at the send time."""
    day = invoice.due_date + timedelta(days=step.offset_days)
    return _send_moment(calendar, policy.business_days_only, day, policy.send_time)


@lru_cache(maxsize=65536)
def _window(calendar: OrgCalendar, business_days_only: bool, day: date, send_time: time,
            hours: int) -> Window | None:
    """Sending hours of a local day, as wall times: [send_time, send_time + hours)."""
    if business_days_only and not calendar.is_business_day(day):
        return None
    start = datetime.combine(day, send_time)
    end = start + timedelta(hours=hours)  # by the policy's rule, at most midnight
    return (calendar.at_local(day, send_time),
            calendar.at_local(end.date(), end.time()))


def _window_of(day: date, policy: Policy, calendar: OrgCalendar) -> Window | None:
    return _window(calendar, policy.business_days_only, day, policy.send_time,
                   policy.send_window_hours)


def _sendable(now: datetime, policy: Policy, calendar: OrgCalendar) -> bool:
    window = _window_of(calendar.today(now), policy, calendar)
    return window is not None and window[0] <= now < window[1]


def _eligible(invoice: InvoiceState, policy: Policy) -> bool:
    return (invoice.status == "open" and invoice.has_email and invoice.amount_due > 0
            and invoice.amount_due >= policy.min_amount_due)


def _first_open_step(invoice: InvoiceState, history: Sequence[PastAction],
                     policy: Policy) -> int:
    """Steps at or before the latest one in the ledger are done or superseded."""
    if not history:
        return 0
    keys = {past.key for past in history}
    for index in range(len(policy.reminder_steps) - 1, -1, -1):
        if reminder_key(invoice.org_id, invoice.invoice_id, index) in keys:
            return index + 1
    return 0


def evaluate(invoice: InvoiceState, history: Sequence[PastAction], policy: Policy,
             calendar: OrgCalendar, now: datetime) -> list[PlannedAction]:
    """The action to run now, if any: only the latest due step (earlier ones are superseded)."""
    require_aware(now)
    if not _eligible(invoice, policy) or not _sendable(now, policy, calendar):
        return []
    steps = policy.reminder_steps
    due: tuple[int, datetime] | None = None
    # Offsets strictly increase, so moments never decrease: stop at the first one still ahead.
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
    """The first moment at or after `now` when evaluate() would return an action, if nothing
    changes; None when nothing is left to send. Stored and indexed to pick the day's work."""
    require_aware(now)
    if not _eligible(invoice, policy):
        return None
    first = _first_open_step(invoice, history, policy)
    if first >= len(policy.reminder_steps):
        return None
    # evaluate() is non-empty exactly when the first open step's moment has passed and `now`
    # is inside a window: so, the earliest sendable moment at or after that.
    moment = max(scheduled_moment(invoice, policy.reminder_steps[first], policy, calendar), now)
    day = calendar.today(moment)
    for _ in range(LOOKAHEAD_DAYS):
        window = _window_of(day, policy, calendar)
        if window is not None and max(moment, window[0]) < window[1]:
            return max(moment, window[0])
        day += timedelta(days=1)
    return None
