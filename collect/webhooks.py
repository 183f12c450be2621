"""Targeted sync: what webhooks announced, read by id, upserted, and the ledger told at once.

A payment must stop the reminders of its invoice before any can run. So, in one pass: read the
changed invoices by id (few) or incrementally (many, or records we cannot read by id), upsert
them with the sync engine's own upserts, then close every open action of an invoice that is no
longer open (paid, voided, deleted) and set aside, to be planned again, every action whose
invoice's amount due moved. A closing is one conditional UPDATE on actions nobody has claimed:
an action a worker already holds re-checks the invoice itself before it writes anything.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from collect import ledger
from collect.plan import refresh_next_action
from connectors.base import Connector, InvoiceRecord
from observability.metrics import observe_webhook_lag
from store.models import Action, Invoice, Organisation, Payment, SyncCursor, WebhookEvent
from sync.engine import sync_organisation, upsert_invoices

log = logging.getLogger(__name__)

# Invoices named by webhooks are read by id, many to a call (Xero's `IDs` filter, 150 to a call
# to keep the URL safe; QuickBooks' `Id IN (…)`, 200): up to one call's worth that costs one
# call, where an incremental read costs one per record kind (Xero) and reads more than was
# named. Above it, an incremental read. Contacts, payments and credit notes are always read
# incrementally (the connectors read only invoices by id, and a payment is seen through the
# invoices it settles).
BY_ID_LIMIT = 150
BATCH = 5000
UNCLAIMED = (ledger.ActionStatus.PLANNED, ledger.ActionStatus.FAILED)


@dataclass
class TargetedResult:
    events: int = 0
    mode: str = "none"  # none | by_id | incremental | full
    invoices_read: int = 0
    api_calls: int = 0
    changed_invoice_ids: set[int] = field(default_factory=set)
    closed: list[int] = field(default_factory=list)  # action ids closed: invoice not open
    set_aside: list[int] = field(default_factory=list)  # action ids to plan again: changed



def generation_key(org_id: int) -> str:
    """The Redis counter of an organisation's targeted-sync generations: the web side marks
    the generation a burst of webhooks shares, the job moves it on as it starts."""
    return f"dunwell:webhook-sync:{org_id}:generation"

def pending_events(session: Session, org_id: int) -> list[WebhookEvent]:
    return list(session.scalars(
        select(WebhookEvent).where(WebhookEvent.org_id == org_id,
                                   WebhookEvent.processed_at.is_(None))
        .order_by(WebhookEvent.id).limit(BATCH)))


def _synced_before(session: Session, org_id: int) -> bool:
    return session.scalar(select(SyncCursor.id).where(
        SyncCursor.org_id == org_id, SyncCursor.cursor.is_not(None)).limit(1)) is not None


def apply_webhook_events(session: Session, org: Organisation, connector: Connector,
                         now: datetime) -> TargetedResult:
    """Bring in what the organisation's pending webhook events name; commits."""
    events = pending_events(session, org.id)
    result = TargetedResult(events=len(events))
    if not events:
        return result
    calls_before = connector.calls
    invoice_ids = sorted({e.entity_id for e in events if e.entity == "invoice"})
    others = any(e.entity in ("contact", "payment", "credit_note", "quote") for e in events)
    if others or len(invoice_ids) > BY_ID_LIMIT or not _synced_before(session, org.id):
        synced = sync_organisation(session, org, connector)
        result.mode = synced.mode
        if synced.mode == "full":
            result.changed_invoice_ids = set(session.scalars(
                select(Invoice.id).where(Invoice.org_id == org.id)))
        else:
            result.changed_invoice_ids = set(synced.changed_invoice_ids)
    elif invoice_ids:
        result.mode = "by_id"
        records: list[InvoiceRecord] = connector.invoices_by_id(invoice_ids)
        read = {r.provider_id.lower() for r in records}
        missing = [i for i in invoice_ids if i.lower() not in read]
        if missing:
            log.info("org %s: invoice(s) %s named by a webhook not found; left as they are",
                     org.id, ", ".join(missing[:10]))
        result.invoices_read = len(records)
        result.changed_invoice_ids = upsert_invoices(session, org.id, records)
    result.api_calls = connector.calls - calls_before
    settle_open_actions(session, org, result, now)
    refresh_next_action(session, org, now, result.changed_invoice_ids)
    lags = [(e.provider, (now - e.received_at).total_seconds()) for e in events]
    session.execute(update(WebhookEvent).where(WebhookEvent.id.in_([e.id for e in events]))
                    .values(processed_at=now).execution_options(synchronize_session=False))
    session.commit()
    for provider, lag in lags:
        observe_webhook_lag(provider, lag)
    log.info("org %s: %d webhook event(s) applied (%s, %d API calls): %d invoice(s) changed, "
             "%d action(s) closed, %d set aside to plan again", org.id, len(events),
             result.mode, result.api_calls, len(result.changed_invoice_ids),
             len(result.closed), len(result.set_aside))
    return result


def settle_open_actions(session: Session, org: Organisation, result: TargetedResult,
                        now: datetime) -> None:
    """Close the unclaimed actions of changed invoices that no longer apply as planned."""
    ids = sorted(result.changed_invoice_ids)
    for start in range(0, len(ids), 1000):
        rows = session.execute(
            select(Action, Invoice).join(Invoice, Action.invoice_id == Invoice.id)
            .where(Action.org_id == org.id, Action.invoice_id.in_(ids[start:start + 1000]),
                   Action.status.in_(UNCLAIMED))).all()
        for action, invoice in rows:
            if action.result:
                continue  # part of it already happened: the executor finishes it, re-checking
            if invoice.status != "open":
                reason = invoice.status
                message = (f"Invoice {invoice.number} is {invoice.status} now; "
                           f"{action.kind} cancelled before it ran")
            elif ledger.amount_changed(action, invoice.amount_due):
                reason = ledger.REPLAN_REASON
                message = (f"Invoice {invoice.number} changed ({action.planned_amount_due} -> "
                           f"{invoice.amount_due}); {action.kind} to be planned again")
            else:
                continue
            if not ledger.end_unclaimed(session, action, now, message, reason, by="webhook"):
                continue  # a worker claimed it meanwhile: it re-checks the invoice itself
            (result.closed if reason != ledger.REPLAN_REASON else result.set_aside).append(
                action.id)
            log.info("org %s invoice %s action %s: skipped (%s) after a webhook", org.id,
                     invoice.id, action.key, reason)
    session.expire_all()  # the ORM's copies of the actions are stale after the UPDATEs


COVER_WINDOW = timedelta(hours=48)


def _covered(session: Session, org_id: int, invoice_ids: list[int], now: datetime) -> set[int]:
    """The invoices among these that a stored webhook event named, directly or through a
    payment that settles them, in the last COVER_WINDOW."""
    if not invoice_ids:
        return set()
    recent = session.execute(select(WebhookEvent.entity, WebhookEvent.entity_id).where(
        WebhookEvent.org_id == org_id, WebhookEvent.received_at >= now - COVER_WINDOW,
        WebhookEvent.entity.in_(("invoice", "payment")))).all()
    named = {entity_id for entity, entity_id in recent if entity == "invoice"}
    payments = {entity_id for entity, entity_id in recent if entity == "payment"}
    covered: set[int] = set()
    for invoice_id, provider_id in session.execute(select(Invoice.id, Invoice.provider_id)
                                                   .where(Invoice.id.in_(invoice_ids))):
        if provider_id in named:
            covered.add(invoice_id)
    if payments:
        for paid_id, payment_id in session.execute(
                select(Payment.invoice_id, Payment.provider_id).where(
                    Payment.org_id == org_id, Payment.invoice_id.in_(invoice_ids))):
            if paid_id is not None and payment_id.split(":", 1)[0] in payments:
                covered.add(paid_id)
    return covered


def reconcile(session: Session, org: Organisation, connector: Connector,
              now: datetime) -> dict[str, object]:
    """The nightly check: apply what webhooks said, then one incremental sync. A change it
    finds that no stored webhook event named is one webhooks missed (lost, late, never sent);
    the sync repairs it either way."""
    applied = apply_webhook_events(session, org, connector, now)
    synced = sync_organisation(session, org, connector)
    changed = sorted(synced.changed_invoice_ids)
    missed = sorted(set(changed) - _covered(session, org.id, changed, now))
    numbers = list(session.scalars(select(Invoice.number).where(
        Invoice.id.in_(missed[:50])).order_by(Invoice.number))) if missed else []
    found = TargetedResult(changed_invoice_ids=set(changed))
    settle_open_actions(session, org, found, now)
    refresh_next_action(session, org, now, changed)
    session.commit()
    return {"mode": synced.mode, "counts": synced.counts, "changed": len(changed),
            "missed": len(missed), "missed_invoices": numbers,
            "webhook_events_applied": applied.events,
            "api_calls": synced.api_calls + applied.api_calls,
            "closed": len(found.closed), "set_aside": len(found.set_aside)}
