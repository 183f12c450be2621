"""The book one planning pass reads: the policy in force, the organisation's calendar and rate
tables, and the invoices with what rules/ needs beside them (payments, plans, the ledger's
history, promises), read in bulk. Every planner (invoices, customers, quotes, statements) reads
it; it knows none of them.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from collect import contact_disputes, ledger, own_documents, portal
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
from rules.invoice import Hold, Pause, Promise
from rules.policy import is_new_customer
from rules.rate_checks import Choice, confirmed_table
from rules.statutory import RateTable, default_tables
from store import clock
from store.db import among
from store.models import (
    Action,
    CreditSettings,
    Invoice,
    InvoiceDispute,
    InvoicePause,
    Organisation,
    OwnDocument,
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
        self._fill(session, org, invoices, planning_policy(session, org), adjust,
                   InvoiceReads.read(session, invoices, calendar_for(org).today(clock.now())),
                   own_documents.among(session, org.id, (i.provider_id for i in invoices)),
                   rate_tables_for(session, org))

    @classmethod
    def many(cls, session: Session, batch: Sequence[tuple[Organisation, Sequence[Invoice]]]
             ) -> tuple[dict[int, Book], dict[int, Exception]]:
        """The books of many organisations, each as `Book(session, org, invoices)` reads it,
        with one read of each kind for them all (the daily run plans a batch this way); and
        the organisations whose book could not be made (a zone or a policy that no longer
        reads), with why."""
        orgs = [org for org, _ in batch]
        invoices = [invoice for _, own in batch for invoice in own]
        policies = PlanningPolicies(session, orgs)
        # From yesterday in UTC: no zone's today is earlier (each book keeps the pauses holding
        # on its own today); which promise an invoice has does not depend on the day.
        reads = InvoiceReads.read(session, invoices, (clock.now() - timedelta(days=1)).date())
        own = _own_documents(session, invoices)
        deciding, shipped = _deciding(session, orgs), default_tables()
        books: dict[int, Book] = {}
        errors: dict[int, Exception] = {}
        for org, org_invoices in batch:
            book = cls.__new__(cls)
            try:
                book._fill(session, org, org_invoices, policies.of(org), None, reads,
                           own.get(org.id, set()),
                           rate_tables_for(session, org) if org.id in deciding else shipped)
            except Exception as exc:  # this organisation's data; the others' books stand
                errors[org.id] = exc
                continue
            books[org.id] = book
        return books, errors

    def _fill(self, session: Session, org: Organisation, invoices: Sequence[Invoice],
              policy: Policy, adjust: Callable[[Policy], Policy] | None, reads: InvoiceReads,
              own: set[str], tables: Mapping[str, RateTable]) -> None:
        self.adjust = adjust
        self.policy = policy if adjust is None else adjust(policy)
        self.calendar = calendar_for(org)
        self.history, self.payments = reads.history, reads.payments
        self.plans, self.lines_added = reads.plans, reads.lines_added
        self.promises = reads.promises
        # A collector's pauses: nothing is planned before the day chasing resumes.
        self.pauses = reads.pauses_on(self.calendar.today(clock.now()))
        self.reads = reads
        self.own, self.tables = own, tables
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
            holds=self.reads.holds(invoice.id, self.calendar),
            contact_id=invoice.contact_id,
            own_document=invoice.provider_id in self.own)

    def past(self, invoice: Invoice) -> list[PastAction]:
        return self.history.get(invoice.id, [])


@dataclass(slots=True)
class InvoiceReads:
    """What planning reads beside invoices, keyed by invoice id (of one organisation or many)."""

    history: dict[int, list[PastAction]]
    payments: dict[int, list[tuple[date, Decimal]]]
    plans: dict[int, PaymentPlan]
    # Lines Dunwell wrote into the books change the invoice's total; fees are charged on
    # the principal, never on fees (and a discount line does not lower it).
    lines_added: dict[int, Decimal]
    # What customers promised in the portal: chasing waits for the day (rules/promises.py).
    promises: dict[int, Promise]
    # Pauses not resumed by hand and holding on `since` or later, oldest first.
    pauses: dict[int, list[Pause]]
    # Every pause and dispute (the invoice's own, and its customer's as a whole, read from
    # collect/contact_disputes), past and present, as (began, last day or None, ended or None):
    # fees count none of their days (rules/fees.FeeDays); `holds` makes them local days.
    held: dict[int, list[tuple[datetime, date | None, datetime | None]]]

    @classmethod
    def read(cls, session: Session, invoices: Sequence[Invoice], today: date) -> InvoiceReads:
        """`today`: the earliest day the pauses are asked about (`pauses_on`)."""
        since = today
        ids = [i.id for i in invoices]
        reads = cls(ledger.history(session, ids), defaultdict(list), {}, defaultdict(Decimal),
                    {}, defaultdict(list), defaultdict(list))
        for start in range(0, len(ids), BATCH):
            chunk = ids[start:start + BATCH]
            for invoice_id, kind, amount, result in session.execute(
                    select(Action.invoice_id, Action.kind, Action.amount, Action.result)
                    .where(among(session, Action.invoice_id, chunk), Action.status == "done",
                           Action.kind.in_(("fee", "interest", "compensation", "discount")))):
                if (result or {}).get("placed") == "line" and amount is not None:
                    reads.lines_added[invoice_id] += -amount if kind == "discount" else amount
            for invoice_id, paid_on, amount in session.execute(
                    select(Payment.invoice_id, Payment.paid_on, Payment.amount)
                    .where(among(session, Payment.invoice_id, chunk),
                           Payment.status == "active")):
                if paid_on is not None and invoice_id is not None:
                    reads.payments[invoice_id].append((paid_on, amount))
            for plan in session.scalars(select(PlanRow).where(
                    among(session, PlanRow.invoice_id, chunk), PlanRow.status == "active")):
                reads.plans[plan.invoice_id] = plan_record(plan)
            for invoice_id, made, until, ended in session.execute(
                    select(InvoicePause.invoice_id, InvoicePause.created_at,
                           InvoicePause.until, InvoicePause.ended_at)
                    .where(among(session, InvoicePause.invoice_id, chunk))
                    .order_by(InvoicePause.id)):
                reads.held[invoice_id].append((made, until, ended))
                if ended is None and (until is None or until > since):
                    reads.pauses[invoice_id].append(Pause(until))
            for invoice_id, made, resolved in session.execute(
                    select(InvoiceDispute.invoice_id, InvoiceDispute.created_at,
                           InvoiceDispute.resolved_at).where(
                        among(session, InvoiceDispute.invoice_id, chunk))):
                reads.held[invoice_id].append((made, None, resolved))
        # A customer disputed as a whole holds each of its invoices alike.
        of_contact: dict[int, list[int]] = defaultdict(list)
        for invoice in invoices:
            if invoice.contact_id is not None:
                of_contact[invoice.contact_id].append(invoice.id)
        for contact_id, spans in contact_disputes.dispute_spans(session, list(of_contact)).items():
            for invoice_id in of_contact[contact_id]:
                reads.held[invoice_id].extend((began, None, ended) for began, ended in spans)
        reads.promises = portal.promises_of(session, list(invoices), today)
        return reads

    def holds(self, invoice_id: int, calendar: OrgCalendar) -> tuple[Hold, ...]:
        """The invoice's pauses and disputes as the days they held in the organisation's
        zone: from the day each began to the day it ended (resumed, resolved, or the pause's
        own last day), whichever came first."""
        found = []
        for made, until, ended in self.held.get(invoice_id, ()):
            end = None if ended is None else calendar.today(ended)
            if until is not None:
                end = until if end is None else min(end, until)
            found.append(Hold(calendar.today(made), end))
        return tuple(found)

    def pauses_on(self, today: date) -> dict[int, Pause]:
        """Each invoice's latest pause still holding on `today`: not resumed by hand, its day
        to come."""
        found: dict[int, Pause] = {}
        for invoice_id, pauses in self.pauses.items():
            holding = [pause for pause in pauses if pause.holds(today)]
            if holding:
                found[invoice_id] = holding[-1]
        return found


class PlanningPolicies:
    """`planning_policy` of many organisations from two reads; each policy is parsed when
    asked for (a body that no longer parses fails its own organisation, not the batch), and
    a body many organisations share is parsed once."""

    def __init__(self, session: Session, orgs: Sequence[Organisation]):
        self.session = session
        ids = [org.id for org in orgs]
        self.bodies: dict[int, dict[str, Any]] = {}
        self.statement_days: dict[int, int] = {}
        for start in range(0, len(ids), BATCH):
            chunk = ids[start:start + BATCH]
            self.bodies.update(session.execute(select(PolicyRow.org_id, PolicyRow.body)
                                               .where(PolicyRow.org_id.in_(chunk))).all())
            self.statement_days.update((org_id, day) for org_id, day in session.execute(
                select(CreditSettings.org_id, CreditSettings.statement_day)
                .where(CreditSettings.org_id.in_(chunk))).all() if day)
        self.parsed: dict[str, Policy] = {}

    def of(self, org: Organisation) -> Policy:
        body = self.bodies.get(org.id)
        if body is None:  # written, as policy_for does
            policy = policy_for(self.session, org)
        else:
            text = json.dumps(body, sort_keys=True)
            if text not in self.parsed:
                self.parsed[text] = policy_from_json(body)
            policy = self.parsed[text]
        if policy.statement_day is None and org.id in self.statement_days:
            policy = policy.model_copy(update={"statement_day": self.statement_days[org.id]})
        return policy


def _own_documents(session: Session, invoices: Sequence[Invoice]) -> dict[int, set[str]]:
    """Per organisation, which of these invoices' provider ids are documents Dunwell made."""
    asked = {(i.org_id, i.provider_id) for i in invoices}
    wanted = sorted(asked)
    found: dict[int, set[str]] = defaultdict(set)
    for start in range(0, len(wanted), BATCH):
        chunk = wanted[start:start + BATCH]
        for org_id, provider_id in session.execute(
                select(OwnDocument.org_id, OwnDocument.provider_id).where(
                    OwnDocument.org_id.in_({o for o, _ in chunk}),
                    among(session, OwnDocument.provider_id, sorted({p for _, p in chunk})))):
            if (org_id, provider_id) in asked:
                found[org_id].add(provider_id)
    return found


def _deciding(session: Session, orgs: Sequence[Organisation]) -> set[int]:
    """Of these organisations, those whose owners decided on a rate period (their tables are
    read by `rate_tables_for`; the others plan with the shipped tables)."""
    ids = [org.id for org in orgs]
    decided: set[int] = set()
    for start in range(0, len(ids), BATCH):
        decided.update(session.scalars(
            select(RateConfirmation.org_id).where(RateConfirmation.org_id.in_(
                ids[start:start + BATCH])).distinct()))
    return decided


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
