"""Full and incremental sync: provider records in, idempotent upserts out.

Each stream's cursor (the provider's updated-at of the newest record read) is committed with
every page, so an interrupted sync resumes where it stopped and a second sync of unchanged
books reads one empty page per stream and writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.models import Contact, Invoice, Organisation, Payment, SyncCursor
from connectors.base import Connector, ContactRecord, InvoiceRecord, PaymentRecord
from sync.streams import STREAMS, Stream

log = logging.getLogger(__name__)

Progress = Callable[[dict[str, int]], None]


@dataclass
class SyncResult:
    mode: str
    counts: dict[str, int] = field(default_factory=dict)
    api_calls: int = 0
    changed_invoice_ids: set[int] = field(default_factory=set)


def _assign(row: Any, values: dict[str, Any]) -> bool:
    """Set only what differs, so an unchanged record issues no UPDATE."""
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed


def _existing(session: Session, model: Any, org_id: int, provider_ids: Iterable[str]) -> dict:
    ids = list(provider_ids)
    if not ids:
        return {}
    rows = session.scalars(
        select(model).where(model.org_id == org_id, model.provider_id.in_(ids))
    )
    return {row.provider_id: row for row in rows}


def _ids_by_provider_id(session: Session, model: Any, org_id: int,
                        provider_ids: Iterable[str | None]) -> dict[str, int]:
    ids = [p for p in set(provider_ids) if p]
    if not ids:
        return {}
    rows = session.execute(
        select(model.provider_id, model.id).where(model.org_id == org_id,
                                                  model.provider_id.in_(ids))
    )
    return {provider_id: row_id for provider_id, row_id in rows}


def upsert_contacts(session: Session, org_id: int, records: Sequence[ContactRecord]) -> set[int]:
    existing = _existing(session, Contact, org_id, (r.provider_id for r in records))
    for record in records:
        values = {"name": record.name, "email": record.email, "is_customer": record.is_customer,
                  "archived": record.archived, "provider_updated_at": record.updated_at}
        row = existing.get(record.provider_id)
        if row is None:
            session.add(Contact(org_id=org_id, provider_id=record.provider_id, **values))
        else:
            _assign(row, values)
    return set()


def upsert_invoices(session: Session, org_id: int, records: Sequence[InvoiceRecord]) -> set[int]:
    existing = _existing(session, Invoice, org_id, (r.provider_id for r in records))
    contacts = _ids_by_provider_id(session, Contact, org_id,
                                   (r.contact_provider_id for r in records))
    changed: list[Invoice] = []
    for record in records:
        values = {
            "number": record.number,
            "contact_provider_id": record.contact_provider_id,
            "contact_id": contacts.get(record.contact_provider_id or ""),
            "currency": record.currency,
            "issue_date": record.issue_date,
            "due_date": record.due_date,
            "total": record.total,
            "amount_paid": record.amount_paid,
            "amount_due": record.amount_due,
            "status": record.status,
            "provider_status": record.provider_status,
            "provider_updated_at": record.updated_at,
        }
        row = existing.get(record.provider_id)
        if record.status == "deleted" and not record.number:
            # A deletion may carry only the id (QuickBooks CDC): keep what we knew of it.
            values = {"status": "deleted", "provider_status": record.provider_status,
                      "provider_updated_at": record.updated_at}
            if row is None:
                continue  # never seen, now gone: nothing to record
        if row is None:
            row = Invoice(org_id=org_id, provider_id=record.provider_id, **values)
            session.add(row)
            changed.append(row)
        elif _assign(row, values):
            changed.append(row)
    session.flush()
    return {row.id for row in changed}


def _allocations(session: Session, org_id: int, payment_ids: set[str]) -> list[Payment]:
    """Every stored allocation (`<payment>:<invoice>`) of the given payments."""
    if not payment_ids:
        return []
    return list(session.scalars(select(Payment).where(
        Payment.org_id == org_id, Payment.status == "active",
        or_(*(Payment.provider_id.startswith(f"{pid}:", autoescape=True)
              for pid in sorted(payment_ids))))))


def upsert_payments(session: Session, org_id: int, records: Sequence[PaymentRecord]) -> set[int]:
    existing = _existing(session, Payment, org_id, (r.provider_id for r in records))
    invoices = _ids_by_provider_id(session, Invoice, org_id,
                                   (r.invoice_provider_id for r in records))
    touched: set[int] = set()
    # A payment that settles several invoices arrives whole: allocations it no longer has
    # are gone, and a deleted payment (its bare id) takes all of them with it.
    whole = {r.provider_id.split(":", 1)[0] for r in records
             if ":" in r.provider_id or (r.status == "deleted" and r.invoice_provider_id is None)}
    current = {r.provider_id for r in records if r.status == "active"}
    for row in _allocations(session, org_id, whole):
        if row.provider_id not in current:
            row.status = "deleted"
            if row.invoice_id is not None:
                touched.add(row.invoice_id)
    records = [r for r in records if ":" in r.provider_id or r.invoice_provider_id is not None
               or r.status != "deleted"]
    for record in records:
        invoice_id = invoices.get(record.invoice_provider_id or "")
        values = {"invoice_id": invoice_id, "invoice_provider_id": record.invoice_provider_id,
                  "amount": record.amount, "currency": record.currency,
                  "paid_on": record.paid_on, "status": record.status,
                  "provider_updated_at": record.updated_at}
        row = existing.get(record.provider_id)
        if row is None:
            session.add(Payment(org_id=org_id, provider_id=record.provider_id, **values))
        elif not _assign(row, values):
            continue
        if invoice_id is not None:
            touched.add(invoice_id)
    return touched


UPSERTS: dict[str, Callable[[Session, int, Any], set[int]]] = {
    "contacts": upsert_contacts,
    "invoices": upsert_invoices,
    "payments": upsert_payments,
}


def _cursor(session: Session, org_id: int, stream: Stream) -> SyncCursor:
    cursor = session.scalar(
        select(SyncCursor).where(SyncCursor.org_id == org_id, SyncCursor.stream == stream.name)
    )
    if cursor is None:
        cursor = SyncCursor(org_id=org_id, stream=stream.name, cursor=None)
        session.add(cursor)
    return cursor


def sync_organisation(session: Session, org: Organisation, connector: Connector,
                      on_progress: Progress | None = None) -> SyncResult:
    """Bring the organisation's contacts, invoices and payments up to date with its books."""
    cursors = {stream.name: _cursor(session, org.id, stream) for stream in STREAMS}
    full = all(c.cursor is None for c in cursors.values())
    result = SyncResult(mode="full" if full else "incremental")
    calls_before = connector.calls
    if full:
        details = connector.organisation()
        _assign(org, {"name": details.name or org.name, "country": details.country,
                      "timezone": details.timezone, "base_currency": details.base_currency})
    session.commit()

    for stream in STREAMS:
        cursor = cursors[stream.name]
        result.counts[stream.name] = 0
        pages = getattr(connector, stream.connector_method)(cursor.cursor)
        for page in pages:
            result.changed_invoice_ids |= UPSERTS[stream.name](session, org.id, page)
            newest = _newest(page, cursor.cursor)
            if newest != cursor.cursor:
                cursor.cursor = newest
            session.commit()  # the bookmark lands with the page it covers
            result.counts[stream.name] += len(page)
            if on_progress is not None:
                on_progress(dict(result.counts))
    result.api_calls = connector.calls - calls_before
    log.info("org %s: %s sync read %s in %s API calls; %s invoices changed", org.id,
             result.mode, result.counts, result.api_calls, len(result.changed_invoice_ids))
    return result


def _newest(page: Sequence[Any], current: datetime | None) -> datetime | None:
    stamps = [r.updated_at for r in page if r.updated_at is not None]
    if current is not None:
        stamps.append(current)
    return max(stamps) if stamps else None
