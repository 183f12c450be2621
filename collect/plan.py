"""Where actions are planned: the database side of rules.evaluate.

Only invoices whose stored next_action_at has come are read, so the daily cost follows the
work due, not the size of the book. Each invoice is handed to rules/ with its payments, its
payment plan and its contact's settings; the policy in force is the organisation's with the
contact's overrides.
"""

from __future__ import annotations

import logging
import time as timer
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar

from sqlalchemy import func, or_, select, union
from sqlalchemy.exc import SQLAlchemyError
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
)
from rules.engine import FeeNotCharged
from store.models import (
    Action,
    AuditEvent,
    Contact,
    CreditSettings,
    Invoice,
    Organisation,
    PaymentPromise,
    Quote,
    Retainer,
)
from sync.engine import update_by_id

log = logging.getLogger(__name__)
T = TypeVar("T")


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
                     problems: list[FeeNotCharged], now: datetime,
                     calendar: OrgCalendar) -> None:
    """Tell the owner once a day what could not be computed (e.g. a rate table to extend):
    the English sentence, and the code and figures a page words in the reader's language."""
    day_start = calendar.at_local(calendar.today(now), time(0))
    for problem in problems:
        message = str(problem)
        log.warning("org %s invoice %s: %s", org.id, invoice.id, message)
        seen = session.scalar(select(AuditEvent.id).where(
            AuditEvent.org_id == org.id, AuditEvent.invoice_id == invoice.id,
            AuditEvent.kind == "needs_attention", AuditEvent.message == message,
            AuditEvent.at >= day_start).limit(1))
        if seen is None:
            ledger.audit(session, org.id, "needs_attention", message, at=now,
                         invoice_id=invoice.id, data=problem.facts())


def plan_org(session: Session, org: Organisation, now: datetime) -> list[Action]:
    """Plan what is due now into the ledger; the caller commits and enqueues the actions.
    A failure in the organisation's data is raised (`plan_orgs` isolates it in a batch)."""
    batch = plan_orgs(session, [org], now)
    if org.id in batch.errors:
        raise batch.errors[org.id]
    return ledger.as_actions(session, batch.actions[org.id])


class PassPhases:
    """Wall and CPU seconds of a planning pass, phase by phase (`with phases("read"):`)."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        wall, cpu = timer.perf_counter(), timer.process_time()
        try:
            yield
        finally:
            self.wall[phase] = self.wall.get(phase, 0.0) + timer.perf_counter() - wall
            self.cpu[phase] = self.cpu.get(phase, 0.0) + timer.process_time() - cpu

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {phase: {"wall": round(self.wall[phase], 6), "cpu": round(self.cpu[phase], 6)}
                for phase in self.wall}


@dataclass(slots=True)
class BatchPlan:
    """What one pass over a batch of organisations planned: the new actions of each (those
    the ledger's set-wise INSERT wrote as `ledger.Written`), the organisations whose data
    failed (the rest planned all the same), how many had nothing to do (none of their other
    reads were made)."""

    actions: dict[int, list[Action | ledger.Written]]
    errors: dict[int, Exception]
    idle: int = 0
    # Where the pass's time went, per phase ("read", "rules", "write"): wall and CPU seconds
    # of this process (the benchmark prints them; the database's own work is in the wall).
    phases: PassPhases = field(default_factory=PassPhases)


def plan_orgs(session: Session, orgs: Sequence[Organisation], now: datetime,
              phases: PassPhases | None = None) -> BatchPlan:
    """Plan what is due now for many organisations in one pass: one read of each kind for
    the batch, rules/ per invoice as for one organisation, the actions and next action times
    written set-wise; the caller commits once. An organisation with nothing due (and no
    credit control to plan) costs its share of three reads; one whose data fails is logged
    with the reason, and the others' plans are kept."""
    batch = BatchPlan({org.id: [] for org in orgs}, {}, phases=phases or PassPhases())
    ids = [org.id for org in orgs]
    with batch.phases("read"):
        due_counts = _due_counts(session, ids, now)
        promised = _promises_to_settle(session, ids, now)
    with batch.phases("write"):
        for org in orgs:
            if org.id in promised:
                _isolated(session, batch, org, portal.settle_promises, session, org.id,
                          calendar_for(org).today(now), now)
    with batch.phases("read"):
        credit = _credit_control(session, ids)
    busy = [org for org in orgs if (org.id in due_counts or org.id in credit)
            and org.id not in batch.errors]
    batch.idle = len(orgs) - len(busy)
    group: list[Organisation] = []
    size = 0
    for org in busy:  # a few organisations with very many due: their own passes
        if group and size + due_counts.get(org.id, 0) > DUE_PER_PASS:
            _plan_group(session, batch, group, credit, now)
            group, size = [], 0
        group.append(org)
        size += due_counts.get(org.id, 0)
    if group:
        _plan_group(session, batch, group, credit, now)
    with batch.phases("write"):
        session.flush()
    return batch


# Due invoices one pass holds in memory (with their contacts, history and steps).
DUE_PER_PASS = 20_000


def _plan_group(session: Session, batch: BatchPlan, busy: Sequence[Organisation],
                credit: set[int], now: datetime) -> None:
    with batch.phases("read"):
        due = _due_invoices(session, [org.id for org in busy], now)
        books, unreadable = Book.many(session, [(org, due.get(org.id, [])) for org in busy])
    for org in busy:
        if org.id in unreadable:
            _failed(batch, org, unreadable[org.id])
    steps: dict[int, list[tuple[PlannedAction, Invoice]]] = {}
    next_times: dict[int, list[tuple[Invoice, datetime | None]]] = {}
    problems: dict[int, list[tuple[Invoice, list[FeeNotCharged]]]] = {}
    with batch.phases("rules"):
        for org in busy:
            if org.id in unreadable:
                continue
            try:
                steps[org.id], next_times[org.id], problems[org.id] = _evaluate(
                    books[org.id], due.get(org.id, []), now)
            except Exception as exc:  # one organisation's data; the rest plan
                _failed(batch, org, exc)
    planned = [org for org in busy if org.id in steps]
    with batch.phases("write"):
        for org in planned:
            if problems[org.id]:
                _isolated(session, batch, org, _report_all, session, org, problems[org.id],
                          now, books[org.id].calendar)
        _write(session, batch, [org for org in planned if org.id not in batch.errors], steps,
               next_times, now)
    with batch.phases("credit"):
        _plan_credit(session, batch, planned, books, due, credit, now)


def _plan_credit(session: Session, batch: BatchPlan, planned: Sequence[Organisation],
                 books: dict[int, Book], due: dict[int, list[Invoice]], credit: set[int],
                 now: datetime) -> None:
    for org in planned:
        if org.id in batch.errors:
            continue
        book, invoices = books[org.id], due.get(org.id, [])
        if org.id in credit:
            # Deposits tracked; retainers, limits and terms planned (credit control, quotes).
            found = _isolated(session, batch, org, credit_requests.plan_for_customers,
                              session, org, book, invoices, now)
            batch.actions[org.id].extend(found or [])
        elif any(book.policy_of(invoice).deposits is not None for invoice in invoices):
            # No quotes, retainers or limits: only the deposits of the invoices due (where no
            # deposit rule applies, nothing to write and no savepoint to pay for).
            _isolated(session, batch, org, credit_requests.track_expected_payments, session,
                      book, invoices, now)


def _evaluate(book: Book, due: Sequence[Invoice], now: datetime) -> tuple[
        list[tuple[PlannedAction, Invoice]], list[tuple[Invoice, datetime | None]],
        list[tuple[Invoice, list[FeeNotCharged]]]]:
    """The pure part for one organisation: its steps, new next action times and problems."""
    steps: list[tuple[PlannedAction, Invoice]] = []
    next_times: list[tuple[Invoice, datetime | None]] = []
    reported: list[tuple[Invoice, list[FeeNotCharged]]] = []
    # next_action_at's answers, computed once per distinct combination of the facts they
    # depend on (rules/engine.py; the same answers, as its tests and the policy_engine
    # benchmark check invoice by invoice).
    planner = NextActionPlanner(book.calendar, now)
    for invoice in due:
        history = book.past(invoice)
        state, policy = book.state(invoice), book.policy_of(invoice)
        problems: list[FeeNotCharged] = []
        for step in evaluate(state, history, policy, book.calendar, now, problems=problems,
                             tables=book.tables):
            steps.append((step, invoice))
            history = [*history, PastAction(key=step.key, status="planned", amount=step.amount,
                                            at=step.scheduled_for)]
        if problems:
            reported.append((invoice, problems))
        when = planner(state, history, policy)
        if invoice.next_action_at != when:
            next_times.append((invoice, when))
    return steps, next_times, reported


def _write(session: Session, batch: BatchPlan, orgs: Sequence[Organisation],
           steps: dict[int, list[tuple[PlannedAction, Invoice]]],
           next_times: dict[int, list[tuple[Invoice, datetime | None]]], now: datetime) -> None:
    """The batch's actions and next action times set-wise; if the batch's statements fail,
    each organisation's again on its own, so one organisation's rows lose no one else's."""
    def write(group: Sequence[Organisation]) -> None:
        for action in ledger.record_planned_many(
                session, [step for org in group for step in steps[org.id]], now):
            batch.actions[action.org_id].append(action)
        _store_next_action_at(session, [row for org in group for row in next_times[org.id]])

    try:
        with session.begin_nested():
            write(orgs)
        return
    except SQLAlchemyError as exc:
        if len(orgs) == 1:
            _failed(batch, orgs[0], exc)
            return
        log.warning("planning pass of %d organisations: the set-wise write failed (%s); "
                    "each organisation is written on its own", len(orgs),
                    exc.__class__.__name__)
    for org in orgs:
        batch.actions[org.id].clear()
        _isolated(session, batch, org, write, [org])


def _isolated(session: Session, batch: BatchPlan, org: Organisation,
              work: Callable[..., T], *args: Any) -> T | None:
    """One organisation's writes in a savepoint: its failure is rolled back and recorded."""
    try:
        with session.begin_nested():
            return work(*args)
    except Exception as exc:  # one organisation's data; the rest plan
        _failed(batch, org, exc)
        return None


def _report_all(session: Session, org: Organisation,
                problems: Sequence[tuple[Invoice, list[FeeNotCharged]]], now: datetime,
                calendar: OrgCalendar) -> None:
    for invoice, found in problems:
        _report_problems(session, org, invoice, found, now, calendar)


def _failed(batch: BatchPlan, org: Organisation, exc: Exception) -> None:
    log.error("org %s: planning failed, its invoices wait for the next pass (%s: %s)", org.id,
              exc.__class__.__name__, exc)
    batch.errors[org.id] = exc
    batch.actions[org.id] = []


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    return (ids[start:start + BATCH] for start in range(0, len(ids), BATCH))


def _due_counts(session: Session, org_ids: Sequence[int], now: datetime) -> dict[int, int]:
    """Of these organisations, those with an invoice whose next action time has come."""
    found: dict[int, int] = {}
    for chunk in _chunks(org_ids):
        found.update(session.execute(
            select(Invoice.org_id, func.count()).where(
                Invoice.org_id.in_(chunk), Invoice.next_action_at <= now)
            .group_by(Invoice.org_id)).all())
    return found


def _promises_to_settle(session: Session, org_ids: Sequence[int], now: datetime) -> set[int]:
    """Organisations with an open promise whose day may have passed (the day after now's in
    UTC bounds every zone's today; settle_promises decides by the organisation's own)."""
    bound = (now + timedelta(days=1)).date()
    found: set[int] = set()
    for chunk in _chunks(org_ids):
        found.update(session.scalars(select(PaymentPromise.org_id).where(
            PaymentPromise.org_id.in_(chunk), PaymentPromise.status == "open",
            PaymentPromise.pay_by < bound).distinct()))
    return found


def _credit_control(session: Session, org_ids: Sequence[int]) -> set[int]:
    """Organisations whose credit control may plan something whatever is due: accepted
    quotes (deposits), retainers (top-ups), a customer with a limit or on hold, or a
    default limit. For the others, collect.credit_requests would read and find nothing."""
    found: set[int] = set()
    for chunk in _chunks(org_ids):
        found.update(session.scalars(union(
            select(Quote.org_id).where(Quote.org_id.in_(chunk), Quote.status == "accepted"),
            select(Retainer.org_id).where(Retainer.org_id.in_(chunk)),
            select(Contact.org_id).where(Contact.org_id.in_(chunk), or_(
                Contact.credit_limit.is_not(None), Contact.on_hold.is_(True))),
            select(CreditSettings.org_id).where(CreditSettings.org_id.in_(chunk),
                                                CreditSettings.default_credit_limit.is_not(None)),
        )))
    return found


def _due_invoices(session: Session, org_ids: Sequence[int], now: datetime
                  ) -> dict[int, list[Invoice]]:
    found: dict[int, list[Invoice]] = {}
    for chunk in _chunks(org_ids):
        for invoice in session.scalars(
                select(Invoice).where(Invoice.org_id.in_(chunk),
                                      Invoice.next_action_at.is_not(None),
                                      Invoice.next_action_at <= now)
                .options(selectinload(Invoice.contact)).order_by(Invoice.org_id, Invoice.id)):
            found.setdefault(invoice.org_id, []).append(invoice)
    return found


def _store_next_action_at(session: Session, rows: list[tuple[Invoice, datetime | None]]) -> None:
    """The pass's new next action times in one statement, not an ORM UPDATE per invoice
    (PostgreSQL joins the rows from a temporary table filled by COPY, or from two arrays;
    SQLite gets an executemany UPDATE by primary key). The session's objects are told the new
    value, as the database now holds it."""
    if not rows:
        return
    session.flush()
    update_by_id(session, Invoice.__table__, ["next_action_at"],
                 [{"row_id": invoice.id, "next_action_at": when} for invoice, when in rows])
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
        problems: list[FeeNotCharged] = []
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
                     "kind": "needs_attention", "reason": str(problem)}
                    for problem in problems)
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
