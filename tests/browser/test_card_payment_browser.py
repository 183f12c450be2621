"""A customer pays an invoice by test card in a real browser, on both providers: from their
portal link to the Stripe sandbox's checkout page (a card that succeeds at once on Xero, one
that asks the bank first on QuickBooks), back to the portal's thank-you; the webhooks reach
the app, a worker books the payment, and the provider sandbox's books hold exactly one
Payment for it while the portal no longer lists the invoice."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.browser.conftest import screenshot
from tests.integration.conftest import connect, run_jobs
from tests.integration.stripe_fixtures import (  # noqa: F401 (a fixture)
    books_payments,
    connect_stripe,
    stripe_sandbox,
)

pytestmark = pytest.mark.db

CARDS = {"xero": "4242424242424242", "quickbooks": "4000002500003155"}


@pytest.mark.parametrize("provider", ["xero", "quickbooks"])
def test_a_customer_pays_by_card_from_the_portal(  # type: ignore[no-untyped-def]
        app, web, page, sandbox, qbo_sandbox, stripe_sandbox, provider: str) -> None:  # noqa: F811
    from collect import portal
    from jobs.tasks import sync_org
    from store.db import db
    from store.models import CardPayment, Invoice

    connected = connect(app, web, provider)
    app.config["BASE_URL"] = web.url
    with app.app_context():
        sync_org(connected.org_id, plan_after=False)
        invoice = next(i for i in db.session.scalars(select(Invoice).where(
            Invoice.org_id == connected.org_id, Invoice.status == "open",
            Invoice.contact_id.is_not(None)).order_by(Invoice.id)) if i.amount_due > 0)
        invoice_id, provider_id, amount = invoice.id, invoice.provider_id, invoice.amount_due
        link = portal.portal_url(db.session(), invoice.contact)
        db.session.commit()
        db.session.remove()
    connect_stripe(app, web, stripe_sandbox, connected.org_id)
    books = sandbox[0] if provider == "xero" else qbo_sandbox[0]
    before = books_payments(provider, books, connected.tenant_id, provider_id)

    page.goto(f"{link}?lang=en")
    page.click(f"#invoice-{invoice_id} form.pay-card button[type=submit]")
    page.wait_for_selector("#cardNumber")
    assert page.url.startswith(stripe_sandbox[1].url + "/c/pay/")
    page.fill("#cardNumber", CARDS[provider])
    page.fill("#cardExpiry", "12 / 34")
    page.fill("#cardCvc", "123")
    page.fill("#billingName", "A Customer")
    page.click("#pay")
    if provider == "quickbooks":
        page.wait_for_selector("#approve")
        page.click("#approve")
    page.wait_for_selector(".notice[role=status]")
    assert page.url.startswith(web.url + "/portal/")
    assert "Thank you for your payment" in page.inner_text(".notice[role=status]")
    screenshot(page, f"portal_card_paid_{provider}")

    run_jobs(app)
    new = [p for p in books_payments(provider, books, connected.tenant_id, provider_id)
           if p not in before]
    assert len(new) == 1 and new[0][0] == amount
    with app.app_context():
        row = db.session.scalars(select(CardPayment).where(
            CardPayment.invoice_id == invoice_id)).one()
        assert row.status == "paid" and row.books_payment_id
        db.session.remove()
    page.goto(f"{link}?lang=en")
    assert page.locator(f"#invoice-{invoice_id}").count() == 0  # paid: no longer open
