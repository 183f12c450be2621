"""Escalation after N days overdue: a phone call, a stop-service flag, a final demand letter,
and a case for a collections agency. Each happens once per invoice, in that order of severity;
an agency case waits until the final demand (when the policy has one) has gone out."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache

from rules.actions import ActionKind, PlannedAction, action_key
from rules.calendar import OrgCalendar
from rules.invoice import InvoiceState
from rules.policy import Escalation, Policy
from rules.reminders import send_moment
from rules.statutory import format_money

KINDS: tuple[ActionKind, ...] = ("call_task", "stop_service", "demand_letter", "agency_case")


def escalation_key(invoice: InvoiceState, kind: str) -> str:
    return action_key(invoice.org_id, invoice.invoice_id, kind)


def _steps(policy: Policy) -> list[tuple[ActionKind, int, dict[str, object]]]:
    return _steps_of(policy.escalation)


@lru_cache(maxsize=64)
def _steps_of(e: Escalation) -> list[tuple[ActionKind, int, dict[str, object]]]:
    """The policy's escalation steps, read once per policy (planning asks for every invoice)."""
    steps: list[tuple[ActionKind, int, dict[str, object]]] = []
    if e.call_task is not None:
        steps.append(("call_task", e.call_task.after_days, {"assignee": e.call_task.assignee}))
    if e.stop_service is not None:
        url = e.stop_service.webhook_url
        steps.append(("stop_service", e.stop_service.after_days,
                      {"webhook_url": None if url is None else str(url)}))
    if e.demand_letter is not None:
        steps.append(("demand_letter", e.demand_letter.after_days,
                      {"pay_within_days": e.demand_letter.pay_within_days}))
    if e.agency_case is not None:
        steps.append(("agency_case", e.agency_case.after_days, {}))
    return steps


def _moment(due_date: date, policy: Policy, calendar: OrgCalendar, after_days: int) -> datetime:
    return send_moment(calendar, policy.business_days_only,
                       due_date + timedelta(days=after_days), policy.send_time)


def _waiting_for_letter(invoice: InvoiceState, kind: str, policy: Policy,
                        done: set[str]) -> bool:
    return (kind == "agency_case" and policy.escalation.demand_letter is not None
            and escalation_key(invoice, "demand_letter") not in done)


def due_escalations(invoice: InvoiceState, settled: set[str], done: set[str], policy: Policy,
                    calendar: OrgCalendar, now: datetime,
                    due_date: date | None = None) -> list[PlannedAction]:
    """`due_date`: the day the steps count from, when not the invoice's (the ladder's anchor
    after a first contact)."""
    actions = []
    counted_from = invoice.due_date if due_date is None else due_date
    for kind, after_days, details in _steps(policy):
        key = escalation_key(invoice, kind)
        moment = _moment(counted_from, policy, calendar, after_days)
        if key in settled or moment > now or _waiting_for_letter(invoice, kind, policy, done):
            continue
        money = format_money(invoice.amount_due, invoice.currency)
        actions.append(PlannedAction(
            key=key, kind=kind, invoice_id=invoice.invoice_id, org_id=invoice.org_id,
            scheduled_for=moment, amount=invoice.amount_due, currency=invoice.currency,
            reason=(f"{kind.replace('_', ' ').capitalize()}: {invoice.number} is"
                    f" {after_days}+ days overdue with {money} unpaid"),
            # The same, as a code and its figures, for a page in the reader's language.
            details={**details, "why": {"code": "overdue_unpaid", "days": after_days,
                                        "amount": str(invoice.amount_due),
                                        "currency": invoice.currency}}))
    return actions


def next_escalation_moment(invoice: InvoiceState, settled: set[str], done: set[str],
                           policy: Policy, calendar: OrgCalendar,
                           due_date: date | None = None) -> datetime | None:
    """`due_date` as for due_escalations."""
    steps = _steps(policy)
    counted_from = invoice.due_date if due_date is None else due_date
    if not settled:  # nothing in the ledger yet: the earliest step, without building keys
        letter_first = policy.escalation.demand_letter is not None
        days = [d for kind, d, _ in steps if not (kind == "agency_case" and letter_first)]
        return _moment(counted_from, policy, calendar, min(days)) if days else None
    moments = [_moment(counted_from, policy, calendar, after_days)
               for kind, after_days, _ in steps
               if escalation_key(invoice, kind) not in settled
               and not _waiting_for_letter(invoice, kind, policy, done)]
    return min(moments, default=None)
