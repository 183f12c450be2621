"""Promises to pay (made in the customer's portal): nothing is chased until the promised day;
a promise not kept by then is broken, and followed up once, in the firm tone, by the channel of
the ladder's first step the customer can be reached by.

A promise is kept when the invoice has been paid in full, or when the payments since it was
made reach the promised amount by the end of its day.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from rules.actions import PlannedAction, action_key
from rules.calendar import OrgCalendar
from rules.invoice import InvoiceState, Promise
from rules.policy import Policy
from rules.reminders import EMAIL_CHANNELS, send_moment

FOLLOW_UP_TONE = "firm"


def promise_kept(paid_since: Decimal, promised: Decimal, amount_due: Decimal) -> bool:
    """Paid in full, or at least what was promised since the promise was made."""
    return amount_due <= 0 or paid_since >= promised


def promise_broken(pay_by: date, kept: bool, today: date) -> bool:
    return not kept and today > pay_by


def waiting(invoice: InvoiceState, today: date) -> bool:
    """Whether chasing waits for the customer's promised day."""
    promise = invoice.promise
    return promise is not None and not promise.kept and today <= promise.pay_by


def follow_up_key(invoice: InvoiceState, promise: Promise) -> str:
    return action_key(invoice.org_id, invoice.invoice_id, f"promise{promise.promise_id}",
                      "follow_up")


def resume_moment(invoice: InvoiceState, policy: Policy, calendar: OrgCalendar) -> datetime:
    """The day after the promised one, at the send time: when chasing may start again."""
    assert invoice.promise is not None
    return send_moment(calendar, policy.business_days_only,
                       invoice.promise.pay_by + timedelta(days=1), policy.send_time)


def due_follow_up(invoice: InvoiceState, keys: frozenset[str] | set[str], policy: Policy,
                  calendar: OrgCalendar, now: datetime) -> PlannedAction | None:
    """The broken promise's own reminder, once, if the customer can be reached."""
    promise = invoice.promise
    if promise is None or promise.kept or not promise_broken(promise.pay_by, False,
                                                             calendar.today(now)):
        return None
    key = follow_up_key(invoice, promise)
    if key in keys:
        return None
    channels = [step.channel for step in policy.reminder_steps
                if invoice.has_email or step.channel not in EMAIL_CHANNELS]
    if not channels:
        return None
    return PlannedAction(
        key=key, kind="reminder", invoice_id=invoice.invoice_id, org_id=invoice.org_id,
        scheduled_for=now, reason=(f"Promise broken: {invoice.number} was promised to be paid"
                                   f" by {promise.pay_by}"),
        amount=invoice.amount_due, currency=invoice.currency, template=FOLLOW_UP_TONE,
        channel=channels[0], tone=FOLLOW_UP_TONE,
        details={"promise_id": promise.promise_id, "broken_promise": True,
                 "why": {"code": "promise_broken", "pay_by": promise.pay_by.isoformat()}})
