"""Where a reminder is planned: the database side of rules.evaluate.

Only invoices whose stored next_action_at has come are read, so the daily cost follows the
work due, not the size of the book.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.models import Action, Invoice, Organisation
from app.models import Policy as PolicyRow
from jobs import ledger
from rules import (
    InvoiceState,
    OrgCalendar,
    PastAction,
    Policy,
    default_policy,
    evaluate,
    next_action_at,
    policy_from_json,
    policy_to_json,
)

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


# Where a country's own holidays differ by region and the books do not say which, the region
# most businesses are in: UK-wide holidays alone would miss Easter Monday and August's.
DEFAULT_SUBDIVISIONS = {"GB": "ENG"}


def calendar_for(org: Organisation) -> OrgCalendar:
    return OrgCalendar(timezone=org.timezone, country=org.country,
                       subdivision=DEFAULT_SUBDIVISIONS.get(org.country))


def invoice_state(invoice: Invoice) -> InvoiceState:
    assert invoice.due_date is not None
    return InvoiceState(
        invoice_id=invoice.id, org_id=invoice.org_id, number=invoice.number,
        status=invoice.status,  # type: ignore[arg-type]
        due_date=invoice.due_date, amount_due=invoice.amount_due, currency=invoice.currency,
        has_email=bool(invoice.contact and invoice.contact.email),
    )


def refresh_next_action(session: Session, org: Organisation, now: datetime,
                        invoice_ids: Iterable[int] | None = None) -> int:
    """Recompute next_action_at for these invoices (all of the organisation's if None)."""
    policy, calendar = policy_for(session, org), calendar_for(org)
    query = select(Invoice).where(Invoice.org_id == org.id).options(
        selectinload(Invoice.contact))
    ids = None if invoice_ids is None else sorted(set(invoice_ids))
    chunks = [None] if ids is None else [ids[i:i + BATCH] for i in range(0, len(ids), BATCH)]
    touched = 0
    for chunk in chunks:
        invoices = session.scalars(
            query if chunk is None else query.where(Invoice.id.in_(chunk))).all()
        past = ledger.history(session, (i.id for i in invoices))
        for invoice in invoices:
            when = None
            if invoice.due_date is not None:
                when = next_action_at(invoice_state(invoice), past.get(invoice.id, []),
                                      policy, calendar, now)
            if invoice.next_action_at != when:
                invoice.next_action_at = when
            touched += 1
    return touched


def plan_org(session: Session, org: Organisation, now: datetime) -> list[Action]:
    """Plan what is due now into the ledger; the caller commits and enqueues the actions."""
    policy, calendar = policy_for(session, org), calendar_for(org)
    due = session.scalars(
        select(Invoice)
        .where(Invoice.org_id == org.id, Invoice.next_action_at.is_not(None),
               Invoice.next_action_at <= now)
        .options(selectinload(Invoice.contact))
    ).all()
    past = ledger.history(session, (i.id for i in due))
    planned: list[Action] = []
    for invoice in due:
        history = past.get(invoice.id, [])
        state = invoice_state(invoice)
        for step in evaluate(state, history, policy, calendar, now):
            action = ledger.record_planned(session, step, invoice, now)
            if action is not None:
                planned.append(action)
                history = [*history, PastAction(key=step.key, status="planned")]
        invoice.next_action_at = next_action_at(state, history, policy, calendar, now)
    session.flush()
    return planned


def dry_run(session: Session, org: Organisation, day: date) -> list[dict[str, object]]:
    """What the run at the send time of `day` would plan, without writing anything."""
    policy, calendar = policy_for(session, org), calendar_for(org)
    at = calendar.at_local(day, policy.send_time)
    invoices = session.scalars(
        select(Invoice).where(Invoice.org_id == org.id, Invoice.status == "open")
        .options(selectinload(Invoice.contact)).order_by(Invoice.due_date, Invoice.id)
    ).all()
    past = ledger.history(session, (i.id for i in invoices))
    return [
        {"invoice_id": invoice.id, "invoice_number": invoice.number, "key": step.key,
         "kind": step.kind, "step": step.step_index + 1, "step_count": step.step_count,
         "template": step.template, "scheduled_for": step.scheduled_for,
         "amount_due": str(invoice.amount_due), "currency": invoice.currency}
        for invoice in invoices if invoice.due_date is not None
        for step in evaluate(invoice_state(invoice), past.get(invoice.id, []), policy,
                             calendar, at)
    ]
