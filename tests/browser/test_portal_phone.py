"""The customer's portal in a real browser on a phone-sized screen (390 x 844): in English
(left to right) a promise to pay, in Hebrew (right to left) a dispute; no sideways scrolling,
no serious accessibility problem, and the answers in the ledger. Screenshots of both."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.browser.conftest import axe_problems, screenshot
from tests.integration.conftest import connect, run_jobs

pytestmark = pytest.mark.db

PHONE = {"width": 390, "height": 844}


def fits(page) -> bool:  # type: ignore[no-untyped-def]
    return bool(page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"))


def test_the_portal_on_a_phone_left_to_right_and_in_hebrew(  # type: ignore[no-untyped-def]
        app, web, browser, clock) -> None:
    from collect import portal
    from store.db import db
    from store.models import Contact, Invoice, InvoiceDispute, PaymentPromise

    connected = connect(app, web, "xero")
    run_jobs(app)
    app.config["BASE_URL"] = web.url
    with app.app_context():
        counts: dict[int, list[int]] = {}
        for invoice in db.session.scalars(select(Invoice).where(
                Invoice.org_id == connected.org_id, Invoice.status == "open")
                .order_by(Invoice.id)):
            if invoice.contact_id is not None and invoice.amount_due > 0:
                counts.setdefault(invoice.contact_id, []).append(invoice.id)
        contact_id, invoice_ids = max(counts.items(), key=lambda item: len(item[1]))
        link = portal.portal_url(db.session, db.session.get(Contact, contact_id))
        db.session.commit()
        db.session.remove()
    assert link and len(invoice_ids) >= 2
    first, second = invoice_ids[0], invoice_ids[1]

    context = browser.new_context(viewport=PHONE, locale="en-GB", is_mobile=True,
                                  has_touch=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        page.goto(link + "?lang=en")
        assert page.evaluate("document.documentElement.dir") == "ltr"
        assert fits(page)
        assert axe_problems(page) == []
        screenshot(page, "portal_en_390")
        page.click(f"#invoice-{first} summary >> nth=0")
        page.fill(f"#pay-by-{first}", (clock().date() + timedelta(days=7)).isoformat())
        page.click(f"#invoice-{first} details:nth-of-type(1) button[type=submit]")
        page.wait_for_selector(".notice[role=status]")
        assert "will not remind you" in page.inner_text(".notice[role=status]")
        assert fits(page)

        page.goto(link + "?lang=he")
        assert page.evaluate("document.documentElement.dir") == "rtl"
        assert page.evaluate("document.documentElement.lang") == "he"
        assert "מה קורה עכשיו" in page.inner_text("main")
        # Right to left: the invoice's heading starts at the right edge of its card.
        box = page.locator(f"#invoice-{second} h2").bounding_box()
        card = page.locator(f"#invoice-{second}").bounding_box()
        assert box and card and card["x"] + card["width"] - (box["x"] + box["width"]) < 40
        assert fits(page)
        assert axe_problems(page) == []
        page.click(f"#invoice-{second} details:nth-of-type(2) summary")
        page.fill(f"#reason-{second}", "הסחורה לא הגיעה")
        page.click(f"#invoice-{second} details:nth-of-type(2) button[type=submit]")
        page.wait_for_selector(".notice[role=status]")
        assert page.evaluate("document.documentElement.dir") == "rtl"
        assert "תודה" in page.inner_text(".notice[role=status]")
        assert fits(page)
        screenshot(page, "portal_he_390")
    finally:
        context.close()

    with app.app_context():
        promise = db.session.scalars(select(PaymentPromise)).one()
        dispute = db.session.scalars(select(InvoiceDispute)).one()
        assert (promise.invoice_id, dispute.invoice_id) == (first, second)
        assert dispute.reason == "הסחורה לא הגיעה"
        assert db.session.get(Invoice, second).disputed
        db.session.remove()
