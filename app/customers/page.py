"""What the customer's page shows beside credit and risk: what is owed per currency, promises
kept and broken, chasing paused, and how Dunwell chases the customer (the settings that were
a page of their own, app/settings/contact_overrides.py)."""

from __future__ import annotations

import secrets
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import or_, select

from app.organisations.services import may_in
from app.settings import contact_overrides
from collect import invoice_actions
from collect.book import policy_for
from store.db import db
from store.models import Contact, Invoice, InvoicePause, Organisation, PaymentPromise


@dataclass(frozen=True)
class Owed:
    currency: str
    amount: Decimal
    invoices: int


def owed_per_currency(invoices: list[Invoice]) -> list[Owed]:
    """What the customer owes on open invoices, per currency (never added across them)."""
    amounts: dict[str, Decimal] = defaultdict(Decimal)
    counts: Counter[str] = Counter()
    for invoice in invoices:
        if invoice.amount_due > 0:  # compared in Python: SQLite keeps money as text
            amounts[invoice.currency] += invoice.amount_due
            counts[invoice.currency] += 1
    return [Owed(c, amounts[c], counts[c]) for c in sorted(amounts)]


def paused_invoices(org: Organisation, invoices: list[Invoice],
                    today: date) -> list[tuple[Invoice, InvoicePause]]:
    """The open invoices whose chasing is paused today, with their pause."""
    by_id = {invoice.id: invoice for invoice in invoices}
    if not by_id:
        return []
    found: dict[int, InvoicePause] = {}
    for pause in db.session.scalars(select(InvoicePause).where(
            InvoicePause.org_id == org.id, InvoicePause.invoice_id.in_(list(by_id)),
            InvoicePause.ended_at.is_(None),
            or_(InvoicePause.until.is_(None), InvoicePause.until > today))
            .order_by(InvoicePause.id)):
        found[pause.invoice_id] = pause
    return [(by_id[i], found[i]) for i in sorted(found, key=lambda i: by_id[i].due_date
                                                  or date.min)]


def customer_page(org: Organisation, contact: Contact, today: date) -> dict[str, Any]:
    """The page's parts beyond credit and risk (the template's names)."""
    session = db.session()
    invoices = contact_overrides.open_invoices(session, org, contact)
    promises = list(session.scalars(select(PaymentPromise).where(
        PaymentPromise.org_id == org.id, PaymentPromise.contact_id == contact.id)
        .order_by(PaymentPromise.id.desc()).limit(50)))
    numbers = {invoice.id: invoice.number for invoice in invoices}
    numbers.update(session.execute(select(Invoice.id, Invoice.number).where(
        Invoice.org_id == org.id,
        Invoice.id.in_([p.invoice_id for p in promises if p.invoice_id not in numbers]))).all())
    return {
        "owed": owed_per_currency(invoices), "promises": promises,
        "promise_counts": Counter(p.status for p in promises), "promise_numbers": numbers,
        "paused": paused_invoices(org, invoices, today),
        "may_act": may_in(org, "customers.pause"),
        # What the actions on the customer's invoices offer (collect/customer_workbench.py).
        "act_invoices": [i for i in invoices if i.amount_due > 0 and i.due_date is not None],
        "nonce": secrets.token_hex(16), "today": today,
        "promise_max_days": invoice_actions.PROMISE_MAX_DAYS,
        # How Dunwell chases the customer (customers/_collection_settings.html).
        "values": contact_overrides.form_values(contact, policy_for(session, org)),
        "errors": {}, "can_edit": may_in(org, "settings.policy"),
        "plans": contact_overrides.active_plans(session, org, contact),
        "invoices": invoices, "summary": contact_overrides.summary(contact),
    }
