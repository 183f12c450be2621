"""Agreeing a payment plan with a customer: validated here, planned by rules/plans.py."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from collect import ledger
from collect.book import calendar_for
from collect.plan import refresh_next_action
from rules.statutory import round_money
from store.models import Invoice, Organisation, PaymentPlan


class PlanRefused(ValueError):
    """A plan that cannot be agreed; the message says why, for the owner."""


def agree_payment_plan(session: Session, org: Organisation, invoice: Invoice,
                       instalments: list[tuple[date, Decimal]], now: datetime) -> PaymentPlan:
    """Replace any active plan of the invoice with this one; the caller commits."""
    if invoice.org_id != org.id:
        raise PlanRefused("the invoice is not this organisation's")
    if invoice.status != "open" or invoice.amount_due <= 0:
        raise PlanRefused(f"{invoice.number} has nothing left to pay")
    if not 1 <= len(instalments) <= 60:
        raise PlanRefused("a plan has 1 to 60 instalments")
    today = calendar_for(org).today(now)
    days = [day for day, _ in instalments]
    if days != sorted(set(days)):
        raise PlanRefused("instalment dates must be different and in order")
    if days[0] < today:
        raise PlanRefused(f"the first instalment ({days[0]}) is before today ({today})")
    for day, amount in instalments:
        if amount <= 0 or round_money(amount, invoice.currency) != amount:
            raise PlanRefused(f"the instalment of {day} must be a positive amount in"
                              f" {invoice.currency}, not {amount}")
    total = sum((amount for _, amount in instalments), Decimal(0))
    if total != invoice.amount_due:
        raise PlanRefused(f"the instalments add up to {total}, but {invoice.number} has"
                          f" {invoice.amount_due} {invoice.currency} to pay")
    for old in session.scalars(select(PaymentPlan).where(
            PaymentPlan.invoice_id == invoice.id, PaymentPlan.status == "active")):
        old.status = "cancelled"
    plan = PaymentPlan(org_id=org.id, invoice_id=invoice.id,
                       paid_before=invoice.total - invoice.amount_due, created_at=now,
                       instalments=[{"due_date": d.isoformat(), "amount": str(a)}
                                    for d, a in instalments])
    session.add(plan)
    session.flush()
    ledger.audit(session, org.id, "payment_plan",
                 f"Payment plan for {invoice.number}: {len(instalments)} instalments from"
                 f" {days[0]} to {days[-1]}; late fees wait while it is kept", at=now,
                 invoice_id=invoice.id)
    refresh_next_action(session, org, now, [invoice.id])
    return plan
