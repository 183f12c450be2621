"""The dashboard's DSO over time and money collected after a reminder, on a book crafted row by
row so every figure can be worked out by hand; and who may open the practice view."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from tests.integration import flows
from tests.integration.conftest import PASSWORD, create_user

pytestmark = pytest.mark.db

OWNER = "owner@example.com"


def _at(day: str, hour: int = 10) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


@dataclass
class Book:
    org_id: int
    other_org_id: int
    user_id: int


def _org(db, name: str) -> int:  # type: ignore[no-untyped-def]
    from store.models import Organisation

    org = Organisation(name=name, country="GB", timezone="Europe/London", base_currency="GBP")
    db.session.add(org)
    db.session.flush()
    return org.id


def _invoice(db, org_id: int, key: str, issued: str, total: str, due: str, status: str,  # type: ignore[no-untyped-def]
             currency: str = "GBP", updated: str | None = None) -> int:
    from store.models import Invoice

    invoice = Invoice(org_id=org_id, provider_id=f"inv-{key}", number=f"INV-{key}",
                      currency=currency, issue_date=date.fromisoformat(issued),
                      due_date=date.fromisoformat(issued), total=Decimal(total),
                      amount_paid=Decimal(total) - Decimal(due), amount_due=Decimal(due),
                      status=status, provider_updated_at=_at(updated) if updated else None)
    db.session.add(invoice)
    db.session.flush()
    return invoice.id


def _payment(db, org_id: int, invoice_id: int, key: str, amount: str, paid_on: str,  # type: ignore[no-untyped-def]
             currency: str = "GBP") -> None:
    from store.models import Payment

    db.session.add(Payment(org_id=org_id, provider_id=f"pay-{key}", invoice_id=invoice_id,
                           amount=Decimal(amount), currency=currency,
                           paid_on=date.fromisoformat(paid_on), status="active"))


def _reminder(db, org_id: int, invoice_id: int, key: str, sent: str,  # type: ignore[no-untyped-def]
              status: str = "done") -> None:
    from store.models import Action

    db.session.add(Action(org_id=org_id, invoice_id=invoice_id, key=f"reminder-{key}",
                          kind="reminder", scheduled_for=_at(sent, 9), status=status,
                          finished_at=_at(sent) if status == "done" else None,
                          reason="Reminder"))


def craft_book(app) -> Book:  # type: ignore[no-untyped-def]
    """Today is Tuesday 24 November 2026 (the test clock). In GBP:

    A issued 15 Aug, 1,000: paid 400 on 10 Sep (reminded 1 Sep: 9 days) and 600 on 20 Oct
      (reminded 6 Oct: exactly 14 days, still counts).
    B issued 20 Sep, 2,000: open, nothing paid.
    H issued 1 Sep, 300: paid on 16 Nov, 15 days after its reminder of 1 Nov (too late to
      count), 6 days after a reminder that failed (never sent: does not count).
    C issued 5 Oct, 500: 200 paid on 2 Nov, 8 days after its reminder of 25 Oct; 300 open.
    D issued 25 Oct, 800: settled by a credit note, no payment; last changed on 10 Nov.
    V issued 1 Oct, 9,999: voided, never a sale.
    In USD, I issued 10 Oct, 100: paid on 12 Nov, 2 days after a reminder.
    Another organisation holds a reminded and paid GBP invoice of 5,000 that must not show."""
    from store.db import db
    from store.models import Membership, User

    create_user(app, OWNER, PASSWORD)
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == OWNER))
        org = _org(db, "Harbour Coffee")
        other = _org(db, "Someone Else Ltd")
        db.session.add(Membership(user_id=user_id, org_id=org, role="owner"))
        a = _invoice(db, org, "A", "2026-08-15", "1000.00", "0", "paid", updated="2026-10-20")
        _payment(db, org, a, "A1", "400.00", "2026-09-10")
        _payment(db, org, a, "A2", "600.00", "2026-10-20")
        _reminder(db, org, a, "A1", "2026-09-01")
        _reminder(db, org, a, "A2", "2026-10-06")
        _invoice(db, org, "B", "2026-09-20", "2000.00", "2000.00", "open")
        h = _invoice(db, org, "H", "2026-09-01", "300.00", "0", "paid", updated="2026-11-16")
        _payment(db, org, h, "H1", "300.00", "2026-11-16")
        _reminder(db, org, h, "H1", "2026-11-01")
        _reminder(db, org, h, "H2", "2026-11-10", status="failed")
        c = _invoice(db, org, "C", "2026-10-05", "500.00", "300.00", "open")
        _payment(db, org, c, "C1", "200.00", "2026-11-02")
        _reminder(db, org, c, "C1", "2026-10-25")
        _invoice(db, org, "D", "2026-10-25", "800.00", "0", "paid", updated="2026-11-10")
        _invoice(db, org, "V", "2026-10-01", "9999.00", "0", "voided")
        i = _invoice(db, org, "I", "2026-10-10", "100.00", "0", "paid", currency="USD",
                     updated="2026-11-12")
        _payment(db, org, i, "I1", "100.00", "2026-11-12", currency="USD")
        _reminder(db, org, i, "I1", "2026-11-10")
        x = _invoice(db, other, "X", "2026-10-01", "5000.00", "0", "paid",
                     updated="2026-11-03")
        _payment(db, other, x, "X1", "5000.00", "2026-11-03")
        _reminder(db, other, x, "X1", "2026-11-01")
        db.session.commit()
        return Book(org, other, user_id)


def _client(app, email: str = OWNER):  # type: ignore[no-untyped-def]
    client = app.test_client()
    page = client.get("/signin")
    answer = client.post("/signin", data={"csrf_token": flows.csrf_token(page.text),
                                          "email": email, "password": PASSWORD})
    assert answer.status_code == 302, answer.text[:300]
    return client


EXPECTED_DSO = {  # month: (as of, owed, invoiced in the 90 days before, DSO)
    "2026-08": ("2026-08-31", "1000.00", "1000.00", 90),  # 1,000 / 1,000 x 90
    "2026-09": ("2026-09-30", "2900.00", "3300.00", 79),  # (600 + 2,000 + 300) / 3,300 x 90
    "2026-10": ("2026-10-31", "3600.00", "4600.00", 70),  # 3,600 / 4,600 x 90 = 70.43
    "2026-11": ("2026-11-24", "2300.00", "3600.00", 58),  # 2,300 / 3,600 x 90 = 57.5, half up
}


def test_dso_history_of_a_crafted_book(app) -> None:  # type: ignore[no-untyped-def]
    from app.dashboard import services
    from store.db import db
    from store.models import Organisation

    book = craft_book(app)
    with app.app_context():
        org = db.session.get(Organisation, book.org_id)
        points = services.dso_history(org, date(2026, 11, 24), "GBP")
        assert [p.month.isoformat()[:7] for p in points] == [
            "2025-12", "2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06",
            "2026-07", "2026-08", "2026-09", "2026-10", "2026-11"]
        assert [p.days for p in points[:8]] == [None] * 8  # nothing sold before August
        assert all(p.receivables == 0 for p in points[:8])
        for point in points[8:]:
            as_of, owed, sold, days = EXPECTED_DSO[point.month.isoformat()[:7]]
            assert (point.as_of.isoformat(), point.receivables, point.credit_sales,
                    point.days) == (as_of, Decimal(owed), Decimal(sold), days)
        assert services.dso(org, date(2026, 11, 24), "GBP") == 58  # today's DSO agrees

        chart = services.dso_chart(points)
        assert chart.ceiling == 90  # the highest DSO, rounded up to whole months of days
        assert chart.path == "M496 20 L552 37 L608 51 L664 70"
        assert [p.y for p in chart.points[:8]] == [None] * 8

        other = db.session.get(Organisation, book.other_org_id)
        assert [p.days for p in services.dso_history(other, date(2026, 11, 24), "GBP")
                ][-2:] == [90, 0]  # its own 5,000 (paid 3 Nov) only, never the first book's


def test_month_ends_cross_the_year_and_end_today() -> None:
    from app.dashboard.services import month_ends

    assert month_ends(date(2026, 2, 10), 3) == [
        (date(2025, 12, 1), date(2025, 12, 31)), (date(2026, 1, 1), date(2026, 1, 31)),
        (date(2026, 2, 1), date(2026, 2, 10))]


def test_money_collected_after_a_reminder(app) -> None:  # type: ignore[no-untyped-def]
    from app.dashboard import services
    from store.db import db
    from store.models import Organisation

    book = craft_book(app)
    with app.app_context():
        org = db.session.get(Organisation, book.org_id)
        today = date(2026, 11, 24)
        # 30 days (26 Oct - 24 Nov): C's 200 (8 days after its reminder) and I's USD 100.
        assert services.collected_after_reminder(org, today, 30) == [
            services.Collected("GBP", Decimal("200.00"), 1),
            services.Collected("USD", Decimal("100.00"), 1)]
        # 90 days (27 Aug - 24 Nov): also A's 400 (9 days) and 600 (14 days), one invoice.
        assert services.collected_after_reminder(org, today, 90) == [
            services.Collected("GBP", Decimal("1200.00"), 2),
            services.Collected("USD", Decimal("100.00"), 1)]
        # With a 7-day rule only I's payment (2 days) still counts.
        assert services.collected_after_reminder(org, today, 90, attribution_days=7) == [
            services.Collected("USD", Decimal("100.00"), 1)]


def _rows(html: str, section: str) -> str:
    match = re.search(rf'<section[^>]*id="{section}".*?</section>', html, re.S)
    assert match, section
    return match.group(0)


def test_dashboard_page_shows_dso_over_time_and_collections(app) -> None:  # type: ignore[no-untyped-def]
    book = craft_book(app)
    client = _client(app)
    page = client.get(f"/orgs/{book.org_id}/dashboard")
    assert page.status_code == 200
    html = page.text
    dso = _rows(html, "dso-history")
    assert "Days sales outstanding at each month end, last 12 months" in dso  # <title>
    assert 'aria-labelledby="dso-title dso-desc"' in dso
    assert "invoices issued in the 90 days up to it \u00d7 90" in dso  # the formula, stated
    assert '<path class="dso-line" d="M496 20 L552 37 L608 51 L664 70"' in dso
    days = re.findall(r'<tr data-month="(\d{4}-\d\d)"><td>[^<]*</td><td class="num">([^<]*)'
                      r'</td><td class="num">([^<]*)</td><td class="num">([^<]*)</td>', dso)
    assert len(days) == 12
    assert days[-4:] == [("2026-08", "£1,000.00", "£1,000.00", "90"),
                         ("2026-09", "£2,900.00", "£3,300.00", "79"),
                         ("2026-10", "£3,600.00", "£4,600.00", "70"),
                         ("2026-11", "£2,300.00", "£3,600.00", "58")]
    assert days[0] == ("2025-12", "£0.00", "£0.00", "—")
    assert "24/11/2026: 58 days." in dso  # the <desc>, dated as a British book reads

    collected = _rows(html, "collected")
    assert "in the 14 days after; each payment counts once" in collected  # the rule, stated
    found = re.findall(r'<tr data-window="(\d+)" data-currency="(\w+)"><td>[^<]*</td><td>\w+'
                       r'</td><td class="num">([^<]*)</td><td class="num">(\d+)</td>', collected)
    # A British book in English: the dollar is written US$ (CLDR's en_GB).
    assert found == [("30", "GBP", "£200.00", "1"), ("30", "USD", "US$100.00", "1"),
                     ("90", "GBP", "£1,200.00", "2"), ("90", "USD", "US$100.00", "1")]
    assert "5,000" not in html  # the other organisation's payment

    assert client.get(f"/orgs/{book.other_org_id}/dashboard").status_code == 404


def test_an_empty_book_has_no_line_and_says_so(app) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Membership, User

    create_user(app, OWNER, PASSWORD)
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == OWNER))
        org = _org(db, "Empty Books Ltd")
        db.session.add(Membership(user_id=user_id, org_id=org, role="owner"))
        db.session.commit()
    page = _client(app).get(f"/orgs/{org}/dashboard")
    assert page.status_code == 200
    assert 'class="dso-line"' not in page.text
    collected = _rows(page.text, "collected")
    assert collected.count("Nothing yet.") == 2


# -- The practice view ---------------------------------------------------------------------


def _member(app, email: str, memberships: dict[str, str]) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """A user with the given role in each named organisation (made if new)."""
    from store.db import db
    from store.models import Membership, Organisation, User

    create_user(app, email, PASSWORD)
    ids = {}
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == email))
        for name, role in memberships.items():
            org_id = db.session.scalar(select(Organisation.id).where(Organisation.name == name))
            if org_id is None:
                org_id = _org(db, name)
            db.session.add(Membership(user_id=user_id, org_id=org_id, role=role))
            ids[name] = org_id
        db.session.commit()
    return ids


def test_practice_view_is_for_accountants_and_keeps_filter_sort_and_switch(app) -> None:  # type: ignore[no-untyped-def]
    book = craft_book(app)
    ids = _member(app, "accountant@example.com", {"Harbour Coffee": "accountant",
                                                  "Alder Joinery": "viewer"})
    assert ids["Harbour Coffee"] == book.org_id
    client = _client(app, "accountant@example.com")
    page = client.get("/practice")
    assert page.status_code == 200
    rows = re.findall(r'<tr data-org="(\d+)">\s*<td><a href="([^"]+)">([^<]+)</a></td>\s*'
                      r'<td>(\w+)</td>\s*<td class="num">([^<]*)</td>\s*<td class="num">'
                      r'([^<]*)</td>', page.text)
    # Sorted by overdue: Harbour Coffee's 2,000 (B) + 300 (C) are overdue, Alder has none.
    assert rows == [
        (str(book.org_id), f"/orgs/{book.org_id}/dashboard", "Harbour Coffee", "accountant",
         "£2,300.00", "58"),
        (str(ids["Alder Joinery"]), f"/orgs/{ids['Alder Joinery']}/dashboard", "Alder Joinery",
         "viewer", "£0.00", "—")]
    by_name = client.get("/practice", query_string={"sort": "name"}).text
    assert by_name.index("Alder Joinery") < by_name.index("Harbour Coffee")
    found = client.get("/practice", query_string={"q": "harb"}).text
    assert "Harbour Coffee" in found and "Alder Joinery" not in found
    switched = client.get(f"/orgs/{book.org_id}/dashboard")  # the row's link: one click
    assert switched.status_code == 200 and "Harbour Coffee" in switched.text
    assert "Someone Else Ltd" not in page.text


def test_practice_view_for_others_redirects_to_their_book_or_is_404(app) -> None:  # type: ignore[no-untyped-def]
    book = craft_book(app)  # the owner of one book
    one = _client(app).get("/practice")
    assert one.status_code == 302 and one.headers["Location"] == f"/orgs/{book.org_id}/dashboard"

    _member(app, "viewer@example.com", {"Harbour Coffee": "viewer", "Alder Joinery": "admin"})
    assert _client(app, "viewer@example.com").get("/practice").status_code == 404

    _member(app, "new@example.com", {})
    none = _client(app, "new@example.com").get("/practice")
    assert none.status_code == 302 and none.headers["Location"] == "/orgs"

    _member(app, "two@example.com", {"Birch Bakery": "owner", "Cedar Cafe": "owner"})
    practice = _client(app, "two@example.com").get("/practice")  # owns a practice of books
    assert practice.status_code == 200
    assert "Birch Bakery" in practice.text and "Cedar Cafe" in practice.text
    assert "Harbour Coffee" not in practice.text
