"""A long page goes to PostgreSQL by COPY into a temporary table and one INSERT ... SELECT (or
UPDATE ... FROM) per page; a short one as arrays; SQLite by its own statements. Whatever the
path, the stored rows are those the records say: a page written twice changes nothing the
second time, a changed record changes its row (and only its row), a deletion that carries only
its id keeps what was known, and new invoices find their contacts as before."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
INVOICES = 120  # above sync.engine.COPY_FROM_ROWS: the long-page path on PostgreSQL
CONTACTS = 60


def _contacts(n: int = CONTACTS):  # type: ignore[no-untyped-def]
    from connectors.base import ContactRecord

    return [ContactRecord(provider_id=f"C-{i}", name=f"Customer {i} \"Ltd\" \\ Co",
                          email=None if i % 7 == 0 else f"c{i}@example.com",
                          is_customer=i % 5 != 0, archived=i % 11 == 0,
                          updated_at=T0 + timedelta(minutes=i)) for i in range(n)]


def _invoices(n: int = INVOICES):  # type: ignore[no-untyped-def]
    from connectors.base import InvoiceRecord

    records = []
    for i in range(n):
        # Contacts C-0 .. C-59 are synced; C-60 .. C-69 are not (yet); some have none at all.
        contact = None if i % 13 == 0 else f"C-{i % 70}"
        total = Decimal("1000.00") + i
        paid = Decimal("0.00") if i % 3 else Decimal("250.50")
        records.append(InvoiceRecord(
            provider_id=f"I-{i}", number=f"INV-{i:04d}", contact_provider_id=contact,
            currency="JPY" if i % 17 == 0 else "GBP",
            issue_date=date(2026, 1, 1) + timedelta(days=i % 40),
            due_date=None if i % 19 == 0 else date(2026, 2, 1) + timedelta(days=i % 40),
            total=total, amount_paid=paid, amount_due=total - paid,
            status="open" if i % 23 else "paid", provider_status="AUTHORISED",
            updated_at=T0 + timedelta(seconds=i)))
    return records


def _payments(invoices: list[Any]):  # type: ignore[no-untyped-def]
    from connectors.base import PaymentRecord

    return [PaymentRecord(provider_id=f"P-{i}", invoice_provider_id=record.provider_id,
                          amount=Decimal("10.25") + i, currency="GBP",
                          paid_on=date(2026, 2, 10), status="active",
                          updated_at=T0 + timedelta(hours=1, seconds=i))
            for i, record in enumerate(invoices[:80])]


def _org(session, name: str) -> int:  # type: ignore[no-untyped-def]
    from store.models import Organisation

    org = Organisation(name=name, country="GB", timezone="Europe/London", base_currency="GBP")
    session.add(org)
    session.commit()
    return int(org.id)


def _write(session, org_id: int, kind: str, records: list[Any], page: int) -> set[int]:  # type: ignore[no-untyped-def]
    """Write `records` in pages of `page`, committing each as a sync does; the ids returned."""
    from sync.engine import UPSERTS

    changed: set[int] = set()
    for start in range(0, len(records), page):
        changed |= UPSERTS[kind](session, org_id, records[start:start + page])
        session.commit()
    return changed


def _stored(session, org_id: int) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Every synced row of the organisation by provider id, with its links as provider ids
    (comparable across organisations) and its own id."""
    from store.models import Contact, Invoice, Payment

    session.expire_all()
    contacts = {c.id: c.provider_id for c in session.scalars(
        select(Contact).where(Contact.org_id == org_id))}
    invoices = {i.id: i.provider_id for i in session.scalars(
        select(Invoice).where(Invoice.org_id == org_id))}
    found: dict[str, dict[str, Any]] = {}
    for model, fields in (
            (Contact, ("name", "email", "is_customer", "archived", "provider_updated_at",
                       "excluded", "disputed", "is_business", "stop_service", "on_hold")),
            (Invoice, ("number", "contact_provider_id", "currency", "issue_date", "due_date",
                       "total", "amount_paid", "amount_due", "status", "provider_status",
                       "provider_updated_at", "next_action_at", "disputed")),
            (Payment, ("invoice_provider_id", "amount", "currency", "paid_on", "status",
                       "provider_updated_at"))):
        for row in session.scalars(select(model).where(model.org_id == org_id)):
            values = {name: getattr(row, name) for name in fields}
            if model is Invoice:
                values["contact"] = contacts.get(row.contact_id)
            if model is Payment:
                values["invoice"] = invoices.get(row.invoice_id)
            found[f"{model.__tablename__}:{row.provider_id}"] = {"id": row.id, **values}
    return found


def _without_ids(rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {key: {k: v for k, v in row.items() if k != "id"} for key, row in rows.items()}


def _expected_invoice(record: Any, synced_contacts: set[str]) -> dict[str, Any]:
    return {"number": record.number, "contact_provider_id": record.contact_provider_id,
            "currency": record.currency, "issue_date": record.issue_date,
            "due_date": record.due_date, "total": record.total,
            "amount_paid": record.amount_paid, "amount_due": record.amount_due,
            "status": record.status, "provider_status": record.provider_status,
            "provider_updated_at": record.updated_at, "next_action_at": None,
            "disputed": False,
            "contact": record.contact_provider_id
            if record.contact_provider_id in synced_contacts else None}


def test_a_long_page_stores_what_the_records_say_and_a_second_write_changes_nothing(app) -> None:  # type: ignore[no-untyped-def]
    from store.db import db

    contacts, invoices = _contacts(), _invoices()
    payments = _payments(invoices)
    with app.app_context():
        session = db.session
        org_id = _org(session, "Bulk Ltd")
        assert _write(session, org_id, "contacts", contacts, 1000) == set()
        first = _write(session, org_id, "invoices", invoices, 1000)
        touched = _write(session, org_id, "payments", payments, 1000)
        stored = _stored(session, org_id)

        synced = {c.provider_id for c in contacts}
        assert len(first) == INVOICES  # every invoice is new, and said so
        assert {stored[f"invoices:{r.provider_id}"]["id"] for r in invoices} == first
        for record in invoices:
            row = _without_ids({"r": stored[f"invoices:{record.provider_id}"]})["r"]
            assert row == _expected_invoice(record, synced), record.provider_id
        for record in contacts:
            row = stored[f"contacts:{record.provider_id}"]
            assert (row["name"], row["email"], row["is_customer"], row["archived"],
                    row["provider_updated_at"]) == (record.name, record.email,
                                                    record.is_customer, record.archived,
                                                    record.updated_at)
            assert (row["excluded"], row["disputed"], row["is_business"], row["stop_service"],
                    row["on_hold"]) == (False, False, True, False, False)  # the defaults
        for record in payments:
            row = stored[f"payments:{record.provider_id}"]
            assert (row["invoice"], row["amount"], row["paid_on"], row["status"],
                    row["provider_updated_at"]) == (record.invoice_provider_id, record.amount,
                                                    record.paid_on, "active", record.updated_at)
        assert touched == {stored[f"invoices:{p.invoice_provider_id}"]["id"] for p in payments}

        # The same pages again: nothing is reported changed and no row moves.
        assert _write(session, org_id, "contacts", contacts, 1000) == set()
        assert _write(session, org_id, "invoices", invoices, 1000) == set()
        assert _write(session, org_id, "payments", payments, 1000) == set()
        assert _stored(session, org_id) == stored


def test_changed_records_change_only_their_rows_on_every_path(app) -> None:  # type: ignore[no-untyped-def]
    """Long pages (COPY on PostgreSQL) and pages of 7 (arrays) end in the same rows: the short
    path is the one every page took before pages went by COPY."""
    from connectors.base import InvoiceRecord
    from store.db import db

    contacts, invoices = _contacts(), _invoices()
    payments = _payments(invoices)
    later = T0 + timedelta(days=3)
    # 70 invoices part paid (a long page of UPDATEs), one deleted with only its id (QuickBooks
    # CDC), two new, one whose contact was synced since; the rest unchanged.
    changed = [replace(r, amount_paid=r.amount_paid + 100, amount_due=r.amount_due - 100,
                       updated_at=later) for r in invoices[:70]]
    gone = InvoiceRecord(provider_id="I-80", number="", contact_provider_id=None,
                         currency="", issue_date=None, due_date=None, total=Decimal(0),
                         amount_paid=Decimal(0), amount_due=Decimal(0), status="deleted",
                         provider_status="DELETED", updated_at=later)
    new = [replace(invoices[1], provider_id=f"I-new-{n}", number=f"NEW-{n}",
                   updated_at=later) for n in range(2)]
    second_page = [*changed, gone, *new, *invoices[70:80], *invoices[81:]]
    late_contact = _contacts(70)[60:]  # C-60 .. C-69 arrive after their invoices

    results: dict[int, dict[str, dict[str, Any]]] = {}
    with app.app_context():
        session = db.session
        for page in (1000, 7):
            org_id = _org(session, f"Paged by {page}")
            _write(session, org_id, "contacts", contacts, page)
            _write(session, org_id, "invoices", invoices, page)
            _write(session, org_id, "payments", payments, page)
            before = _stored(session, org_id)
            _write(session, org_id, "contacts", late_contact, page)
            reported = _write(session, org_id, "invoices", second_page, page)
            after = _stored(session, org_id)

            moved = {key for key in after if after[key] != before.get(key)}
            expected_moved = ({f"invoices:{r.provider_id}" for r in changed}
                              | {"invoices:I-80"} | {f"invoices:{r.provider_id}" for r in new}
                              | {f"contacts:{c.provider_id}" for c in late_contact}
                              # their contact is stored now: the page links them
                              | {f"invoices:{r.provider_id}" for r in second_page
                                 if r.contact_provider_id in {"C-60", "C-61", "C-62", "C-63",
                                                              "C-64", "C-65", "C-66", "C-67",
                                                              "C-68", "C-69"}})
            assert moved == expected_moved
            assert reported == {after[key]["id"] for key in expected_moved
                                if key.startswith("invoices:")}
            synced = {c.provider_id for c in [*contacts, *late_contact]}
            for record in [*changed, *new]:
                row = _without_ids({"r": after[f"invoices:{record.provider_id}"]})["r"]
                assert row == _expected_invoice(record, synced)
            deleted = after["invoices:I-80"]
            assert (deleted["status"], deleted["provider_status"], deleted["provider_updated_at"],
                    deleted["number"], deleted["total"]) == (
                "deleted", "DELETED", later, invoices[80].number, invoices[80].total)
            assert all(after[key]["id"] == before[key]["id"] for key in before)
            results[page] = _without_ids(after)
            # Once more: nothing changes.
            assert _write(session, org_id, "invoices", second_page, page) == set()
            assert _stored(session, org_id) == after
    assert results[1000] == results[7]


def test_a_row_the_session_holds_sees_the_new_values(app) -> None:  # type: ignore[no-untyped-def]
    """The executor holds an invoice while a page rewrites it: its object sees the new values."""
    from store.db import db
    from store.models import Invoice
    from sync.engine import upsert_invoices

    invoices = _invoices()
    with app.app_context():
        session = db.session
        org_id = _org(session, "Held Ltd")
        _write(session, org_id, "invoices", invoices, 1000)
        held = session.scalars(select(Invoice).where(Invoice.org_id == org_id,
                                                     Invoice.provider_id == "I-5")).one()
        page = [replace(r, status="paid", amount_paid=r.total, amount_due=Decimal("0.00"),
                        updated_at=T0 + timedelta(days=1)) for r in invoices]
        changed = upsert_invoices(session, org_id, page)
        assert held.id in changed and len(changed) == INVOICES
        assert (held.status, held.amount_due) == ("paid", Decimal("0.00"))
        session.commit()
        rows = _stored(session, org_id)
        assert {rows[f"invoices:{r.provider_id}"]["status"] for r in page} == {"paid"}
