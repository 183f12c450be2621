"""The whole flow over real HTTP: sign in, connect the sandbox through the redirect flow, let a
real RQ worker sync, plan and send, then check the sandbox's own books."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

import pytest
import requests
from sqlalchemy import func, select

from tests.conftest import LiveServer
from tests.integration import flows
from tests.integration.conftest import (
    EMAIL,
    PASSWORD,
    create_user,
    expire_tokens_and_sync,
    run_jobs,
)

pytestmark = pytest.mark.db

def expected_reminders(sandbox_state, tenant_id: str, today: date,  # type: ignore[no-untyped-def]
                       emails: dict[str, bool]) -> set[str]:
    """Independent of rules/: on a business day inside the window, the default ladder's first
    step is 3 days before the due date, so every approved, unpaid invoice due within 3 days
    (or overdue) with a reachable contact gets exactly one reminder."""
    due = set()
    for inv in sandbox_state.invoices(tenant_id):
        if inv["Type"] != "ACCREC" or inv["Status"] != "AUTHORISED":
            continue
        if Decimal(str(inv["AmountDue"])) <= 0 or not emails.get(inv["Contact"]["ContactID"]):
            continue
        if date.fromisoformat(inv["DueDateString"][:10]) - timedelta(days=3) <= today:
            due.add(inv["InvoiceID"])
    return due


def contact_emails(app, org_id: int) -> dict[str, bool]:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Contact

    with app.app_context():
        rows = db.session.execute(select(Contact.provider_id, Contact.email)
                                  .where(Contact.org_id == org_id)).all()
    return {pid: bool(email) for pid, email in rows}


def test_connect_sync_remind_and_write_back(app, sandbox, clock) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Action, Connection, Grant, Invoice, Organisation, SyncRun

    state, _ = sandbox
    create_user(app)
    web = LiveServer(app)
    try:
        http = requests.Session()
        assert flows.sign_in(http, web.url, EMAIL, PASSWORD).url.endswith("/orgs")

        consent = flows.start_connect(http, web.url)
        assert consent.status_code == 200 and "Allow access" in consent.text
        landed = flows.answer_consent(http, consent, "allow", tenants=1)
        assert landed.status_code == 200, landed.text[:500]
        assert "/orgs/" in landed.url and "first sync has started" in landed.text

        with app.app_context():
            org = db.session.scalars(select(Organisation)).one()
            connection = db.session.scalars(select(Connection)).one()
            tenant_id, org_id = connection.tenant_id, org.id
            grant = db.session.get(Grant, connection.grant_id)
            assert grant.refresh_token_enc and "refresh" not in grant.refresh_token_enc
        flows.go_live(http, web.url, org_id)  # a new organisation starts in review

        run_jobs(app)  # sync -> plan -> execute

        # The organisation page shows the synced books and the activity log.
        page = http.get(f"{web.url}/orgs/{org_id}")
        assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
        assert "Reminder 1 of 4 emailed" in page.text or "emailed" in page.text

        with app.app_context():
            run = db.session.scalars(select(SyncRun)).one()
            assert run.status == "done" and run.mode == "full"
            synced = db.session.scalar(select(func.count()).select_from(Invoice))
            accrec = [i for i in state.invoices(tenant_id) if i["Type"] == "ACCREC"]
            assert synced == len(accrec) >= 200

        today = clock().date()
        expected = expected_reminders(state, tenant_id, today, contact_emails(app, org_id))
        emails = Counter(e["InvoiceID"] for e in state.emails(tenant_id))
        notes = Counter(h["InvoiceID"] for h in state.history(tenant_id)
                        if h["Details"].startswith("Dunwell: reminder"))
        assert expected, "the seeded books must have reminders due today"
        assert set(emails) == expected and set(notes) == expected
        assert set(emails.values()) == {1} and set(notes.values()) == {1}
        paid_or_draft = {i["InvoiceID"] for i in state.invoices(tenant_id)
                         if i["Status"] in ("PAID", "DRAFT", "SUBMITTED", "VOIDED")}
        assert not paid_or_draft & set(emails)

        with app.app_context():
            done = db.session.scalar(select(func.count()).select_from(Action)
                                     .where(Action.status == "done"))
            assert done == len(expected)

        # Running the day again adds nothing.
        from jobs.tasks import enqueue_sync

        with app.app_context():
            enqueue_sync(org_id)
        run_jobs(app)
        assert Counter(e["InvoiceID"] for e in state.emails(tenant_id)) == emails
        assert len([h for h in state.history(tenant_id)
                    if h["Details"].startswith("Dunwell")]) == len(expected)

        # Tokens expire; a worker refreshes them and the new pair is stored encrypted.
        with app.app_context():
            before = db.session.get(Grant, connection.grant_id).refresh_token_enc
        expire_tokens_and_sync(app, state, clock, org_id)
        with app.app_context():
            grant = db.session.get(Grant, connection.grant_id)
            assert grant.refresh_token_enc != before and grant.status == "active"
            assert db.session.scalars(select(SyncRun).order_by(SyncRun.id.desc())
                                      ).first().status == "done"
    finally:
        web.stop()

    # A restarted worker (a new app, new clients) uses the rotated token: the first refresh
    # token is dead by now (past Xero's 30-minute grace), so only the stored one can work.
    from app import create_app

    restarted = create_app(dict(app.config))
    expire_tokens_and_sync(restarted, state, clock, org_id)
    with restarted.app_context():
        runs = db.session.scalars(select(SyncRun).order_by(SyncRun.id)).all()
        assert [r.status for r in runs] == ["done", "done", "done", "done"]
        assert db.session.get(Connection, connection.id).status == "active"
        db.session.remove()
        db.engine.dispose()
