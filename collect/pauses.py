"""The pauses in force, as a planning pass reads them (rules/ shape): nothing is planned for a
paused invoice before the day chasing resumes. A collector writes them from the invoice's page
(collect/invoice_actions.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from rules.invoice import Pause
from store.models import InvoicePause

CHUNK = 1000


def pauses_of(session: Session, invoice_ids: Sequence[int], today: date) -> dict[int, Pause]:
    """Each invoice's latest pause still holding today: not resumed by hand, its day to come."""
    found: dict[int, Pause] = {}
    for start in range(0, len(invoice_ids), CHUNK):
        for invoice_id, until in session.execute(
                select(InvoicePause.invoice_id, InvoicePause.until).where(
                    InvoicePause.invoice_id.in_(invoice_ids[start:start + CHUNK]),
                    InvoicePause.ended_at.is_(None),
                    or_(InvoicePause.until.is_(None), InvoicePause.until > today))
                .order_by(InvoicePause.id)):
            found[invoice_id] = Pause(until)
    return found
