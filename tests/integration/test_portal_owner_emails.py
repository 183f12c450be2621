"""The owners are told by email of what a customer said in the portal that waits for them (a
dispute, a plan request), in the language each owner chose for Dunwell's pages, or, until they
choose one, their browser's when they signed in."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
import requests
from sqlalchemy import select

from tests.integration import flows
from tests.integration.conftest import EMAIL, PASSWORD, connect, run_jobs
from tests.integration.test_escalation_e2e import smtp  # noqa: F401 (a fixture)
from tests.integration.test_portal import body_text, form_of
from tests.integration.test_portal_branding import portal_link

pytestmark = pytest.mark.db


def a_customer_disputes(app, web, org_id: int, reason: str) -> int:  # type: ignore[no-untyped-def]
    """A customer disputes the first invoice on their portal; its id."""
    link, _name = portal_link(app, org_id)
    customer = requests.Session()
    page = customer.get(link).text
    invoice_id = int(re.findall(r'id="invoice-(\d+)"', page)[0])
    action, fields = form_of(page, f"/invoices/{invoice_id}/dispute")
    assert customer.post(web.url + action, data={**fields, "reason": reason}).status_code == 200
    return invoice_id


def a_customer_asks_for_a_plan(app, web, org_id: int, invoice_id: int, first: date) -> None:  # type: ignore[no-untyped-def]
    """Three instalments every 14 days from `first`, asked for on the customer's portal."""
    link, _name = portal_link(app, org_id)
    customer = requests.Session()
    action, fields = form_of(customer.get(link).text, f"/invoices/{invoice_id}/plan")
    asked = customer.post(web.url + action, data={
        **fields, "instalments": "3", "every_days": "14", "first_on": first.isoformat()})
    assert asked.status_code == 200


def owners_language(app) -> str | None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import User

    with app.app_context():
        return db.session.scalar(select(User.language).where(User.email == EMAIL))


def choose(owner: requests.Session, base: str, org_id: int, language: str) -> None:
    """The language switcher in the top bar."""
    home = owner.get(f"{base}/orgs/{org_id}")
    chose = owner.post(f"{base}/language", data={
        "language": language, "csrf_token": flows.csrf_token(home.text),
        "next": f"/orgs/{org_id}"})
    assert chose.status_code == 200


def test_owners_are_told_of_a_dispute_and_a_plan_request_in_their_language(  # type: ignore[no-untyped-def]
        app, web, clock, smtp) -> None:  # noqa: F811
    sink, port = smtp
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_STARTTLS=False,
                      MAIL_FROM="reminders@example.com", BASE_URL=web.url)
    connected = connect(app, web, "xero")
    run_jobs(app)
    choose(connected.http, web.url, connected.org_id, "de")
    assert owners_language(app) == "de"

    _link, name = portal_link(app, connected.org_id)
    invoice_id = a_customer_disputes(app, web, connected.org_id, "Die Lieferung fehlt")
    first = clock().date() + timedelta(days=3)
    a_customer_asks_for_a_plan(app, web, connected.org_id, invoice_id, first)
    told = [m for m in sink.messages if m["To"] == EMAIL]
    assert len(told) == 2
    dispute, plan = told
    assert " beanstandet Rechnung " in str(dispute["Subject"])
    text = body_text(dispute)
    assert "Erinnerungen und Gebühren dafür ruhen" in text
    assert "Begründung: Die Lieferung fehlt" in text
    assert f"{web.url}/orgs/{connected.org_id}/invoices/{invoice_id}" in text
    assert "Ratenzahlung" in str(plan["Subject"])
    text = body_text(plan)
    assert "in 3 Raten alle 14 Tage ab" in text
    assert first.strftime("%d.%m.%Y") in text
    assert name in text and "Erinnerungen gehen weiter" in text


def test_an_owner_without_a_language_gets_the_browsers_at_sign_in_never_over_a_choice(  # type: ignore[no-untyped-def]
        app, web, clock, smtp) -> None:  # noqa: F811
    sink, port = smtp
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_STARTTLS=False,
                      MAIL_FROM="reminders@example.com", BASE_URL=web.url)
    connected = connect(app, web, "xero")  # signed in by a client that names no language
    run_jobs(app)
    assert owners_language(app) is None

    def sign_in_from_a_german_browser() -> requests.Session:
        browser = requests.Session()
        browser.headers["Accept-Language"] = "de-DE,de;q=0.9"
        assert flows.sign_in(browser, web.url, EMAIL, PASSWORD).status_code == 200
        return browser

    sign_in_from_a_german_browser()
    assert owners_language(app) == "de"
    invoice_id = a_customer_disputes(app, web, connected.org_id, "Die Lieferung fehlt")
    (told,) = [m for m in sink.messages if m["To"] == EMAIL]
    assert " beanstandet Rechnung " in str(told["Subject"])
    assert "Erinnerungen und Gebühren dafür ruhen" in body_text(told)

    # The owner picks Polish with the switcher: a German browser signing in again keeps it.
    choose(connected.http, web.url, connected.org_id, "pl")
    sign_in_from_a_german_browser()
    assert owners_language(app) == "pl"
    a_customer_asks_for_a_plan(app, web, connected.org_id, invoice_id,
                               clock().date() + timedelta(days=3))
    (_, told) = [m for m in sink.messages if m["To"] == EMAIL]
    assert " prosi w portalu o zapłatę faktury " in body_text(told)
