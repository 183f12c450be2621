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
from store.models import Invoice, Organisation, PaymentPlan, User


class PlanRefused(ValueError):
    """A plan that cannot be agreed; the message says why, for the owner, and `code` (with
    `params`) for a page that words it in the reader's language."""

    def __init__(self, message: str, code: str = "plan_refused", **params: object) -> None:
        super().__init__(message)
        self.code, self.params = code, params


def agree_payment_plan(session: Session, org: Organisation, invoice: Invoice,
                       instalments: list[tuple[date, Decimal]], now: datetime,
                       by: User | None = None) -> PaymentPlan:
    """Replace any active plan of the invoice with this one; the caller commits. `by`: the
    person who agreed it, in the activity log (none from the command line)."""
    if invoice.org_id != org.id:
        raise PlanRefused("the invoice is not this organisation's", "not_open")
    if invoice.status != "open" or invoice.amount_due <= 0:
        raise PlanRefused(f"{invoice.number} has nothing left to pay", "not_open")
    if not 1 <= len(instalments) <= 60:
        raise PlanRefused("a plan has 1 to 60 instalments", "plan_count", most=60)
    today = calendar_for(org).today(now)
    days = [day for day, _ in instalments]
    if days != sorted(set(days)):
        raise PlanRefused("instalment dates must be different and in order", "plan_order")
    if days[0] < today:
        raise PlanRefused(f"the first instalment ({days[0]}) is before today ({today})",
                          "plan_past")
    for day, amount in instalments:
        if amount <= 0 or round_money(amount, invoice.currency) != amount:
            raise PlanRefused(f"the instalment of {day} must be a positive amount in"
                              f" {invoice.currency}, not {amount}", "plan_amount", day=day)
    total = sum((amount for _, amount in instalments), Decimal(0))
    if total != invoice.amount_due:
        raise PlanRefused(f"the instalments add up to {total}, but {invoice.number} has"
                          f" {invoice.amount_due} {invoice.currency} to pay", "plan_sum",
                          total=total, due=invoice.amount_due)
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
                 f" {days[0]} to {days[-1]}; late fees wait while it is kept"
                 + (f"; agreed by {by.email}" if by is not None else ""), at=now,
                 invoice_id=invoice.id,
                 data={"number": invoice.number, "instalments": len(instalments),
                       "first": days[0].isoformat(), "last": days[-1].isoformat(),
                       "plan_id": plan.id,
                       **({"by": by.email, "user_id": by.id} if by is not None else {})})
    refresh_next_action(session, org, now, [invoice.id])
    return plan
