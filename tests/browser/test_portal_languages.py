"""The customer's portal in a real browser in every translated language, at a desktop's and a
phone's width, with every status the portal can show a customer seeded on their invoices
(promise recorded and broken, dispute open and resolved, plan requested, approved and
declined, card payment being recorded, received, failed and refunded) and the business's logo
from the books: no English left on the page, no sideways scrolling, Hebrew right to left, the
logo drawn. A status shown in English, or a new one left untranslated, fails here."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from tests.browser.conftest import axe_problems, screenshot
from tests.browser.test_every_page import VISIBLE_TEXT, english_left
from tests.integration import flows
from tests.integration.conftest import connect, run_jobs

pytestmark = pytest.mark.db

TRANSLATED = ("de", "nb", "pl", "he")
WIDTHS = (1280, 390)


def _seed_every_status(app, org_id: int, today) -> tuple[int, dict[int, int]]:  # type: ignore[no-untyped-def]
    """On four open invoices of one customer, every status a customer can be shown; the
    contact, and how many status chips each invoice carries (the second invoice's promise is
    broken and its plan request approved)."""
    from store.db import db
    from store.models import CardPayment, Invoice, InvoiceDispute, PaymentPromise, PlanRequest

    with app.app_context():
        by_contact: dict[int, list[Invoice]] = {}
        for invoice in db.session.scalars(select(Invoice).where(
                Invoice.org_id == org_id, Invoice.status == "open").order_by(Invoice.id)):
            if invoice.contact_id is not None and invoice.amount_due > 0:
                by_contact.setdefault(invoice.contact_id, []).append(invoice)
        contact_id, invoices = max(by_contact.items(), key=lambda item: len(item[1]))
        assert len(invoices) >= 4, "the seed has a customer with four open invoices"
        a, b, c, d = invoices[:4]

        def common(invoice: Invoice) -> dict[str, object]:
            return {"org_id": org_id, "contact_id": contact_id, "invoice_id": invoice.id}

        def card(invoice: Invoice, status: str, **more: object) -> CardPayment:
            return CardPayment(**common(invoice), currency=invoice.currency,
                               amount=invoice.amount_due, status=status, **more)

        db.session.add_all([
            PaymentPromise(**common(a), pay_by=today + timedelta(days=9),
                           amount=a.amount_due, currency=a.currency, paid_before=Decimal(0),
                           status="open"),
            InvoiceDispute(**common(a), reason="Half of it never came", status="open"),
            PlanRequest(**common(a), instalments=3, first_on=today, every_days=14,
                        status="pending"),
            card(a, "paid", received=a.amount_due),
            PaymentPromise(**common(b), pay_by=today - timedelta(days=3),
                           amount=b.amount_due, currency=b.currency, paid_before=Decimal(0),
                           status="broken"),
            InvoiceDispute(**common(b), reason="Wrong price", status="resolved"),
            PlanRequest(**common(b), instalments=2, first_on=today, every_days=30,
                        status="approved"),
            card(b, "failed", failure="card_declined"),
            PlanRequest(**common(c), instalments=2, first_on=today, every_days=7,
                        status="declined"),
            card(c, "paid", received=Decimal("1.00"), books_payment_id="books-pay-1"),
            card(d, "paid", received=d.amount_due, refunded=d.amount_due),
        ])
        db.session.commit()
        chips = {a.id: 4, b.id: 4, c.id: 2, d.id: 1}
        db.session.remove()
    return contact_id, chips


def test_every_status_of_the_portal_in_every_language(  # type: ignore[no-untyped-def]
        app, web, browser, clock, sandbox) -> None:
    from collect import portal
    from store.db import db
    from store.models import Contact

    connected = connect(app, web, "xero")
    run_jobs(app)  # the sync, and the logo's job after it
    app.config["BASE_URL"] = web.url
    contact_id, chips = _seed_every_status(app, connected.org_id, clock().date())
    with app.app_context():
        link = portal.portal_url(db.session, db.session.get(Contact, contact_id))
        db.session.commit()
        db.session.remove()
    assert link

    # The collector's page of the invoice words the promise's and the plan request's statuses
    # in the owner's language too.
    owner = connected.http
    home = owner.get(f"{web.url}/orgs/{connected.org_id}")
    owner.post(f"{web.url}/language", data={"language": "de", "next": "/orgs",
                                            "csrf_token": flows.csrf_token(home.text)})
    second = list(chips)[1]
    panel = owner.get(f"{web.url}/orgs/{connected.org_id}/invoices/{second}").text
    panel = panel.split('id="portal"', 1)[1].split("</section>", 1)[0]
    shown = re.sub(r"<[^>]+>", " ", panel)  # what the owner reads, not the badges' classes
    assert "gebrochen" in shown and "angenommen" in shown and "Einwand geklärt" in shown
    assert "broken" not in shown and "approved" not in shown

    for width in WIDTHS:
        context = browser.new_context(viewport={"width": width, "height": 900})
        context.set_default_timeout(15_000)
        page = context.new_page()
        try:
            for language in ("en", *TRANSLATED):
                page.goto(f"{link}?lang={language}")
                assert page.evaluate("document.documentElement.lang") == language
                assert page.evaluate("document.documentElement.dir") == (
                    "rtl" if language == "he" else "ltr")
                for invoice_id, count in chips.items():
                    shown = page.locator(f"#invoice-{invoice_id} .said .chip").all_inner_texts()
                    assert len(shown) == count, (language, invoice_id, shown)
                # The business's logo from the books, drawn beside its name.
                assert page.evaluate(
                    "document.querySelector('.business img.logo').naturalWidth") == 96
                assert page.evaluate("document.documentElement.scrollWidth <= "
                                     "document.documentElement.clientWidth"), (language, width)
                if language != "en":
                    assert english_left(page.evaluate(VISIBLE_TEXT), language) == [], language
                if width == 1280 and language in ("en", "he"):
                    assert axe_problems(page) == [], language
                if language in ("de", "he"):
                    screenshot(page, f"portal_statuses_{language}_{width}")
        finally:
            context.close()
