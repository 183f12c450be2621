"""Where actions are planned: the database side of rules.evaluate.

Only invoices whose stored next_action_at has come are read, so the daily cost follows the
work due, not the size of the book. Each invoice is handed to rules/ with its payments, its
payment plan and its contact's settings; the policy in force is the organisation's with the
contact's overrides.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import cast

from flask import current_app
from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from collect import ledger, own_documents, portal
from rules import (
    Instalment,
    InvoiceState,
    NextActionPlanner,
    OrgCalendar,
    PastAction,
    PaymentPlan,
    PlannedAction,
    Policy,
    contact_overrides_from_json,
    default_policy,
    evaluate,
    new_customer_variant,
    next_action_at,
    policy_from_json,
    policy_to_json,
    with_contact_overrides,
)
from rules.rate_checks import Choice, confirmed_table
from rules.statutory import RateTable, default_tables
from store import clock
from store.models import (
    Action,
    AuditEvent,
    CreditSettings,
    Invoice,
    Organisation,
    Payment,
    RateConfirmation,
)
from store.models import PaymentPlan as PlanRow
from store.models import Policy as PolicyRow

log = logging.getLogger(__name__)

BATCH = 1000


def policy_for(session: Session, org: Organisation) -> Policy:
    row = session.scalar(select(PolicyRow).where(PolicyRow.org_id == org.id))
    if row is None:
        overrides = current_app.config.get("DEFAULT_POLICY") or {}
        policy = policy_from_json({**policy_to_json(default_policy()), **overrides})
        session.add(PolicyRow(org_id=org.id, version=policy.version,
                              body=policy_to_json(policy)))
        return policy
    return policy_from_json(row.body)


def planning_policy(session: Session, org: Organisation) -> Policy:
    """The policy as planning applies it. Fees placed on a statement invoice fall due on the
    policy's statement day; a policy that names none takes the day the organisation's customer
    statements go out (credit settings), so the fee invoice and the statement that lists it
    arrive together. Without either, the 1st of the month (rules/engine.statement_day)."""
    policy = policy_for(session, org)
    if policy.statement_day is None:
        day = session.scalar(select(CreditSettings.statement_day)
                             .where(CreditSettings.org_id == org.id))
        if day:
            policy = policy.model_copy(update={"statement_day": day})
    return policy


def rate_tables_for(session: Session, org: Organisation) -> Mapping[str, RateTable]:
    """The statutory rate tables as this organisation's planning reads them: the shipped
    tables with its owners' decisions on unverified or missing periods (rules/rate_checks)."""
    decisions: dict[str, dict[date, Choice]] = defaultdict(dict)
    for jurisdiction, start, choice in session.execute(
            select(RateConfirmation.jurisdiction, RateConfirmation.period_start,
                   RateConfirmation.choice).where(RateConfirmation.org_id == org.id)):
        decisions[jurisdiction][start] = cast(Choice, choice)  # decide() stores only these
    tables = default_tables()
    if not decisions:
        return tables
    today = calendar_for(org).today(clock.now())
    return {name: confirmed_table(table, decisions.get(name, {}), today)
            for name, table in tables.items()}


# Where a country's own holidays differ by region and the books do not say which, the region
# most businesses are in: UK-wide holidays alone would miss Easter Monday and August's.
DEFAULT_SUBDIVISIONS = {"GB": "ENG"}


def calendar_for(org: Organisation) -> OrgCalendar:
    return OrgCalendar(timezone=org.timezone, country=org.country,
                       subdivision=DEFAULT_SUBDIVISIONS.get(org.country))


class Book:
    """The invoices of one planning pass with what rules/ needs beside them, read in bulk."""

    def __init__(self, session: Session, org: Organisation, invoices: Sequence[Invoice],
                 adjust: Callable[[Policy], Policy] | None = None):
        """`adjust` changes the policy as a preview asks (e.g. fees dated from go-live)."""
        self.adjust = adjust
        self.policy = planning_policy(session, org)
        if adjust is not None:
            self.policy = adjust(self.policy)
        self.calendar = calendar_for(org)
        ids = [i.id for i in invoices]
        self.history = ledger.history(session, ids)
        self.payments: dict[int, list[tuple[date, Decimal]]] = defaultdict(list)
        self.plans: dict[int, PaymentPlan] = {}
        # Lines Dunwell wrote into the books change the invoice's total; fees are charged on
        # the principal, never on fees (and a discount line does not lower it).
        self.lines_added: dict[int, Decimal] = defaultdict(Decimal)
        for start in range(0, len(ids), BATCH):
            chunk = ids[start:start + BATCH]
            for invoice_id, kind, amount, result in session.execute(
                    select(Action.invoice_id, Action.kind, Action.amount, Action.result)
                    .where(Action.invoice_id.in_(chunk), Action.status == "done",
                           Action.kind.in_(("fee", "interest", "compensation", "discount")))):
                if (result or {}).get("placed") == "line" and amount is not None:
                    self.lines_added[invoice_id] += -amount if kind == "discount" else amount
            for invoice_id, paid_on, amount in session.execute(
                    select(Payment.invoice_id, Payment.paid_on, Payment.amount)
                    .where(Payment.invoice_id.in_(chunk), Payment.status == "active")):
                if paid_on is not None and invoice_id is not None:
                    self.payments[invoice_id].append((paid_on, amount))
            for plan in session.scalars(select(PlanRow).where(
                    PlanRow.invoice_id.in_(chunk), PlanRow.status == "active")):
                self.plans[plan.invoice_id] = plan_record(plan)
        self.own = own_documents.among(session, org.id, (i.provider_id for i in invoices))
        self.tables = rate_tables_for(session, org)
        # What customers promised in the portal: chasing waits for the day (rules/promises.py).
        self.promises = portal.promises_of(session, list(invoices),
                                           self.calendar.today(clock.now()))
        self._policies: dict[int, Policy] = {}
        from collect.credit_requests import new_customers  # credit control: stricter variant
        self.newcomers = new_customers(session, org.id, invoices, self.policy)

    def policy_of(self, invoice: Invoice) -> Policy:
        contact = invoice.contact
        newcomer = contact is not None and contact.id in self.newcomers
        if contact is None or not (contact.policy_overrides or newcomer):
            return self.policy
        if contact.id not in self._policies:
            overrides = contact_overrides_from_json({"policy": contact.policy_overrides or {}})
            base = new_customer_variant(self.policy) if newcomer else self.policy
            policy = with_contact_overrides(base, overrides)
            self._policies[contact.id] = policy if self.adjust is None else self.adjust(policy)
        return self._policies[contact.id]

    def state(self, invoice: Invoice) -> InvoiceState:
        assert invoice.due_date is not None
        contact = invoice.contact
        return InvoiceState(
            invoice_id=invoice.id, org_id=invoice.org_id, number=invoice.number,
            status=invoice.status,  # type: ignore[arg-type]
            due_date=invoice.due_date, amount_due=invoice.amount_due,
            currency=invoice.currency, has_email=bool(contact and contact.email),
            issue_date=invoice.issue_date,
            total=invoice.total - self.lines_added.get(invoice.id, Decimal(0)),
            payments=tuple(sorted(self.payments.get(invoice.id, ()))),
            is_business=contact.is_business if contact else True,
            excluded=bool(contact and contact.excluded),
            disputed=invoice.disputed or bool(contact and contact.disputed),
            plan=self.plans.get(invoice.id), promise=self.promises.get(invoice.id),
            contact_id=invoice.contact_id,
            own_document=invoice.provider_id in self.own)

    def past(self, invoice: Invoice) -> list[PastAction]:
        return self.history.get(invoice.id, [])


def plan_record(row: PlanRow) -> PaymentPlan:
    return PaymentPlan(
        plan_id=row.id, paid_before=row.paid_before,
        instalments=tuple(Instalment(date.fromisoformat(i["due_date"]), Decimal(i["amount"]))
                          for i in row.instalments),
        status="active" if row.status == "active" else "cancelled")


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
    from collect import credit_requests  # deposits tracked; retainers, limits, terms planned
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
