"""The owner's journey in a real browser: sign up with Xero through the sandbox, connect a
second book, edit the policy (a bad value is refused and nothing saved; a good one is saved),
open the preview, see the dashboard chart, mark a call task done, switch to Hebrew (the page
turns right-to-left), disconnect. Every main page passes axe-core (no serious or critical
violations) and is saved as a screenshot under tests/browser/screenshots/."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests.browser.conftest import axe_problems, run_jobs_off_the_page, screenshot
from tests.integration.conftest import run_jobs

pytestmark = pytest.mark.db


def check_page(page, name: str) -> None:  # type: ignore[no-untyped-def]
    assert axe_problems(page) == [], name
    screenshot(page, name)


def _one(app, statement):  # type: ignore[no-untyped-def]
    from store.db import db

    with app.app_context():
        found = db.session.scalars(statement).all()
        db.session.remove()
        return found


def test_owner_journey(app, web, page) -> None:  # type: ignore[no-untyped-def]
    from store.models import AuditEvent, Connection, Organisation, Task
    from store.models import Policy as PolicyRow

    # Sign up with Xero: the sandbox's consent page, then straight into the new book.
    page.goto(f"{web.url}/signin")
    check_page(page, "sign_in")
    page.get_by_role("link", name="Sign up with Xero").click()
    page.locator("input[name=tenant]").first.check()
    page.get_by_role("button", name="Allow access").click()
    page.wait_for_url(re.compile(r"/orgs/\d+/dashboard$"))
    org_id = int(re.search(r"/orgs/(\d+)/", page.url).group(1))
    # A new book starts in review: the owner goes live on its setup page first.
    page.goto(f"{web.url}/orgs/{org_id}/setup")
    page.get_by_role("button", name="Go live").click()
    page.wait_for_url(f"{web.url}/orgs/{org_id}")
    run_jobs_off_the_page(app, page)  # the first sync, planning and sending, by a real worker

    # A second book: QuickBooks, from the organisations page.
    page.goto(f"{web.url}/orgs")
    page.get_by_role("button", name="Connect QuickBooks").click()
    page.locator("input[name=realmId]").first.check()
    page.get_by_role("button", name="Connect").click()
    page.wait_for_url(re.compile(r"/orgs/\d+$"))
    run_jobs_off_the_page(app, page)
    assert {c.provider for c in _one(app, select(Connection))} == {"xero", "quickbooks"}
    page.goto(f"{web.url}/orgs")
    check_page(page, "organisations")
    page.goto(f"{web.url}/practice")
    assert page.locator("#books tbody tr").count() == 2
    check_page(page, "practice")
    page.get_by_role("link", name=_one(app, select(Organisation.name).where(
        Organisation.id == org_id))[0]).click()
    page.wait_for_url(f"{web.url}/orgs/{org_id}/dashboard")

    # The policy: a step out of order is refused next to its field, and nothing is saved.
    before = _one(app, select(PolicyRow.version, PolicyRow.body)
                  .where(PolicyRow.org_id == org_id))
    page.goto(f"{web.url}/orgs/{org_id}/settings")
    check_page(page, "settings")
    page.get_by_label("Days from due date, step 2", exact=True).fill("-7")
    page.get_by_role("button", name="Save policy").click()
    error = page.locator("#reminder_steps-1-offset_days-error")
    assert "must be strictly increasing" in error.inner_text()
    assert page.get_by_role("alert").first.is_visible()
    assert page.get_by_label("Days from due date, step 2", exact=True).get_attribute(
        "aria-invalid") == "true"
    check_page(page, "settings_refused")
    after_refusal = _one(app, select(PolicyRow.version, PolicyRow.body)
                         .where(PolicyRow.org_id == org_id))
    assert after_refusal == before  # nothing saved (or nothing stored yet at all)

    page.get_by_label("Days from due date, step 2", exact=True).fill("1")
    page.get_by_label("Phone call after (days)").fill("7")
    page.get_by_label("Who calls").fill("Sam")
    page.get_by_role("button", name="Save policy").click()
    assert "Policy saved" in page.get_by_role("status").first.inner_text()
    (body,) = _one(app, select(PolicyRow.body).where(PolicyRow.org_id == org_id))
    assert [s["offset_days"] for s in body["reminder_steps"]] == [-3, 1, 7, 21]
    assert body["escalation"]["call_task"] == {"after_days": 7, "assignee": "Sam"}
    # The template preview renders as the owner types.
    page.get_by_label("Tone", exact=True).select_option("final")
    # (A locator, not wait_for_function: the page's CSP forbids the eval that one needs.)
    page.locator("#template-preview", has_text="INV-0042").wait_for()

    # What will happen to the first open invoice over the next 90 days.
    page.goto(f"{web.url}/orgs/{org_id}/preview")
    # (The count reads the DOM at once: wait for the page the button loads, not the one
    # it leaves; the address changes before the new page's body is there.)
    with page.expect_navigation():
        page.get_by_role("button", name="Show the timeline").click()
    assert page.locator("#timeline ol.timeline li").count() >= 1
    check_page(page, "preview")

    # The daily run plans the phone calls the new policy asks for; the dashboard shows them.
    from jobs.tasks import enqueue_sync

    with app.app_context():
        enqueue_sync(org_id)
    run_jobs(app)
    page.goto(f"{web.url}/orgs/{org_id}/dashboard")
    assert page.locator("#aging svg g.bucket").count() == 5
    assert page.locator("#aging svg").is_visible()
    tasks = _one(app, select(Task).where(Task.org_id == org_id, Task.status == "open"))
    assert tasks, "the call-task step planned no task"
    check_page(page, "dashboard")
    first = tasks[0]
    page.get_by_label("Note").first.fill("Promised to pay on Friday")
    page.get_by_role("button", name=re.compile("^Mark done")).first.click()
    assert "Task done" in page.get_by_role("status").first.inner_text()
    done = _one(app, select(AuditEvent).where(AuditEvent.kind == "task_done"))
    assert len(done) == 1 and done[0].data["note"] == "Promised to pay on Friday"
    assert _one(app, select(Task.status).where(Task.id == first.id)) == ["done"]

    # The invoice page shows the whole timeline.
    page.goto(f"{web.url}/orgs/{org_id}/invoices/{done[0].invoice_id}")
    assert "Promised to pay on Friday" in page.locator("ol.timeline").inner_text()
    check_page(page, "invoice")
    from store.models import Contact

    contact_id = _one(app, select(Contact.id).where(Contact.org_id == org_id)
                      .order_by(Contact.id))[0]
    for name, path in (("contacts", "settings/contacts"), ("members", "members"),
                       ("approvals", "settings/approvals"),
                       ("contact", f"settings/contacts/{contact_id}"), ("organisation", "")):
        page.goto(f"{web.url}/orgs/{org_id}/{path}".rstrip("/"))
        check_page(page, name)

    # Hebrew: the whole page turns right-to-left.
    page.get_by_label("Language").select_option("he")
    with page.expect_navigation():
        page.get_by_role("button", name="Change language").click()
    html = page.locator("html")
    assert (html.get_attribute("dir"), html.get_attribute("lang")) == ("rtl", "he")
    page.goto(f"{web.url}/orgs/{org_id}/dashboard")
    assert page.locator("html").get_attribute("dir") == "rtl"
    assert page.get_by_role("heading", name="גיול חובות").is_visible()
    check_page(page, "dashboard_hebrew")

    # Disconnect the Xero book.
    page.goto(f"{web.url}/orgs/{org_id}")
    page.locator("#disconnect summary").click()  # asks first, and says what happens to the data
    assert page.locator("#disconnect").get_attribute("open") is not None
    page.locator("#disconnect-confirm").click()  # "Yes, disconnect ...", in Hebrew
    (name,) = _one(app, select(Organisation.name).where(Organisation.id == org_id))
    assert name in page.get_by_role("status").first.inner_text()  # said in Hebrew now
    assert page.locator("#data-retention").is_visible()  # when the synced data goes
    assert _one(app, select(Connection.status).where(Connection.org_id == org_id)) == [
        "disconnected"]
