"""Documents Dunwell made in the books (fee invoices): remembered when made, so that a sync
reading one back does not take it for a debt to chase on its own."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import OwnDocument

FEE_INVOICE = "fee_invoice"


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
    ids = sorted(set(provider_ids))
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        found.update(session.scalars(select(OwnDocument.provider_id).where(
            OwnDocument.org_id == org_id,
            OwnDocument.provider_id.in_(ids[start:start + 500]))))
    return found


def belonging_to(session: Session, org_id: int, invoice_id: int) -> list[OwnDocument]:
    """The fee invoices made for one invoice, to show beside it."""
    return list(session.scalars(select(OwnDocument).where(
        OwnDocument.org_id == org_id, OwnDocument.invoice_id == invoice_id)
        .order_by(OwnDocument.id)))
