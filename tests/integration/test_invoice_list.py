"""The organisation's invoice list on a book crafted row by row: search, filters, sorts, keyset
pages and the totals per currency of the filtered set, read by collect/invoice_list.py and
shown on the organisation's page; the headline figures per currency."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from tests.integration import flows
from tests.integration.conftest import PASSWORD, create_user

pytestmark = pytest.mark.db

OWNER = "owner@example.com"
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # the test clock
TODAY = NOW.date()


@dataclass
class Book:
    org_id: int
    other_org_id: int
    ids: dict[str, int]  # invoice number -> id
    contacts: dict[str, int]


def _invoice(db, org_id: int, number: str, contact_id: int | None, due_days_ago: int,  # type: ignore[no-untyped-def]
             amount_due: str, status: str = "open", currency: str = "GBP",
             next_action_at: datetime | None = None, disputed: bool = False) -> int:
    from store.models import Invoice

    due = TODAY - timedelta(days=due_days_ago)
    invoice = Invoice(org_id=org_id, provider_id=f"p-{org_id}-{number}", number=number,
                      contact_id=contact_id, currency=currency,
                      issue_date=due - timedelta(days=30), due_date=due,
                      total=Decimal("1000.00"),
                      amount_paid=Decimal("1000.00") - Decimal(amount_due),
                      amount_due=Decimal(amount_due), status=status,
                      next_action_at=next_action_at, disputed=disputed)
    db.session.add(invoice)
    db.session.flush()
    return invoice.id


def craft_book(app) -> Book:  # type: ignore[no-untyped-def]
    """Harbour Coffee's book, today 24 November 2026:

    GBP: INV-001 Alder 100.00 due 10 days ago, a reminder planned an hour ago (due now);
         INV-002 Alder 250.50 due 45 days ago, a fee planned for tomorrow;
         INV-003 Birch 75.00 due 100 days ago, disputed;
         INV-004 Birch 300.00 not yet due, promised to be paid in a week;
         INV-005 Cedar 0 paid; INV-006 Cedar 40.00 due 70 days ago, its next check past
         but nothing in the ledger (not due now).
    EUR: INV-101 Alder 500.00 due 20 days ago; INV-102 Cedar 1,200.00 not yet due.
    USD: INV-201 Birch 32.25 due 95 days ago.
    Another organisation holds INV-001 too (never shown)."""
    from store.db import db
    from store.models import (
        Action,
        Contact,
        Membership,
        Organisation,
        PaymentPromise,
        User,
    )

    create_user(app, OWNER, PASSWORD)
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == OWNER))
        org = Organisation(name="Harbour Coffee", country="GB", timezone="Europe/London",
                           base_currency="GBP")
        other = Organisation(name="Someone Else", country="GB", timezone="Europe/London",
                             base_currency="GBP")
        db.session.add_all([org, other])
        db.session.flush()
        db.session.add(Membership(user_id=user_id, org_id=org.id, role="owner"))
        contacts = {}
        for name in ("Alder Joinery", "Birch Bakery", "Cedar Cafe"):
            contact = Contact(org_id=org.id, provider_id=f"c-{name}", name=name,
                              email=f"{name.split()[0].lower()}@example.com")
            db.session.add(contact)
            db.session.flush()
            contacts[name] = contact.id
        alder, birch, cedar = contacts.values()
        ids = {
            "INV-001": _invoice(db, org.id, "INV-001", alder, 10, "100.00",
                                next_action_at=NOW - timedelta(hours=1)),
            "INV-002": _invoice(db, org.id, "INV-002", alder, 45, "250.50",
                                next_action_at=NOW + timedelta(days=1)),
            "INV-003": _invoice(db, org.id, "INV-003", birch, 100, "75.00", disputed=True),
            "INV-004": _invoice(db, org.id, "INV-004", birch, -5, "300.00"),
            "INV-005": _invoice(db, org.id, "INV-005", cedar, 20, "0", status="paid"),
            "INV-006": _invoice(db, org.id, "INV-006", cedar, 70, "40.00",
                                next_action_at=NOW - timedelta(days=2)),
            "INV-101": _invoice(db, org.id, "INV-101", alder, 20, "500.00", currency="EUR"),
            "INV-102": _invoice(db, org.id, "INV-102", cedar, -10, "1200.00", currency="EUR"),
            "INV-201": _invoice(db, org.id, "INV-201", birch, 95, "32.25", currency="USD"),
        }
        _invoice(db, other.id, "INV-001", None, 10, "9999.00")
        db.session.add_all([
            Action(org_id=org.id, invoice_id=ids["INV-001"], key="k1", kind="reminder",
                   scheduled_for=NOW - timedelta(hours=1), status="planned"),
            Action(org_id=org.id, invoice_id=ids["INV-001"], key="k0", kind="reminder",
                   scheduled_for=NOW - timedelta(days=5), status="done"),
            Action(org_id=org.id, invoice_id=ids["INV-002"], key="k2", kind="fee",
                   scheduled_for=NOW + timedelta(days=1), status="planned"),
            PaymentPromise(org_id=org.id, contact_id=birch, invoice_id=ids["INV-004"],
                           pay_by=TODAY + timedelta(days=7), amount=Decimal("300.00"),
                           currency="GBP", paid_before=Decimal("700.00"), status="open"),
        ])
        db.session.commit()
        return Book(org.id, other.id, ids, contacts)


def _client(app):  # type: ignore[no-untyped-def]
    client = app.test_client()
    page = client.get("/signin")
    answer = client.post("/signin", data={"csrf_token": flows.csrf_token(page.text),
                                          "email": OWNER, "password": PASSWORD})
    assert answer.status_code == 302, answer.text[:300]
    return client


def _page(app, book: Book, **args: str):  # type: ignore[no-untyped-def]
    from collect.invoice_list import InvoiceQuery, invoice_page
    from store.db import db

    with app.app_context():
        found = invoice_page(db.session(), book.org_id, InvoiceQuery.from_args(args), NOW,
                             TODAY)
        db.session.remove()
    return found


def _numbers(found) -> list[str]:  # type: ignore[no-untyped-def]
    return [row.invoice.number for row in found.rows]


def test_search_filters_and_totals_per_currency(app) -> None:  # type: ignore[no-untyped-def]
    book = craft_book(app)
    everything = _page(app, book, status="all")
    assert everything.count == 9 and len(everything.rows) == 9
    totals = {t.currency: (t.count, t.amount_due, t.overdue) for t in everything.totals}
    assert totals == {"GBP": (6, Decimal("765.50"), Decimal("465.50")),
                      "EUR": (2, Decimal("1700.00"), Decimal("500.00")),
                      "USD": (1, Decimal("32.25"), Decimal("32.25"))}

    assert _numbers(_page(app, book, q="inv-10")) == ["INV-101", "INV-102"]  # the number
    birch = _page(app, book, q="birch", sort="number")  # the customer's name
    assert _numbers(birch) == ["INV-003", "INV-004", "INV-201"]
    assert {t.currency: t.amount_due for t in birch.totals} == {
        "GBP": Decimal("375.00"), "USD": Decimal("32.25")}
    assert _numbers(_page(app, book, q="250.5")) == ["INV-002"]  # the amount, as typed
    assert _numbers(_page(app, book, q="£1,200")) == ["INV-102"]
    assert _numbers(_page(app, book, q="no such thing")) == []
    assert _page(app, book, q="%").count == 0  # a wildcard is a character, not a pattern

    assert _numbers(_page(app, book, bucket="90+", sort="number")) == ["INV-003", "INV-201"]
    assert _numbers(_page(app, book, bucket="31-60")) == ["INV-002"]
    assert _numbers(_page(app, book, bucket="current", status="open", sort="number")) == [
        "INV-004", "INV-102"]
    assert _numbers(_page(app, book, status="paid")) == ["INV-005"]
    cedar = _page(app, book, customer=str(book.contacts["Cedar Cafe"]), sort="number")
    assert _numbers(cedar) == ["INV-006", "INV-102"]  # open ones, unless asked for all
    cedar = _page(app, book, customer=str(book.contacts["Cedar Cafe"]), sort="number",
                  status="all")
    assert _numbers(cedar) == ["INV-005", "INV-006", "INV-102"]
    assert _page(app, book).count == 8  # the working set: open invoices
    assert _numbers(_page(app, book, who="cedar", sort="number")) == ["INV-006", "INV-102"]
    assert _numbers(_page(app, book, next="fee")) == ["INV-002"]
    assert _numbers(_page(app, book, next="reminder")) == ["INV-001"]
    assert _numbers(_page(app, book, flag="disputed")) == ["INV-003"]
    assert _numbers(_page(app, book, flag="promised")) == ["INV-004"]
    # Due now: only where the ledger holds an action whose time has come, not INV-006,
    # whose next check has passed with nothing to do.
    due = _page(app, book, due_now="1")
    assert _numbers(due) == ["INV-001"]
    assert [(r.invoice.number, r.due_now) for r in everything.rows if r.due_now] == [
        ("INV-001", True)]
    row = next(r for r in everything.rows if r.invoice.number == "INV-001")
    assert row.next_action is not None and row.next_action.kind == "reminder"
    assert row.reminders_sent == 1 and row.contact_name == "Alder Joinery"
    assert next(r for r in everything.rows if r.invoice.number == "INV-003").disputed
    assert next(r for r in everything.rows
                if r.invoice.number == "INV-004").promised_by == TODAY + timedelta(days=7)
    # Nonsense in the query string is ignored, never an error.
    assert _page(app, book, bucket="x", status="y", sort="z", customer="abc",
                 after="garbage").count == 8


def test_sorts_and_keyset_pages_cover_every_invoice_once(app) -> None:  # type: ignore[no-untyped-def]
    book = craft_book(app)
    assert _numbers(_page(app, book, sort="amount", status="all"))[:3] == [
        "INV-005", "INV-201", "INV-006"]
    assert _numbers(_page(app, book, sort="amount", order="desc"))[:2] == ["INV-102",
                                                                            "INV-101"]
    assert _numbers(_page(app, book, sort="due"))[0] == "INV-003"
    assert _numbers(_page(app, book, sort="customer"))[0] == "INV-001"
    # Attention: the soonest next action first, then the longest overdue.
    assert _numbers(_page(app, book)) == ["INV-006", "INV-001", "INV-002", "INV-003",
                                          "INV-201", "INV-101", "INV-004", "INV-102"]

    for sort in ("attention", "due", "amount", "number", "customer", "issued"):
        for order in ("", "desc"):
            whole = _numbers(_page(app, book, sort=sort, order=order, status="all"))
            seen, after, pages = [], None, []
            while True:
                args = {"sort": sort, "order": order, "per_page": "2", "status": "all"}
                if after:
                    args["after"] = after
                found = _page(app, book, **args)
                pages.append(found)
                seen += _numbers(found)
                assert found.count == 9  # the count is the filtered set's, on every page
                after = found.next_cursor
                if after is None:
                    break
            assert seen == whole, (sort, order)
            assert len(pages) == 5
            # Back from the last page, by the previous cursors, to the first.
            back, before = [], pages[-1].previous_cursor
            while before:
                found = _page(app, book, sort=sort, order=order, per_page="2", before=before,
                              status="all")
                back = _numbers(found) + back
                before = found.previous_cursor
            assert back + _numbers(pages[-1]) == whole, (sort, order)


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_the_page_lists_links_and_shows_every_currency(app) -> None:  # type: ignore[no-untyped-def]
    book = craft_book(app)
    client = _client(app)
    page = client.get(f"/orgs/{book.org_id}")
    assert page.status_code == 200
    html = page.text
    # Each row links to its invoice, and its customer to the customer's page.
    assert f'href="/orgs/{book.org_id}/invoices/{book.ids["INV-002"]}"' in html
    assert f'href="/orgs/{book.org_id}/customers/{book.contacts["Birch Bakery"]}"' in html
    # The headline: one line per currency, none left out.
    card = _text(html.split('id="open-totals"')[1].split("</div>")[0])
    assert "Owed £765.50 · Overdue £465.50" in card
    assert "Owed €1,700.00 · Overdue €500.00" in card
    assert "Owed US$32.25 · Overdue US$32.25" in card
    totals = _text(html.split('id="invoice-totals"')[1].split("</table>")[0])
    assert "GBP 5 £765.50 £465.50" in totals and "EUR 2 €1,700.00 €500.00" in totals
    assert "8 invoices" in html
    # "Due now" shows on the one invoice with an action due, with its kind.
    listing = html.split('id="invoice-list"')[1]
    assert listing.count("Due now") == 1
    row = listing.split(f'data-invoice="{book.ids["INV-001"]}"')[1].split("</tr>")[0]
    assert "Due now" in row and "Reminder" in row
    assert "9999" not in listing  # the other organisation's invoice

    filtered = client.get(f"/orgs/{book.org_id}", query_string={"q": "birch"}).text
    assert "3 invoices" in filtered and "INV-001" not in filtered.split('id="invoice-list"')[1]
    paged = client.get(f"/orgs/{book.org_id}", query_string={"per_page": "4"}).text
    nxt = re.search(r'rel="next" href="([^"]+)"', paged)
    assert nxt is not None
    second = client.get(nxt.group(1).replace("&amp;", "&")).text
    assert 'rel="prev"' in second and "8 invoices" in second
    assert client.get(f"/orgs/{book.other_org_id}").status_code == 404


def test_dashboard_and_practice_show_every_currency(app) -> None:  # type: ignore[no-untyped-def]
    book = craft_book(app)
    from store.db import db
    from store.models import Membership, User

    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == OWNER))
        db.session.execute(Membership.__table__.update().where(
            Membership.user_id == user_id).values(role="accountant"))
        db.session.commit()
    client = _client(app)
    dashboard = client.get(f"/orgs/{book.org_id}/dashboard").text
    owed = _text(dashboard.split('id="owed"')[1].split("</div>")[0])
    overdue = _text(dashboard.split('id="overdue"')[1].split("</div>")[0])
    assert all(figure in owed for figure in ("£765.50", "€1,700.00", "US$32.25")), owed
    assert all(figure in overdue for figure in ("£465.50", "€500.00", "US$32.25")), overdue
    practice = client.get("/practice").text
    row = _text(practice.split(f'data-org="{book.org_id}"')[1].split("</tr>")[0])
    # The practice view lists many books: written without one book's region (en: $).
    assert "£465.50" in row and "€500.00" in row and "$32.25" in row


def test_a_viewer_reads_the_list_and_a_stranger_gets_404(app) -> None:  # type: ignore[no-untyped-def]
    book = craft_book(app)
    from store.db import db
    from store.models import Membership, User

    for email, role in (("viewer@example.com", "viewer"), ("stranger@example.com", None)):
        create_user(app, email, PASSWORD)
        if role:
            with app.app_context():
                user_id = db.session.scalar(select(User.id).where(User.email == email))
                db.session.add(Membership(user_id=user_id, org_id=book.org_id, role=role))
                db.session.commit()
    for email, status in (("viewer@example.com", 200), ("stranger@example.com", 404)):
        client = app.test_client()
        page = client.get("/signin")
        client.post("/signin", data={"csrf_token": flows.csrf_token(page.text),
                                     "email": email, "password": PASSWORD})
        answer = client.get(f"/orgs/{book.org_id}", query_string={"q": "birch"})
        assert answer.status_code == status
        if status == 200:
            assert "3 invoices" in answer.text and "INV-003" in answer.text


def test_the_next_action_filter_offers_only_what_an_invoice_can_have_pending() -> None:
    """Statements and retainer top-ups are filed under their customer, never an invoice: the
    invoice list neither offers them nor reads them from an address."""
    from app.organisations.services import NEXT_KIND_LABELS
    from collect.invoice_list import NEXT_KINDS, InvoiceQuery

    assert "statement" not in NEXT_KINDS and "retainer_top_up" not in NEXT_KINDS
    assert list(NEXT_KIND_LABELS) == list(NEXT_KINDS)
    assert InvoiceQuery.from_args({"next": "statement"}).next_kind == ""
    assert InvoiceQuery.from_args({"next": "reminder"}).next_kind == "reminder"
