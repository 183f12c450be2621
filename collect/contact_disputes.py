"""A customer marked disputed as a whole, with its days: the mark on the contact stops chasing
of all its invoices (rules/, `InvoiceState.disputed`), and each time it is set and cleared is
kept as a dated row (store.models.ContactDispute), so that fees and interest count none of
those days on any of the customer's invoices (their holds, read with the book in
collect/book.py), as for an invoice's own dispute. Setting and clearing it goes through
`set_disputed`, with the person who did it in the activity log; the caller commits."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from collect import ledger
from store.db import among
from store.models import Contact, ContactDispute, User

CHUNK = 1000


def set_disputed(session: Session, contact: Contact, disputed: bool, user: User,
                 now: datetime) -> bool:
    """Mark the customer disputed, or clear the mark, from `now`; True when that changed
    anything. Setting opens a dated dispute, clearing ends the open one; setting what is set
    already writes nothing."""
    open_row = session.scalar(select(ContactDispute).where(
        ContactDispute.contact_id == contact.id, ContactDispute.ended_at.is_(None))
        .order_by(ContactDispute.id.desc()).limit(1))
    if disputed == contact.disputed and disputed == (open_row is not None):
        return False
    contact.disputed = disputed
    if disputed and open_row is None:
        session.add(ContactDispute(org_id=contact.org_id, contact_id=contact.id,
                                   started_at=now, started_by=user.id))
    elif not disputed and open_row is not None:
        open_row.ended_at, open_row.ended_by = now, user.id
    data = {"contact_id": contact.id, "contact": contact.name, "disputed": disputed,
            "user_id": user.id, "by": user.email}
    message = (f"{contact.name} marked disputed by {user.email}" if disputed
               else f"Dispute of {contact.name} cleared by {user.email}")
    ledger.audit(session, contact.org_id, "customer_disputed", message, at=now, data=data)
    return True


def dispute_spans(session: Session, contact_ids: Sequence[int]) -> dict[
        int, list[tuple[datetime, datetime | None]]]:
    """Each customer's disputes, past and present, as (set, cleared or None), oldest first."""
    found: dict[int, list[tuple[datetime, datetime | None]]] = defaultdict(list)
    ids = sorted(set(contact_ids))
    for start in range(0, len(ids), CHUNK):
        for contact_id, began, ended in session.execute(
                select(ContactDispute.contact_id, ContactDispute.started_at,
                       ContactDispute.ended_at)
                .where(among(session, ContactDispute.contact_id, ids[start:start + CHUNK]))
                .order_by(ContactDispute.id)):
            found[contact_id].append((began, ended))
    return found
