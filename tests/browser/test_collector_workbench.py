"""The collector's workbench in a real browser, on both providers: from an invoice's page a
collector adds a note, sends the next reminder now, pauses chasing (a day gone by is refused,
nothing saved) and resumes it, records a promise and agrees a payment plan (instalments that do
not add up are refused, nothing saved); from the customer's page, reached from the invoice,
chasing of all the customer's invoices is paused and resumed, and, over its open invoices, a
note, the next reminder now and a promise (nothing ticked, a day gone by and more than is owed
refused, nothing saved). The ledger, the activity log (with the person who did each) and the
sandbox's books (the notes and the reminders in each invoice's history) show each; the invoice
and customer pages work right to left in Hebrew at 390 px."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests.browser.conftest import axe_problems
from tests.browser.test_every_page import OVERFLOW_CHECK
from tests.integration.conftest import EMAIL, PASSWORD, connect, run_jobs
from tests.integration.test_escalation_e2e import notes
from tests.integration.test_portal import most_overdue, sync_and_run

pytestmark = pytest.mark.db


def _sign_in(page, url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{url}/signin")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/orgs")


def _flash(page) -> str:  # type: ignore[no-untyped-def]
    return page.locator(".flash").first.inner_text()


def _remindable(org_id: int, invoices: list, now: datetime,  # type: ignore[type-arg]
                strict: bool = True) -> int | None:
    """The first of these invoices whose ladder has a next step to send now (none: refused
    unless not `strict`)."""
    from collect.book import Book
    from rules.engine import reminder_now
    from store.db import db
    from store.models import Organisation

    org = db.session.get(Organisation, org_id)
    book = Book(db.session(), org, invoices)
    for invoice in invoices:
        found = reminder_now(book.state(invoice), book.past(invoice), book.policy_of(invoice),
                             book.calendar, now, EMAIL)
        if not isinstance(found, str):
            return int(invoice.id)
    if not strict:
        return None
    raise AssertionError("no invoice of the customer has a reminder left to send")


@pytest.mark.parametrize("provider", ["xero", "quickbooks"])
def test_a_collector_works_an_invoice_and_a_customer(  # type: ignore[no-untyped-def]
        app, web, page, clock, sandbox, qbo_sandbox, provider: str) -> None:
    from jobs.tasks import sync_org
    from store.db import db
    from store.models import (
        Action,
        AuditEvent,
        Contact,
        Invoice,
        InvoicePause,
        PaymentPlan,
        PaymentPromise,
    )

    if provider == "quickbooks":
        clock.set(datetime(2026, 11, 24, 18, 0, tzinfo=UTC))  # 10:00 in California
    connected = connect(app, web, provider)
    org_id = connected.org_id
    with app.app_context():
        sync_org(org_id, plan_after=False)  # the books, nothing planned yet
        contact_id, invoices = most_overdue(org_id, clock().date())
        for other in db.session.scalars(select(Contact).where(Contact.id != contact_id)):
            other.excluded = True  # one customer's chasing keeps the run short
        db.session.commit()
        db.session.remove()
    sync_and_run(app, org_id)
    with app.app_context():
        _, invoices = most_overdue(org_id, clock().date())
        invoice_id = _remindable(org_id, invoices, clock())
        promised_id = next(i.id for i in invoices if i.id != invoice_id)
        invoice = db.session.get(Invoice, invoice_id)
        provider_id, due = invoice.provider_id, invoice.amount_due
        today = clock().date()
        db.session.remove()
    books = sandbox[0] if provider == "xero" else qbo_sandbox[0]
    _sign_in(page, web.url)
    base = f"{web.url}/orgs/{org_id}/invoices/{invoice_id}"

    # A note: in the activity log, and through the ledger into the invoice's history.
    page.goto(base)
    page.fill("#note-text", "Called them: the manager pays on Friday")
    page.click("#note-form button[type=submit]")
    page.wait_for_url(base)
    assert "Note added." in _flash(page)

    # The next reminder now, through the ledger.
    page.click("#remind-form button[type=submit]")
    page.wait_for_url(base)
    assert "The next reminder goes out now." in _flash(page)
    run_jobs(app)  # a real worker runs both actions
    with app.app_context():
        # The newest of each kind (the day's run may have sent this invoice a reminder at the
        # same moment of the test's clock; the one asked for now came after it).
        mine = {a.kind: a for a in db.session.scalars(select(Action).where(
            Action.invoice_id == invoice_id, Action.kind.in_(("note", "reminder")),
            Action.created_at >= clock() - timedelta(minutes=5)).order_by(Action.id))}
        db.session.remove()
    assert mine["note"].status == "done" and mine["note"].details["by"] == EMAIL
    assert mine["reminder"].status == "done"
    assert mine["reminder"].details["sent_now_by"] == EMAIL
    in_books = notes(provider, books, connected.tenant_id, provider_id)
    assert sum(f"note by {EMAIL}: Called them: the manager pays on Friday" in n
               for n in in_books) == 1
    step = (mine["reminder"].step_index or 0) + 1
    assert any(f"reminder {step} of" in n for n in in_books), in_books
    run_jobs(app)  # run again: nothing is written twice
    assert notes(provider, books, connected.tenant_id, provider_id) == in_books

    # Pause: a day gone by is refused and saves nothing; then until a day; then resumed.
    page.goto(base)
    # The browser itself refuses a day before its `min`; the server must too.
    page.eval_on_selector("#pause-form", "form => { form.noValidate = true; }")
    page.fill("#pause-until", (today - timedelta(days=1)).isoformat())
    page.fill("#pause-reason", "Owner on holiday")
    with page.expect_navigation():
        page.click("#pause-form button[type=submit]")
    assert "only be paused until a day after today" in _flash(page)
    with app.app_context():
        assert db.session.scalars(select(InvoicePause)).all() == []
        db.session.remove()
    until = today + timedelta(days=10)
    page.fill("#pause-until", until.isoformat())
    page.fill("#pause-reason", "Owner on holiday")
    page.click("#pause-form button[type=submit]")
    page.wait_for_url(base)
    assert "Chasing paused." in _flash(page)
    assert "Owner on holiday" in page.locator("#paused").inner_text()
    with app.app_context():
        (pause,) = db.session.scalars(select(InvoicePause).where(
            InvoicePause.invoice_id == invoice_id)).all()
        assert pause.until == until
        after = db.session.get(Invoice, invoice_id).next_action_at
        assert after is None or after.date() >= until
        db.session.remove()
    page.click("#resume-form button[type=submit]")
    page.wait_for_url(base)
    assert "Chasing resumed" in _flash(page)

    # A payment plan: instalments that do not add up are refused; then agreed.
    first, second = today + timedelta(days=7), today + timedelta(days=37)
    half = (due / 2).quantize(Decimal("0.01"))
    page.fill("#plan-day-0", first.isoformat())
    page.fill("#plan-amount-0", str(half))
    page.fill("#plan-day-1", second.isoformat())
    page.fill("#plan-amount-1", str(half - 1))
    with page.expect_navigation():
        page.click("#plan-form button[type=submit]")
    assert "nothing was saved" in _flash(page)
    with app.app_context():
        assert db.session.scalars(select(PaymentPlan).where(
            PaymentPlan.invoice_id == invoice_id)).all() == []
        db.session.remove()
    page.fill("#plan-day-0", first.isoformat())
    page.fill("#plan-amount-0", str(half))
    page.fill("#plan-day-1", second.isoformat())
    page.fill("#plan-amount-1", str(due - half))
    page.click("#plan-form button[type=submit]")
    page.wait_for_url(base)
    assert "Payment plan agreed" in _flash(page)
    assert page.locator("#plan-in-force").is_visible()

    # A promise on another of the customer's invoices.
    page.goto(f"{web.url}/orgs/{org_id}/invoices/{promised_id}")
    page.fill("#promise-by", (today + timedelta(days=5)).isoformat())
    with page.expect_navigation():
        page.click("#promise-form button[type=submit]")
    assert "Promise recorded" in _flash(page)

    # The customer's page, from the invoice's: chasing of all its invoices paused, resumed.
    page.goto(base)
    page.click("#customer-link a")
    page.wait_for_url(f"{web.url}/orgs/{org_id}/customers/{contact_id}")
    assert page.locator("#owed li").count() >= 1
    assert "open: 1" in page.locator("#promises").inner_text()
    page.fill("#customer-pause-until", (today + timedelta(days=3)).isoformat())
    page.fill("#customer-pause-reason", "Their accountant is away")
    with page.expect_navigation():
        page.click("#customer-pause-form button[type=submit]")
    assert re.search(r"Chasing of \d+ invoices? paused\.", _flash(page))
    paused = page.locator("#paused li").count()
    assert paused >= 2
    with page.expect_navigation():
        page.click("#customer-resume-form button[type=submit]")
    assert f"Chasing of {paused} invoices resumed." in _flash(page)

    # On the customer's page, over its open invoices: a note, the next reminder now and a
    # promise; nothing ticked, a day gone by and more than is owed are refused, saving nothing.
    customer = f"{web.url}/orgs/{org_id}/customers/{contact_id}"
    with app.app_context():
        before = db.session.scalar(select(func.max(Action.id))) or 0
        db.session.remove()
    boxes = page.locator("#customer-note-form input[name=invoice]")
    ticked = sorted(int(boxes.nth(n).get_attribute("value") or 0)
                    for n in range(boxes.count()))
    assert len(ticked) >= 2 and all(boxes.nth(n).is_checked() for n in range(len(ticked)))
    for n in range(len(ticked)):
        boxes.nth(n).uncheck()
    page.fill("#customer-note-text", "Spoke to their finance director")
    with page.expect_navigation():
        page.click("#customer-note-form button[type=submit]")
    assert "Please tick at least one" in _flash(page)
    with app.app_context():
        assert not db.session.scalars(select(Action).where(Action.id > before)).all()
        db.session.remove()
    page.fill("#customer-note-text", "Spoke to their finance director")
    with page.expect_navigation():
        page.click("#customer-note-form button[type=submit]")
    assert f"Note added to {len(ticked)} invoices." in _flash(page)

    with app.app_context():  # the due invoices whose next step may go now, as each page says
        remindable = sorted(i for i in ticked if db.session.get(Invoice, i).due_date <= today
                            and _remindable(org_id, [db.session.get(Invoice, i)], clock(),
                                            strict=False) is not None)
        db.session.remove()
    assert remindable  # the plan's and the promise's invoices are left alone
    with page.expect_navigation():
        page.click("#customer-remind-form button[type=submit]")
    assert f"The next reminder goes out now for {len(remindable)} invoice" in _flash(page)
    run_jobs(app)
    with app.app_context():
        mine = list(db.session.scalars(select(Action).where(Action.id > before)))
        notes_done = {a.invoice_id: a for a in mine if a.kind == "note"}
        asked = {a.invoice_id: a for a in mine
                 if a.kind == "reminder" and a.details.get("sent_now_by") == EMAIL}
        numbers = {i: (db.session.get(Invoice, i).provider_id) for i in ticked}
        db.session.remove()
    assert sorted(notes_done) == ticked and sorted(asked) == remindable
    assert all(a.status == "done" and a.details["by"] == EMAIL for a in notes_done.values())
    assert all(a.status == "done" for a in asked.values())
    for each in ticked:  # in the books' history of each, once
        written = notes(provider, books, connected.tenant_id, numbers[each])
        assert sum(f"note by {EMAIL}: Spoke to their finance director" in n
                   for n in written) == 1, written
        if each in remindable:
            step = (asked[each].step_index or 0) + 1
            assert any(f"reminder {step} of" in n for n in written), written

    page.goto(customer)
    page.eval_on_selector("#customer-promise-form", "form => { form.noValidate = true; }")
    page.fill("#customer-promise-by", (today - timedelta(days=1)).isoformat())
    with page.expect_navigation():
        page.click("#customer-promise-form button[type=submit]")
    assert "The promised day is in the past" in _flash(page)
    page.eval_on_selector("#customer-promise-form", "form => { form.noValidate = true; }")
    page.fill("#customer-promise-by", (today + timedelta(days=6)).isoformat())
    page.fill("#customer-promise-amount", "99999999")
    with page.expect_navigation():
        page.click("#customer-promise-form button[type=submit]")
    with app.app_context():  # an amount is of one currency: over several it is refused first
        currencies = {db.session.get(Invoice, i).currency for i in ticked}
        db.session.remove()
    assert ("no more than what is due" if len(currencies) == 1
            else "more than one currency") in _flash(page)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(PaymentPromise).where(
            PaymentPromise.invoice_id.in_(ticked))) == 1  # the invoice page's, earlier
        db.session.remove()
    page.fill("#customer-promise-by", (today + timedelta(days=6)).isoformat())
    with page.expect_navigation():
        page.click("#customer-promise-form button[type=submit]")
    assert f"Promise recorded for {len(ticked)} invoices" in _flash(page)
    with app.app_context():
        promised = {p.invoice_id: p.pay_by for p in db.session.scalars(select(
            PaymentPromise).where(PaymentPromise.invoice_id.in_(ticked),
                                  PaymentPromise.status == "open"))}
        db.session.remove()
    assert promised == dict.fromkeys(ticked, today + timedelta(days=6))
    for width in (1280, 390):  # the customer's page with its forms, in English
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(customer)
        assert page.evaluate(OVERFLOW_CHECK) is None, width
        assert axe_problems(page) == [], width
    page.set_viewport_size({"width": 1280, "height": 900})

    with app.app_context():
        events = list(db.session.scalars(select(AuditEvent).where(
            AuditEvent.org_id == org_id, AuditEvent.kind.in_((
                "note", "reminder_requested", "paused", "resumed", "payment_plan",
                "promise_recorded")))))
        assert all(e.data["by"] == EMAIL for e in events)
        kinds = [e.kind for e in events]
        assert kinds.count("paused") == 1 + paused and kinds.count("resumed") == 1 + paused
        assert {"note", "reminder_requested", "payment_plan", "promise_recorded"} <= set(kinds)
        # The customer's page's: one of each per invoice, by the person who did it.
        assert kinds.count("note") == 1 + len(ticked)
        assert kinds.count("reminder_requested") == 1 + len(remindable)
        assert kinds.count("promise_recorded") == 1 + len(ticked)
        (plan,) = db.session.scalars(select(PaymentPlan).where(
            PaymentPlan.invoice_id == invoice_id)).all()
        assert [Decimal(i["amount"]) for i in plan.instalments] == [half, due - half]
        db.session.remove()

    # Hebrew, 390 px: the invoice page turns right to left and nothing sticks out.
    page.set_viewport_size({"width": 390, "height": 844})
    page.locator("#language-choice").select_option("he")
    page.get_by_role("button", name="Change language").click()
    page.goto(base)
    assert page.locator("html").get_attribute("dir") == "rtl"
    assert page.evaluate(OVERFLOW_CHECK) is None
    assert axe_problems(page) == []
    page.goto(f"{web.url}/orgs/{org_id}/customers/{contact_id}")
    assert page.locator("html").get_attribute("dir") == "rtl"
    assert page.evaluate(OVERFLOW_CHECK) is None
    assert axe_problems(page) == []
    assert page.locator("#customer-note-form").is_visible()
    # And at 1280 px, in Hebrew too.
    page.set_viewport_size({"width": 1280, "height": 900})
    assert page.evaluate(OVERFLOW_CHECK) is None


