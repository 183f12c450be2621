"""The book one planning pass reads: the policy in force, the organisation's calendar and rate
tables, and the invoices with what rules/ needs beside them (payments, plans, the ledger's
history, promises), read in bulk. Every planner (invoices, customers, quotes, statements) reads
it; it knows none of them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import cast

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from collect import ledger, own_documents, portal
from collect.pauses import pauses_of
from rules import (
    Instalment,
    InvoiceState,
    OrgCalendar,
    PastAction,
    PaymentPlan,
    Policy,
    contact_overrides_from_json,
    default_policy,
    new_customer_variant,
    policy_from_json,
    policy_to_json,
    with_contact_overrides,
)
from rules.credit import InvoiceHistory, paid_on_time
from rules.policy import is_new_customer
from rules.rate_checks import Choice, confirmed_table
from rules.statutory import RateTable, default_tables
from store import clock
from store.models import (
    Action,
    CreditSettings,
    Invoice,
    Organisation,
    Payment,
    RateConfirmation,
)
from store.models import PaymentPlan as PlanRow
from store.models import Policy as PolicyRow

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
        # A collector's pauses: nothing is planned before the day chasing resumes.
        self.pauses = pauses_of(session, ids, self.calendar.today(clock.now()))
        self._policies: dict[int, Policy] = {}
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
            pause=self.pauses.get(invoice.id),
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



def new_customers(session: Session, org_id: int, invoices: Sequence[Invoice],
                  policy: Policy) -> set[int]:
    """Contacts of these invoices still on the new-customer variant: fewer than N of their
    invoices paid on time (nothing is read when the policy has no variant)."""
    if policy.new_customer_policy is None:
        return set()
    contact_ids = sorted({i.contact_id for i in invoices if i.contact_id is not None})
    histories: dict[int, list[InvoiceHistory]] = {c: [] for c in contact_ids}
    for start in range(0, len(contact_ids), BATCH):
        chunk = contact_ids[start:start + BATCH]
        for row in session.execute(
                select(Invoice.id, Invoice.contact_id, Invoice.issue_date, Invoice.due_date,
                       Invoice.total, Invoice.currency, func.max(Payment.paid_on))
                .join(Payment, Payment.invoice_id == Invoice.id)
                .where(Invoice.org_id == org_id, Invoice.contact_id.in_(chunk),
                       Invoice.status == "paid", Invoice.due_date.is_not(None),
                       Payment.status == "active")
                .group_by(Invoice.id, Invoice.contact_id, Invoice.issue_date, Invoice.due_date,
                          Invoice.total, Invoice.currency)):
            invoice_id, contact_id, issued, due, total, currency, paid_on = row
            if paid_on is not None and contact_id is not None and due is not None:
                histories[contact_id].append(InvoiceHistory(
                    invoice_id, issued or due, due, total, total * 0, currency, paid_on,
                    contact_id))
    return {c for c in contact_ids if is_new_customer(policy, paid_on_time(histories[c]))}
