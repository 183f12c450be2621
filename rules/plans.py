"""Payment plans: is the plan kept, which instalment is next, and which reminder is due for it.

Payments above what was paid when the plan was agreed count towards the instalments in date
order. An instalment is missed when, at the end of its due date plus the policy's grace, the
payments by then fall short of every instalment up to it: the plan is then broken from that
instalment's due date, and late fees resume from there (rules/engine.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from rules.actions import PlannedAction, action_key
from rules.calendar import OrgCalendar
from rules.invoice import ZERO, Instalment, InvoiceState, PaymentPlan
from rules.policy import Policy
from rules.reminders import EMAIL_CHANNELS, send_moment


@dataclass(frozen=True, slots=True)
class PlanState:
    kept: bool
    missed: Instalment | None  # the first missed instalment, when broken
    covered: int  # how many instalments payments cover in full, today


def _paid_by(invoice: InvoiceState, plan: PaymentPlan, day: date | None) -> Decimal:
    paid = sum((amount for when, amount in invoice.payments if day is None or when <= day),
               ZERO)
    return max(paid - plan.paid_before, ZERO)


def plan_state(invoice: InvoiceState, plan: PaymentPlan, grace_days: int,
               today: date) -> PlanState:
    scheduled = ZERO
    missed = None
    for instalment in plan.instalments:
        scheduled += instalment.amount
        last_day = instalment.due_date + timedelta(days=grace_days)
        if last_day >= today:
            break
        if _paid_by(invoice, plan, last_day) < scheduled:
            missed = instalment
            break
    paid_now = _paid_by(invoice, plan, None)
    covered, running = 0, ZERO
    for instalment in plan.instalments:
        running += instalment.amount
        if running > paid_now:
            break
        covered += 1
    return PlanState(kept=missed is None, missed=missed, covered=covered)


def instalment_key(invoice: InvoiceState, plan: PaymentPlan, number: int, offset: int) -> str:
    return action_key(invoice.org_id, invoice.invoice_id, f"plan{plan.plan_id}", number, offset)


def _moment(policy: Policy, calendar: OrgCalendar, instalment: Instalment,
            offset: int) -> datetime:
    return send_moment(calendar, policy.business_days_only,
                       instalment.due_date + timedelta(days=offset), policy.send_time)


def due_instalment_reminder(invoice: InvoiceState, plan: PaymentPlan, state: PlanState,
                            settled: set[str], policy: Policy, calendar: OrgCalendar,
                            now: datetime) -> PlannedAction | None:
    """For the first instalment not yet paid: the latest reminder offset that has come."""
    rules = policy.payment_plans
    if state.covered >= len(plan.instalments) or not rules.offsets:
        return None
    if rules.channel in EMAIL_CHANNELS and not invoice.has_email:
        return None
    number = state.covered
    instalment = plan.instalments[number]
    best = None
    for j in range(len(rules.offsets) - 1, -1, -1):
        if instalment_key(invoice, plan, number, j) in settled:
            break  # this offset already went: it and the earlier ones are settled
        if best is None and _moment(policy, calendar, instalment, rules.offsets[j]) <= now:
            best = j
    if best is None:
        return None
    return PlannedAction(
        key=instalment_key(invoice, plan, number, best), kind="plan_instalment",
        invoice_id=invoice.invoice_id, org_id=invoice.org_id,
        scheduled_for=_moment(policy, calendar, instalment, rules.offsets[best]),
        reason=(f"Instalment {number + 1} of {len(plan.instalments)} of the payment plan for"
                f" {invoice.number}: {instalment.amount} {invoice.currency} due"
                f" {instalment.due_date}"),
        amount=instalment.amount, currency=invoice.currency, step_index=best,
        step_count=len(rules.offsets), template=rules.template, channel=rules.channel,
        tone=rules.tone,
        details={"plan_id": plan.plan_id, "instalment": number + 1,
                 "instalments": len(plan.instalments),
                 "instalment_due": instalment.due_date.isoformat()})


def next_instalment_moment(invoice: InvoiceState, plan: PaymentPlan, state: PlanState,
                           settled: set[str], policy: Policy,
                           calendar: OrgCalendar) -> datetime | None:
    rules = policy.payment_plans
    if state.covered >= len(plan.instalments) or not rules.offsets:
        return None
    if rules.channel in EMAIL_CHANNELS and not invoice.has_email:
        return None
    number = state.covered
    instalment = plan.instalments[number]
    first = 0
    for j in range(len(rules.offsets) - 1, -1, -1):
        if instalment_key(invoice, plan, number, j) in settled:
            first = j + 1
            break
    if first >= len(rules.offsets):
        return None
    return _moment(policy, calendar, instalment, rules.offsets[first])


def plan_break_moment(invoice: InvoiceState, plan: PaymentPlan, policy: Policy,
                      calendar: OrgCalendar) -> datetime | None:
    """When the plan, kept today, counts as broken if no more is paid: the day after the grace
    of the first instalment the payments known now, by their dates, do not cover (a payment
    dated ahead covers only from its date). The planner looks again then."""
    grace = policy.payment_plans.grace_days
    scheduled = ZERO
    for instalment in plan.instalments:
        scheduled += instalment.amount
        last_day = instalment.due_date + timedelta(days=grace)
        if _paid_by(invoice, plan, last_day) < scheduled:
            return send_moment(calendar, policy.business_days_only,
                               last_day + timedelta(days=1), policy.send_time)
    return None
