"""The whole flow for QuickBooks Online over real HTTP: sign in, connect through Intuit's
discovery-based OAuth flow, let a real RQ worker sync, plan and send, then check the sandbox's
own books. Nothing above connectors/ knows it is not Xero."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import requests
from sqlalchemy import func, select

from tests.conftest import LiveServer
from tests.integration import flows
from tests.integration.conftest import EMAIL, PASSWORD, create_user, run_jobs

pytestmark = pytest.mark.db


def expected_reminders(box, realm: str, today: date) -> set[str]:  # type: ignore[no-untyped-def]
    """Independent of rules/: on a business day inside the window, the default ladder's first
    step is 3 days before the due date, so every invoice with a balance, due within 3 days or
    overdue, whose customer has an email address gets exactly one reminder."""
    reachable = {c["Id"] for c in box.customers(realm)
                 if (c.get("PrimaryEmailAddr") or {}).get("Address")}
    return {inv["Id"] for inv in box.invoices(realm)
            if inv["Balance"] > 0 and inv["CustomerRef"]["value"] in reachable
            and date.fromisoformat(inv["DueDate"]) - timedelta(days=3) <= today}


def dunwell_notes(box, realm: str) -> Counter[str]:  # type: ignore[no-untyped-def]
    return Counter(inv["Id"] for inv in box.invoices(realm)
                   for line in str(inv.get("PrivateNote") or "").splitlines()
                   if "Dunwell: reminder" in line)


def test_connect_quickbooks_sync_remind_and_write_back(app, qbo_sandbox, clock) -> None:  # type: ignore[no-untyped-def]
    from jobs.tasks import enqueue_sync
    from store.db import db
    from store.models import Action, Connection, Grant, Invoice, Organisation, SyncRun

    box, _ = qbo_sandbox
    # 10:00 in California, where the first sandbox company keeps its books.
    clock.set(datetime(2026, 11, 24, 18, 0, tzinfo=UTC))
    create_user(app)
    web = LiveServer(app)
    try:
        http = requests.Session()
        assert flows.sign_in(http, web.url, EMAIL, PASSWORD).url.endswith("/orgs")
        consent = flows.start_connect(http, web.url, "quickbooks")
        assert consent.status_code == 200 and "Choose the company" in consent.text
        landed = flows.answer_consent(http, consent, "allow")
        assert landed.status_code == 200, landed.text[:500]
        assert "/orgs/" in landed.url and "first sync has started" in landed.text

        realm = box.companies()[0]["realmId"]
        with app.app_context():
            org = db.session.scalars(select(Organisation)).one()
            connection = db.session.scalars(select(Connection)).one()
            assert (connection.provider, connection.tenant_id) == ("quickbooks", realm)
            assert org.name == box.companies()[0]["CompanyName"]
            org_id, grant_id = org.id, connection.grant_id
            grant = db.session.get(Grant, grant_id)
            assert grant.provider == "quickbooks" and grant.refresh_token_enc
        flows.go_live(http, web.url, org_id)  # a new organisation starts in review

        run_jobs(app)  # sync -> plan -> execute

        page = http.get(f"{web.url}/orgs/{org_id}")
        assert page.status_code == 200 and "QuickBooks" in page.text
        with app.app_context():
            org = db.session.get(Organisation, org_id)
            assert (org.country, org.timezone, org.base_currency) == (
                "US", "America/Los_Angeles", "USD")
            run = db.session.scalars(select(SyncRun)).one()
            assert run.status == "done" and run.mode == "full"
            assert db.session.scalar(select(func.count()).select_from(Invoice)) == len(
                box.invoices(realm))

        expected = expected_reminders(box, realm, date(2026, 11, 24))
        emails = Counter(str(e["InvoiceId"]) for e in box.emails(realm))
        assert len(expected) >= 10, "the seeded books must have reminders due today"
        assert set(emails) == expected and set(emails.values()) == {1}
        notes = dunwell_notes(box, realm)
        assert set(notes) == expected and set(notes.values()) == {1}
        with app.app_context():
            assert db.session.scalar(select(func.count()).select_from(Action).where(
                Action.status == "done")) == len(expected)
        assert all(r["requestid"] for r in box.requests(realm)
                   if r["method"] == "POST" and not r["path"].endswith("/query"))

        # A customer pays one of them in QuickBooks; the day runs again: nothing new is sent.
        paid = sorted(expected)[0]
        balance = next(i["Balance"] for i in box.invoices(realm) if i["Id"] == paid)
        box.pay_invoice(realm, paid, Decimal(balance))
        clock.advance(minutes=5)
        with app.app_context():
            enqueue_sync(org_id)
        run_jobs(app)
        assert Counter(str(e["InvoiceId"]) for e in box.emails(realm)) == emails
        assert dunwell_notes(box, realm) == notes
        with app.app_context():
            invoice = db.session.scalars(select(Invoice).where(
                Invoice.org_id == org_id, Invoice.provider_id == paid)).one()
            assert invoice.status == "paid" and invoice.amount_due == 0
            runs = db.session.scalars(select(SyncRun).order_by(SyncRun.id)).all()
            assert [r.mode for r in runs] == ["full", "incremental"]

        # The access token expires; a worker refreshes it and the rotated pair is stored.
        with app.app_context():
            before = db.session.get(Grant, grant_id).refresh_token_enc
        box.expire_access_tokens()
        clock.advance(hours=2)
        with app.app_context():
            enqueue_sync(org_id)
        run_jobs(app)
        with app.app_context():
            grant = db.session.get(Grant, grant_id)
            assert grant.refresh_token_enc != before and grant.status == "active"
            assert db.session.scalars(select(SyncRun).order_by(SyncRun.id.desc())
                                      ).first().status == "done"

        # The owner disconnects: the consent is revoked at Intuit, nothing more is sent.
        form_page = http.get(f"{web.url}/orgs/{org_id}")
        gone = http.post(f"{web.url}/orgs/{org_id}/disconnect",
                         data={"csrf_token": flows.csrf_token(form_page.text)})
        assert gone.status_code == 200 and "is disconnected" in gone.text
        with app.app_context():
            assert db.session.get(Connection, connection.id).status == "disconnected"
            assert db.session.get(Grant, grant_id).status == "revoked"
        assert all(c.revoked for c in box.consents.values() if c.realm_id == realm)
    finally:
        web.stop()
