"""A customer marked disputed as a whole, in a real browser: the collection settings on the
customer's page set the mark and, three days later, clear it; each is a dated dispute and
an entry of the activity log with the person who did it, worded in the reader's language.
The customer's page and the organisation's page (its activity log) at 1280 and 390 px, in
English and in Hebrew (right to left), with nothing sticking out, and no serious axe finding on
either page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.browser.conftest import axe_problems
from tests.browser.test_collector_workbench import _flash, _sign_in
from tests.browser.test_every_page import OVERFLOW_CHECK
from tests.integration.conftest import EMAIL, connect
from tests.integration.test_portal import most_overdue

pytestmark = pytest.mark.db


def test_a_customer_is_disputed_and_cleared_from_its_page(  # type: ignore[no-untyped-def]
        app, web, page, clock, sandbox, qbo_sandbox) -> None:
    from jobs.tasks import sync_org
    from store.db import db
    from store.models import Contact, ContactDispute

    connected = connect(app, web, "xero")
    org_id = connected.org_id
    with app.app_context():
        sync_org(org_id, plan_after=False)
        contact_id, _ = most_overdue(org_id, clock().date())
        name = db.session.get(Contact, contact_id).name
        db.session.remove()
    _sign_in(page, web.url)
    customer = f"{web.url}/orgs/{org_id}/customers/{contact_id}"

    def save(disputed: bool) -> None:
        page.goto(customer)
        page.locator("#disputed").set_checked(disputed)
        with page.expect_navigation():
            page.click("#contact-form button[type=submit]")
        assert f"Saved the settings of {name}" in _flash(page)

    save(True)
    set_on = clock()
    clock.advance(days=3)
    save(False)
    with app.app_context():
        (dispute,) = db.session.scalars(select(ContactDispute).where(
            ContactDispute.contact_id == contact_id)).all()
        assert (dispute.started_at, dispute.ended_at) == (set_on, set_on + timedelta(days=3))
        db.session.remove()

    org_page = f"{web.url}/orgs/{org_id}"
    said = {"en": (f"{name} marked disputed by {EMAIL}",
                   f"Dispute of {name} cleared by {EMAIL}"),
            "he": (f"{name} סומן במחלוקת על ידי {EMAIL}",
                   f"המחלוקת עם {name} הוסרה על ידי {EMAIL}")}
    for language, (marked, cleared) in said.items():
        if language == "he":
            page.locator("#language-choice").select_option("he")
            page.get_by_role("button", name="Change language").click()
        for width in (1280, 390):
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(org_page)
            assert page.locator("html").get_attribute("dir") == (
                "rtl" if language == "he" else "ltr")
            text = page.locator("main").inner_text()
            assert marked in text and cleared in text, (language, width)
            assert page.evaluate(OVERFLOW_CHECK) is None, (language, width)
            assert axe_problems(page) == [], (language, width)
            page.goto(customer)
            assert page.evaluate(OVERFLOW_CHECK) is None, (language, width)
            assert axe_problems(page) == [], (language, width)
