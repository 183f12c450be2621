"""Early-payment discounts: X % off when paid within N days of issue (2/10 net 30).

Strict to the day: payments dated on or before issue date + N count, later ones do not. The
discount is realised once the customer has paid everything but it: the invoice is then left
with a balance no larger than the discount, and a credit note (or discount line) for exactly
that balance closes it. A customer who paid in full anyway gets nothing back automatically.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from rules.actions import PlannedAction, action_key
from rules.calendar import OrgCalendar
from rules.invoice import ZERO, InvoiceState
from rules.policy import EarlyPaymentDiscount, Policy
from rules.reminders import send_moment
from rules.statutory import format_money, round_money


def discount_key(invoice: InvoiceState) -> str:
    return action_key(invoice.org_id, invoice.invoice_id, "discount")


def due_discount(invoice: InvoiceState, offer: EarlyPaymentDiscount, policy: Policy,
                 calendar: OrgCalendar, now: datetime) -> PlannedAction | None:
    """The discount to realise now, if the payments in time leave only the discount unpaid."""
    if invoice.issue_date is None or invoice.amount_due <= 0:
        return None
    last_day = invoice.issue_date + timedelta(days=offer.within_days)
    in_time = [(when, amount) for when, amount in invoice.payments if when <= last_day]
    if not in_time:
        return None
    principal = invoice.principal
    discount = round_money(principal * offer.percent / 100, invoice.currency)
    paid_in_time = sum((amount for _, amount in in_time), ZERO)
    if principal - paid_in_time > discount or invoice.amount_due > discount:
        return None
    moment = send_moment(calendar, policy.business_days_only, max(w for w, _ in in_time),
                         policy.send_time)
    if moment > now:
        return None
    amount = invoice.amount_due
    percent = f"{offer.percent.normalize():f}"
    return PlannedAction(
        key=discount_key(invoice), kind="discount", invoice_id=invoice.invoice_id,
        org_id=invoice.org_id, scheduled_for=moment, amount=amount, currency=invoice.currency,
        reason=(f"Early-payment discount {percent} % on {invoice.number}: paid"
                f" {format_money(paid_in_time, invoice.currency)} of"
                f" {format_money(principal, invoice.currency)} by {last_day}"
                f" ({offer.within_days} days after issue); crediting"
                f" {format_money(amount, invoice.currency)}"),
        details={"realise_as": offer.realise_as, "percent": percent,
                 "account_code": offer.account_code, "item": offer.item,
                 "tax_rate": offer.tax_rate})
