"""The owners are told by email of what a customer said in the portal that waits for them (a
dispute, a plan request), in the language each owner chose for Dunwell's pages."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from tests.integration import flows
from tests.integration.conftest import EMAIL, connect, run_jobs
from tests.integration.test_escalation_e2e import smtp  # noqa: F401 (a fixture)
from tests.integration.test_portal import body_text, form_of
from tests.integration.test_portal_branding import portal_link

pytestmark = pytest.mark.db


def test_owners_are_told_of_a_dispute_and_a_plan_request_in_their_language(  # type: ignore[no-untyped-def]
        app, web, clock, smtp) -> None:  # noqa: F811
    from store.db import db
    from store.models import User

    sink, port = smtp
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_STARTTLS=False,
                      MAIL_FROM="reminders@example.com", BASE_URL=web.url)
    connected = connect(app, web, "xero")
    run_jobs(app)
    owner = connected.http
    home = owner.get(f"{web.url}/orgs/{connected.org_id}")
    chose = owner.post(f"{web.url}/language", data={
        "language": "de", "csrf_token": flows.csrf_token(home.text),
        "next": f"/orgs/{connected.org_id}"})
    assert chose.status_code == 200
    with app.app_context():
        assert db.session.scalar(select(User.language).where(User.email == EMAIL)) == "de"

    link, name = portal_link(app, connected.org_id)
    customer = requests.Session()
    page = customer.get(link).text
    invoice_id = int(re.findall(r'id="invoice-(\d+)"', page)[0])
    action, fields = form_of(page, f"/invoices/{invoice_id}/dispute")
    disputed = customer.post(web.url + action, data={**fields,
                                                     "reason": "Die Lieferung fehlt"})
    assert disputed.status_code == 200
    action, fields = form_of(customer.get(link).text, f"/invoices/{invoice_id}/plan")
    first = clock().date() + timedelta(days=3)
    asked = customer.post(web.url + action, data={
        **fields, "instalments": "3", "every_days": "14", "first_on": first.isoformat()})
    assert asked.status_code == 200
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
