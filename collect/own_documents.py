"""Documents Dunwell made in the books (fee invoices, and the credit notes of early-payment
discounts): remembered when made, so that a sync reading one back does not take it for a debt
to chase on its own, and so that each is shown with the invoice it belongs to."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import Action, Invoice, OwnDocument

FEE_INVOICE = "fee_invoice"
CREDIT_NOTE = "credit_note"
BATCH = 500
T = TypeVar("T")


def remember(session: Session, org_id: int, provider_id: str, invoice_id: int | None,
             kind: str = FEE_INVOICE) -> None:
    """Record one document (once; the caller commits, with the part that made it)."""
    known = session.scalar(select(OwnDocument.id).where(
        OwnDocument.org_id == org_id, OwnDocument.provider_id == provider_id))
    if known is None:
        session.add(OwnDocument(org_id=org_id, provider_id=provider_id, kind=kind,
                                invoice_id=invoice_id))


def among(session: Session, org_id: int, provider_ids: Iterable[str]) -> set[str]:
    """Which of these provider ids are documents Dunwell made."""
    return set(made_for(session, org_id, provider_ids))


def made_for(session: Session, org_id: int, provider_ids: Iterable[str]
             ) -> dict[str, int | None]:
    """Of these provider ids, those of documents Dunwell made, each with the id of the invoice
    it belongs to (None where that invoice is gone)."""
    ids = sorted(set(provider_ids))
    found: dict[str, int | None] = {}
    for start in range(0, len(ids), BATCH):
        for provider_id, invoice_id in session.execute(
                select(OwnDocument.provider_id, OwnDocument.invoice_id).where(
                    OwnDocument.org_id == org_id,
                    OwnDocument.provider_id.in_(ids[start:start + BATCH]))):
            found[provider_id] = invoice_id
    return found


def beside_their_invoices(session: Session, org_id: int, items: Sequence[T],
                          invoice_of: Callable[[T], Invoice]) -> list[tuple[T, str | None]]:
    """A list of invoices with each fee invoice Dunwell made right after the invoice it is for
    (where that is listed too): a part of that debt, not a debt of its own. Each item comes
    with the number of the invoice it is for (None: not a document of ours)."""
    made = made_for(session, org_id, (invoice_of(item).provider_id for item in items))
    if not made:
        return [(item, None) for item in items]
    numbers = {invoice_id: number for invoice_id, number in session.execute(
        select(Invoice.id, Invoice.number).where(
            Invoice.org_id == org_id, Invoice.id.in_(sorted({i for i in made.values() if i}))))}
    listed = {invoice_of(item).id for item in items}
    children: dict[int, list[tuple[T, str | None]]] = {}
    ordered: list[tuple[T, str | None]] = []
    for item in items:
        invoice = invoice_of(item)
        if invoice.provider_id not in made:
            continue
        parent = made[invoice.provider_id]
        entry = (item, numbers.get(parent, "") if parent is not None else "")
        if parent is not None and parent in listed:
            children.setdefault(parent, []).append(entry)
    placed = {id(entry[0]) for group in children.values() for entry in group}
    for item in items:
        if id(item) in placed:
            continue
        invoice = invoice_of(item)
        number = None
        if invoice.provider_id in made:
            parent = made[invoice.provider_id]
            number = numbers.get(parent, "") if parent is not None else ""
        ordered += [(item, number), *children.get(invoice.id, [])]
    return ordered


@dataclass(frozen=True)
class Attached:
    """A document Dunwell made, as the invoice it belongs to shows it."""

    kind: str  # FEE_INVOICE | CREDIT_NOTE
    provider_id: str
    # A fee invoice's synced copy (None until a sync reads it back; a credit note has none).
    document: Invoice | None
    credited: Decimal | None  # a credit note: what it took off the invoice
    made_at: datetime

    @property
    def owed(self) -> Decimal:
        """What the customer still owes on it (a credit note: nothing)."""
        if self.document is None or self.document.status != "open":
            return Decimal(0)
        return self.document.amount_due


def attached_to(session: Session, org_id: int, invoice_ids: Sequence[int]
                ) -> dict[int, list[Attached]]:
    """The documents Dunwell made for each of these invoices, oldest first: three queries for
    any number of invoices."""
    rows = list(session.scalars(select(OwnDocument).where(
        OwnDocument.org_id == org_id, OwnDocument.invoice_id.in_(sorted(set(invoice_ids))))
        .order_by(OwnDocument.id))) if invoice_ids else []
    synced = {i.provider_id: i for i in session.scalars(select(Invoice).where(
        Invoice.org_id == org_id,
        Invoice.provider_id.in_([r.provider_id for r in rows if r.kind == FEE_INVOICE])))}
    credited: dict[str, Decimal] = {}
    credit_invoices = sorted({r.invoice_id for r in rows if r.kind == CREDIT_NOTE
                              and r.invoice_id is not None})
    if credit_invoices:
        for result, amount in session.execute(select(Action.result, Action.amount).where(
                Action.org_id == org_id, Action.kind == "discount",
                Action.invoice_id.in_(credit_invoices))):
            note = (result or {}).get("credit_note_id")
            if note and amount is not None:
                credited[str(note)] = amount
    found: dict[int, list[Attached]] = {}
    for row in rows:
        assert row.invoice_id is not None
        found.setdefault(row.invoice_id, []).append(Attached(
            kind=row.kind, provider_id=row.provider_id, document=synced.get(row.provider_id),
            credited=credited.get(row.provider_id), made_at=row.created_at))
    return found
