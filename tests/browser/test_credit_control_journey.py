"""Credit control in a real browser: a customer paying later and later is flagged on the
dashboard beside the 13-week cash-in forecast and the pay-date model's backtest; the owner
opens them, puts them on credit hold (the banner shows it), and previews their statement.
Each page passes axe-core (no serious or critical violations) and is saved as a screenshot."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests.browser.conftest import axe_problems, screenshot
from tests.integration.conftest import run_jobs
from tests.integration.test_customers import _craft_worsening_customer

pytestmark = pytest.mark.db


def check_page(page, name: str) -> None:  # type: ignore[no-untyped-def]
    assert axe_problems(page) == [], name
    screenshot(page, name)


def test_credit_control_journey(app, web, page) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Contact

    page.goto(f"{web.url}/signin")
    page.get_by_role("link", name="Sign up with Xero").click()
    page.locator("input[name=tenant]").first.check()
    page.get_by_role("button", name="Allow access").click()
    page.wait_for_url(re.compile(r"/orgs/\d+/dashboard$"))
    org_id = int(re.search(r"/orgs/(\d+)/", page.url).group(1))
    run_jobs(app)  # the first sync by a real worker
    contact_id = _craft_worsening_customer(app, org_id)

    # The dashboard flags the struggling customer, with the forecast chart and the backtest.
    page.goto(f"{web.url}/orgs/{org_id}/dashboard")
    panel = page.locator("#credit-struggling")
    assert "Zeta Worsening Ltd" in panel.inner_text()
    assert "£500.00 overdue, the oldest by 40 days (+25)" in panel.inner_text()
    chart = page.locator("#cash-in-forecast")
    assert chart.locator("svg[role=img] g.week").count() == 13
    assert re.search(r"Tested on your own books \(\d+ predictions at \d+ monthly cut-offs\):"
                     r" expected pay dates were [\d.]+ days off on average",
                     page.locator("#backtest-mae").inner_text())
    assert "of the time (AUC" in page.locator("#backtest-auc").inner_text()
    check_page(page, "credit_dashboard")

    # Open the customer; put them on hold; the banner says so.
    panel.get_by_role("link", name="Zeta Worsening Ltd").click()
    page.wait_for_url(f"{web.url}/orgs/{org_id}/customers/{contact_id}")
    assert page.locator("#credit-banner").count() == 0
    assert "struggling" in page.locator("#risk h2").inner_text()
    page.get_by_label("Reason").fill("Two payment plans broken")
    page.get_by_role("button", name="Put on hold").click()
    page.wait_for_url(f"{web.url}/orgs/{org_id}/customers/{contact_id}")
    assert page.locator("#credit-banner").inner_text() == \
        "On credit hold: Two payment plans broken"
    assert page.get_by_role("button", name="Release hold").is_visible()
    with app.app_context():
        contact = db.session.scalar(select(Contact).where(Contact.id == contact_id))
        assert (contact.on_hold, contact.hold_reason) == (True, "Two payment plans broken")
        db.session.remove()

    # The statement preview: the open item, aged, in the customer's language.
    preview = page.locator("#statement-preview")
    assert "Statement of account from" in preview.inner_text()
    assert "Z-9" in preview.inner_text()
    check_page(page, "credit_customer_on_hold")
