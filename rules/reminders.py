"""The reminder ladder: which step is due for an invoice now, and when the next one is.

The ladder is a ratchet: once a step is in the ledger (in any state), it and every earlier step
are settled. When several steps are due at once (an invoice synced long overdue, or a run that
was down for days), only the latest is sent; the customer gets one reminder, not a burst.
After the last step the policy may repeat (every N days, or on a statement day each month)
until the invoice is paid: repeats are steps numbered on from the ladder, under the same rules.

An invoice already late when it is first chased (at go-live, or first seen late) does not get
the step its lateness reaches: its first message is the policy's first-contact step, and the
ladder's `anchor` moves so the later steps keep their spacing from that contact.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from rules.actions import PlannedAction, reminder_key
from rules.calendar import OrgCalendar
from rules.invoice import InvoiceState
from rules.policy import Policy, ReminderStep, Repeat, first_contact_index

EMAIL_CHANNELS = frozenset({"provider_email", "dunwell_email"})


@lru_cache(maxsize=65536)
def send_moment(calendar: OrgCalendar, business_days_only: bool, day: date,
                send_time: time) -> datetime:
    """When something falling due on a local day is done: that day (or the next business day)
    at the send time."""
    if business_days_only:
        day = calendar.next_business_day(day)
    return calendar.at_local(day, send_time)


def _add_months(day: date, months: int, day_of_month: int) -> date:
    month = day.month - 1 + months
    return date(day.year + month // 12, month % 12 + 1, day_of_month)


def _repeat_day(last: date, repeat: Repeat, r: int) -> date:
    """The local day of repeat r (0-based) after the ladder's last day."""
    if repeat.every_days is not None:
        return last + timedelta(days=(r + 1) * repeat.every_days)
    assert repeat.day_of_month is not None
    first = 0 if last.day < repeat.day_of_month else 1
    return _add_months(last, first + r, repeat.day_of_month)


def step_day(invoice: InvoiceState, policy: Policy, index: int,
             anchor: date | None = None) -> date | None:
    """The local day step `index` falls on (before business-day moves); None: no such step.
    The ladder hangs from `anchor` (the due date, unless a first contact moved it)."""
    steps = policy.reminder_steps
    base = invoice.due_date if anchor is None else anchor
    if index < len(steps):
        return base + timedelta(days=steps[index].offset_days)
    repeat = policy.repeat
    r = index - len(steps)
    if repeat is None or (repeat.max_times is not None and r >= repeat.max_times):
        return None
    return _repeat_day(base + timedelta(days=steps[-1].offset_days), repeat, r)


def step_moment(invoice: InvoiceState, policy: Policy, calendar: OrgCalendar,
                index: int, anchor: date | None = None) -> datetime | None:
    day = step_day(invoice, policy, index, anchor)
    if day is None:
        return None
    return send_moment(calendar, policy.business_days_only, day, policy.send_time)


def scheduled_moment(invoice: InvoiceState, step: ReminderStep, policy: Policy,
                     calendar: OrgCalendar) -> datetime:
    """When a ladder step falls due: its day, moved past weekends and holidays, at send time."""
    day = invoice.due_date + timedelta(days=step.offset_days)
    return send_moment(calendar, policy.business_days_only, day, policy.send_time)


def _channel(policy: Policy, index: int) -> str:
    steps = policy.reminder_steps
    if index < len(steps):
        return steps[index].channel
    assert policy.repeat is not None
    return policy.repeat.channel


def _usable(invoice: InvoiceState, policy: Policy, index: int) -> bool:
    return invoice.has_email or _channel(policy, index) not in EMAIL_CHANNELS


def _latest_repeat_due(invoice: InvoiceState, policy: Policy, calendar: OrgCalendar,
                       now: datetime, lowest: int, anchor: date | None) -> int | None:
    """The highest repeat (>= lowest) whose moment has come, found without walking them all."""
    repeat, steps = policy.repeat, policy.reminder_steps
    assert repeat is not None
    base = invoice.due_date if anchor is None else anchor
    last = base + timedelta(days=steps[-1].offset_days)
    today = calendar.today(now)
    if repeat.every_days is not None:
        r = (today - last).days // repeat.every_days - 1
    else:
        assert repeat.day_of_month is not None
        r = (today.year - last.year) * 12 + today.month - last.month
    if repeat.max_times is not None:
        r = min(r, repeat.max_times - 1)
    n = len(steps)
    while r >= lowest:
        moment = step_moment(invoice, policy, calendar, n + r, anchor)
        if moment is not None and moment <= now:
            return n + r
        r -= 1
    return None


def first_contact(invoice: InvoiceState, policy: Policy, calendar: OrgCalendar,
                  now: datetime) -> PlannedAction | None:
    """The first message of an invoice already late: the first-contact step, now (the caller
    is inside the sending window), in the first contact's tone. `details` says so, for the
    preview and the activity log; the key is the step's own, as for any reminder."""
    steps = policy.reminder_steps
    index = first_contact_index(policy)
    while index < len(steps) and not _usable(invoice, policy, index):
        index += 1
    if index >= len(steps):
        return None
    step = steps[index]
    tone = policy.first_contact.tone
    days = (calendar.today(now) - invoice.due_date).days
    return PlannedAction(
        key=reminder_key(invoice.org_id, invoice.invoice_id, index), kind="reminder",
        invoice_id=invoice.invoice_id, org_id=invoice.org_id, scheduled_for=now,
        reason=(f"First contact, reminder {index + 1} of {len(steps)} ({step.channel}, {tone}):"
                f" {invoice.number} {days} day{'' if days == 1 else 's'} overdue"),
        amount=invoice.amount_due, currency=invoice.currency, step_index=index,
        step_count=len(steps), template=step.template, channel=step.channel, tone=tone,
        details={"first_contact": True, "why": standing(days)})


def contact_anchor(invoice: InvoiceState, policy: Policy, calendar: OrgCalendar,
                   first: tuple[int, datetime | None] | None) -> date | None:
    """Where the ladder hangs from, given the invoice's first reminder (its step and when it
    was planned): the due date (None) for a step planned on the ladder, else the day of that
    first contact less its step's offset, so the next steps keep the ladder's spacing."""
    if first is None or first[1] is None or first[0] >= len(policy.reminder_steps):
        return None
    index, at = first
    ladder = step_moment(invoice, policy, calendar, index)
    assert ladder is not None and at is not None
    day = calendar.today(at)
    if day == calendar.today(ladder):
        return None
    return day - timedelta(days=policy.reminder_steps[index].offset_days)


def due_reminder(invoice: InvoiceState, first_open: int, policy: Policy,
                 calendar: OrgCalendar, now: datetime,
                 anchor: date | None = None) -> PlannedAction | None:
    """The latest step whose moment has come (earlier open ones are superseded), if any. For
    an invoice nothing was sent for whose lateness reaches the first-contact step or beyond,
    the first contact instead (a day or two late it is simply the step due: a missed day)."""
    steps = policy.reminder_steps
    best: int | None = None
    index = first_open
    while index < len(steps):
        moment = step_moment(invoice, policy, calendar, index, anchor)
        assert moment is not None
        if moment > now:
            break
        if _usable(invoice, policy, index):
            best = index
        index += 1
    else:
        if policy.repeat is not None and _usable(invoice, policy, len(steps)):
            found = _latest_repeat_due(invoice, policy, calendar, now,
                                       max(first_open, len(steps)) - len(steps), anchor)
            if found is not None:
                best = found
    if best is None:
        return None
    if first_open == 0 and best >= first_contact_index(policy) \
            and calendar.today(now) > invoice.due_date:
        contact = first_contact(invoice, policy, calendar, now)
        if contact is not None:  # else no ladder step can reach the contact: the repeat goes
            return contact
    moment = step_moment(invoice, policy, calendar, best, anchor)
    assert moment is not None
    return _step_action(invoice, policy, calendar, best, moment, now)


def standing(days_overdue: int) -> dict[str, Any]:
    """Why a reminder goes, as a code and its count for a page to word in the reader's
    language (`details["why"]`; `reason` says the same in English): due in some days, due
    today, or some days overdue."""
    code = "due_today" if days_overdue == 0 else "due_in" if days_overdue < 0 else "overdue"
    return {"code": code, "days": abs(days_overdue)}


def _step_action(invoice: InvoiceState, policy: Policy, calendar: OrgCalendar, index: int,
                 moment: datetime, now: datetime, *, by: str | None = None) -> PlannedAction:
    """Step `index` of the ladder (or a repeat beyond it) as the ledger takes it."""
    steps = policy.reminder_steps
    if index < len(steps):
        step = steps[index]
        template, channel, tone = step.template, step.channel, step.tone
        label = f"Reminder {index + 1} of {len(steps)}"
    else:
        assert policy.repeat is not None
        template, channel, tone = (policy.repeat.template, policy.repeat.channel,
                                   policy.repeat.tone)
        label = f"Repeat reminder {index - len(steps) + 1}"
    days = (calendar.today(now) - invoice.due_date).days
    plural = "" if abs(days) == 1 else "s"
    when = ("due today" if days == 0 else f"due in {-days} day{plural}" if days < 0
            else f"{days} day{plural} overdue")
    return PlannedAction(
        key=reminder_key(invoice.org_id, invoice.invoice_id, index), kind="reminder",
        invoice_id=invoice.invoice_id, org_id=invoice.org_id, scheduled_for=moment,
        reason=f"{label} ({channel}, {tone}): {invoice.number} {when}"
               + (f"; sent now at the request of {by}" if by else ""),
        amount=invoice.amount_due, currency=invoice.currency, step_index=index,
        step_count=len(steps), template=template, channel=channel, tone=tone,
        details={"why": standing(days), **({"sent_now_by": by} if by else {})})


def step_now(invoice: InvoiceState, first_open: int, policy: Policy, calendar: OrgCalendar,
             now: datetime, by: str) -> PlannedAction | None:
    """The ladder's next open step the customer can be reached by, planned for now at a
    collector's request (`by`); None when the ladder has nothing left. Later steps keep their
    spacing from it (contact_anchor reads when it was planned)."""
    index, limit = first_open, len(policy.reminder_steps) + 1
    while index < max(limit, first_open + 1):
        if step_day(invoice, policy, index) is None:
            return None
        if _usable(invoice, policy, index):
            return _step_action(invoice, policy, calendar, index, now, now, by=by)
        index += 1
    return None


def next_reminder_moment(invoice: InvoiceState, first_open: int, policy: Policy,
                         calendar: OrgCalendar, anchor: date | None = None) -> datetime | None:
    """The moment of the first open step this invoice can take, if any."""
    index, limit = first_open, len(policy.reminder_steps) + 1
    while index < max(limit, first_open + 1):
        if step_day(invoice, policy, index, anchor) is None:
            return None
        if _usable(invoice, policy, index):
            return step_moment(invoice, policy, calendar, index, anchor)
        index += 1
    return None
