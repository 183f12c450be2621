"""Where actions are planned: the database side of rules.evaluate.

Only invoices whose stored next_action_at has come are read, so the daily cost follows the
work due, not the size of the book. Each invoice is handed to rules/ with its payments, its
payment plan and its contact's settings; the policy in force is the organisation's with the
contact's overrides.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from collect import credit_requests, ledger, portal
from collect.book import BATCH, Book, calendar_for, planning_policy
from rules import (
    NextActionPlanner,
    OrgCalendar,
    PastAction,
    PlannedAction,
    Policy,
    evaluate,
    next_action_at,
)
from store.models import Action, AuditEvent, Invoice, Organisation

log = logging.getLogger(__name__)


def _invoices(session: Session, org: Organisation):  # type: ignore[no-untyped-def]
    return select(Invoice).where(Invoice.org_id == org.id).options(selectinload(Invoice.contact))


def refresh_next_action(session: Session, org: Organisation, now: datetime,
                        invoice_ids: Iterable[int] | None = None) -> int:
    """Recompute next_action_at for these invoices (all of the organisation's if None)."""
    ids = None if invoice_ids is None else sorted(set(invoice_ids))
    chunks = [None] if ids is None else [ids[i:i + BATCH] for i in range(0, len(ids), BATCH)]
    touched = 0
    for chunk in chunks:
        query = _invoices(session, org)
        invoices = session.scalars(
            query if chunk is None else query.where(Invoice.id.in_(chunk))).all()
        book = Book(session, org, invoices)
        planner = NextActionPlanner(book.calendar, now)
        for invoice in invoices:
            when = None
            if invoice.due_date is not None:
                when = planner(book.state(invoice), book.past(invoice), book.policy_of(invoice))
            if invoice.next_action_at != when:
                invoice.next_action_at = when
            touched += 1
    return touched


def _report_problems(session: Session, org: Organisation, invoice: Invoice,
                     problems: list[str], now: datetime, calendar: OrgCalendar) -> None:
    """Tell the owner once a day what could not be computed (e.g. a rate table to extend)."""
    day_start = calendar.at_local(calendar.today(now), time(0))
    for problem in problems:
        log.warning("org %s invoice %s: %s", org.id, invoice.id, problem)
        seen = session.scalar(select(AuditEvent.id).where(
            AuditEvent.org_id == org.id, AuditEvent.invoice_id == invoice.id,
            AuditEvent.kind == "needs_attention", AuditEvent.message == problem,
            AuditEvent.at >= day_start).limit(1))
        if seen is None:
            ledger.audit(session, org.id, "needs_attention", problem, at=now,
                         invoice_id=invoice.id)


def plan_org(session: Session, org: Organisation, now: datetime) -> list[Action]:
    """Plan what is due now into the ledger; the caller commits and enqueues the actions."""
    portal.settle_promises(session, org.id, calendar_for(org).today(now), now)
    due = session.scalars(
        _invoices(session, org).where(Invoice.next_action_at.is_not(None),
                                      Invoice.next_action_at <= now)).all()
    book = Book(session, org, due)
    steps: list[tuple[PlannedAction, Invoice]] = []
    next_times: list[tuple[Invoice, datetime | None]] = []
    for invoice in due:
        history = book.past(invoice)
        state, policy = book.state(invoice), book.policy_of(invoice)
        problems: list[str] = []
        for step in evaluate(state, history, policy, book.calendar, now, problems=problems,
                             tables=book.tables):
            steps.append((step, invoice))
            history = [*history, PastAction(key=step.key, status="planned", amount=step.amount,
                                            at=step.scheduled_for)]
        if problems:
            _report_problems(session, org, invoice, problems, now, book.calendar)
        when = next_action_at(state, history, policy, book.calendar, now)
        if invoice.next_action_at != when:
            next_times.append((invoice, when))
    planned = ledger.record_planned_many(session, steps, now)
    _store_next_action_at(session, next_times)
    # Deposits tracked; retainers, limits and terms planned (credit control, quotes).
    planned.extend(credit_requests.plan_for_customers(session, org, book, due, now))
    session.flush()
    return planned


def _store_next_action_at(session: Session, rows: list[tuple[Invoice, datetime | None]]) -> None:
    """One executemany UPDATE by primary key for the pass (not an ORM UPDATE per invoice);
    the session's objects are told the new value, as the database now holds it."""
    if not rows:
        return
    session.flush()
    table = cast(Table, Invoice.__table__)
    session.connection().execute(
        update(table).where(table.c.id == bindparam("invoice_id"))
        .values(next_action_at=bindparam("when")),
        [{"invoice_id": invoice.id, "when": when} for invoice, when in rows])
    for invoice, when in rows:
        set_committed_value(invoice, "next_action_at", when)


def dry_run(session: Session, org: Organisation, day: date) -> list[dict[str, object]]:
    """What the run at the send time of `day` would plan, without writing anything."""
    policy, calendar = planning_policy(session, org), calendar_for(org)
    at = calendar.at_local(day, policy.send_time)
    invoices = session.scalars(
        _invoices(session, org).where(Invoice.status == "open")
        .order_by(Invoice.due_date, Invoice.id)).all()
    book = Book(session, org, invoices)
    rows: list[dict[str, object]] = []
    for invoice in invoices:
        if invoice.due_date is None:
            continue
        problems: list[str] = []
        for step in evaluate(book.state(invoice), book.past(invoice), book.policy_of(invoice),
                             calendar, at, problems=problems, tables=book.tables):
            rows.append({
                "invoice_id": invoice.id, "invoice_number": invoice.number, "key": step.key,
                "kind": step.kind, "scheduled_for": step.scheduled_for,
                "reason": step.reason,
                "amount": None if step.amount is None else str(step.amount),
                "currency": step.currency, "channel": step.channel,
                "step": None if step.step_index is None else step.step_index + 1,
                "step_count": step.step_count, "template": step.template,
                "amount_due": str(invoice.amount_due)})
        rows.extend({"invoice_id": invoice.id, "invoice_number": invoice.number,
                     "kind": "needs_attention", "reason": problem} for problem in problems)
    return rows


@dataclass(frozen=True, slots=True)
class Foreseen:
    """One action a preview expects: when the run would take it, for which invoice."""

    at: datetime
    invoice: Invoice
    action: PlannedAction


def foresee(session: Session, org: Organisation, invoices: Sequence[Invoice], now: datetime,
            days: int, adjust: Callable[[Policy], Policy] | None = None) -> list[Foreseen]:
    """Every action the policy would take on these invoices over the next `days`, if nobody
    pays: the engine asked at each day's send time, with what it planned before counted as
    done (and when, so a first contact moves the later steps as it will). Writes nothing."""
    book = Book(session, org, invoices, adjust=adjust)
    calendar = book.calendar
    today = calendar.today(now)
    histories = {invoice.id: list(book.past(invoice)) for invoice in invoices}
    found: list[Foreseen] = []
    for offset in range(days + 1):
        for invoice in invoices:
            if invoice.due_date is None:
                continue
            policy = book.policy_of(invoice)
            at = max(now, calendar.at_local(today + timedelta(days=offset), policy.send_time))
            history = histories[invoice.id]
            for step in evaluate(book.state(invoice), history, policy, calendar, at,
                                 tables=book.tables):
                found.append(Foreseen(at, invoice, step))
                history.append(PastAction(key=step.key, status="done", amount=step.amount,
                                          at=step.scheduled_for))
    return found
