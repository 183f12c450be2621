"""Fees after a pause, on both providers: an overdue invoice with daily interest and a fee
repeating every ten days is paused from its page for twenty days and resumed (or its customer
is marked disputed from the customer's page for twenty days and the mark cleared); the books
get what accrued outside the hold, each period once on its own day, and nothing for the held
days (before, resuming charged every period the pause covered on one day, and clearing a
customer's dispute every period it covered)."""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from tests.integration import flows
from tests.integration.conftest import EMAIL
from tests.integration.test_invoice_actions import _post, _signed_in
from tests.integration.test_policy_engine_e2e import Books, _connect
from tests.integration.test_portal import sync_and_run

pytestmark = pytest.mark.db

PERIOD, RATE, PERCENT = 10, Decimal("10"), Decimal("1")
STARTED = 5  # the fee rules' first day is five days before the pause


def _policy(grace_days: int) -> dict[str, object]:
    """Interest and a repeating fee, their first day STARTED days before today; every day a
    sending day, so each charge is written on the day it falls due."""
    common = {"period_days": PERIOD, "grace_days": grace_days}
    return {"version": 2, "business_days_only": False,
            "reminder_steps": [{"offset_days": 0}],
            "late_fees": [
                {"id": "interest", "rule": {"kind": "daily_interest",
                                            "annual_rate_percent": str(RATE), **common}},
                {"id": "fee", "rule": {"kind": "recurring_percentage",
                                       "percent": str(PERCENT), **common}}]}


def _charges(books: Books, invoice_id: str) -> list[tuple[str, Decimal]]:
    """The lines Dunwell wrote on the invoice in the books (each carries its marker)."""
    return [line for line in books.lines(invoice_id) if "(ref DW-" in line[0]]


def _pause(client, org_id: int, invoice_id: int, contact_id: int, on: bool) -> None:  # type: ignore[no-untyped-def]
    """Chasing of the invoice paused from its page until resumed, or resumed."""
    base = f"/orgs/{org_id}/invoices/{invoice_id}"
    if on:
        paused = _post(client, f"{base}/pause", how="resumed", until="",
                       reason="Customer's accounts team is on strike")
        assert "Chasing paused." in paused.text
    else:
        assert "Chasing resumed" in _post(client, f"{base}/resume").text


def _customer_dispute(client, org_id: int, invoice_id: int, contact_id: int, on: bool) -> None:  # type: ignore[no-untyped-def]
    """The customer marked disputed, or the mark cleared, in the collection settings on the
    customer's page (the other settings as they are)."""
    page = client.get(f"/orgs/{org_id}/customers/{contact_id}")
    form = {"csrf_token": flows.csrf_token(page.text), "page": "contact", "kind": "business",
            "late_fees": "policy", "plans": "policy", **({"disputed": "on"} if on else {})}
    saved = client.post(f"/orgs/{org_id}/settings/contacts/{contact_id}", data=form,
                        follow_redirects=True)
    assert saved.status_code == 200 and "Saved the settings of" in saved.text


HOLDS = {"pause": _pause, "customer_dispute": _customer_dispute}


@pytest.mark.parametrize("hold", sorted(HOLDS))
@pytest.mark.parametrize("provider", ["xero", "quickbooks"])
def test_a_paused_invoice_is_charged_only_for_the_days_outside_the_pause(  # type: ignore[no-untyped-def]
        app, clock, sandbox, qbo_sandbox, provider: str, hold: str) -> None:
    from jobs.tasks import sync_org
    from store.db import db
    from store.models import (
        Action,
        AuditEvent,
        Contact,
        ContactDispute,
        Invoice,
        Organisation,
        Policy,
    )

    books, org_id, web = _connect(app, provider, clock, sandbox, qbo_sandbox)
    try:
        with app.app_context():
            sync_org(org_id, plan_after=False)
            org = db.session.get(Organisation, org_id)
            zone = ZoneInfo(org.timezone)
            today = clock().astimezone(zone).date()
            target = next(i for i in db.session.scalars(select(Invoice).where(
                Invoice.org_id == org_id, Invoice.status == "open").order_by(Invoice.id))
                if i.contact is not None and i.contact.email and i.amount_paid == 0
                and i.due_date is not None and i.due_date <= today - timedelta(days=31))
            # Only the target's customer is chased: the test reads one invoice's books.
            for contact in db.session.scalars(select(Contact).where(
                    Contact.org_id == org_id, Contact.id != target.contact_id)):
                contact.excluded = True
            grace = (today - target.due_date).days - 1 - STARTED
            db.session.merge(Policy(id=db.session.scalar(select(Policy.id).where(
                Policy.org_id == org_id)), org_id=org_id, version=2, body=_policy(grace)))
            db.session.commit()
            invoice_id, provider_id = target.id, target.provider_id
            contact_id = target.contact_id
            if hold == "customer_dispute":  # what the form below sends besides the mark
                target.contact.is_business, target.contact.language = True, None
            principal, currency = target.amount_due, target.currency
        fee = (principal * PERCENT / 100).quantize(Decimal("0.01"), ROUND_HALF_UP)

        # Today: the fee's first period (its day was five days ago); interest's first period
        # (those five days and the next five) has not ended.
        sync_and_run(app, org_id)
        assert [amount for _, amount in _charges(books, provider_id)] == [fee]

        client = _signed_in(app, EMAIL)
        HOLDS[hold](client, org_id, invoice_id, contact_id, True)
        clock.advance(days=20)
        sync_and_run(app, org_id)
        assert [amount for _, amount in _charges(books, provider_id)] == [fee]  # held

        HOLDS[hold](client, org_id, invoice_id, contact_id, False)
        sync_and_run(app, org_id)
        # The day chasing resumes: no period the pause covered is charged on it.
        assert [amount for _, amount in _charges(books, provider_id)] == [fee]

        clock.advance(days=STARTED)
        sync_and_run(app, org_id)
        # Interest and the fee fall due together; the second write to the invoice finds it
        # changed by the first and is planned again (collect/execute.py), for the next run.
        clock.advance(minutes=5)
        sync_and_run(app, org_id)
        # Ten days of interest counted: the five before the pause and the five since.
        interest = (principal * RATE * PERIOD / 36500).quantize(Decimal("0.01"), ROUND_HALF_UP)
        assert sorted(amount for _, amount in _charges(books, provider_id)) == sorted(
            [fee, fee, interest])
        with app.app_context():
            rows = {a.key.split(":", 2)[2]: a for a in db.session.scalars(select(Action).where(
                Action.invoice_id == invoice_id, Action.kind.in_(("fee", "interest"))))}
            assert sorted(rows) == ["fee:fee:0", "fee:fee:1", "fee:interest:0"]
            assert {key: a.status for key, a in rows.items()} == dict.fromkeys(rows, "done")
            held_from = today.isoformat()
            back_on = (today + timedelta(days=20)).isoformat()
            period = rows["fee:interest:0"].details
            assert (period["period_start"], period["period_end"]) == (
                (today - timedelta(days=STARTED)).isoformat(),
                (today + timedelta(days=20 + PERIOD - STARTED - 1)).isoformat())
            assert "20 days paused or in dispute not counted" in rows["fee:interest:0"].reason
            assert f"({held_from}.." in rows["fee:interest:0"].reason
            assert rows["fee:fee:1"].details["period_start"] == (
                today + timedelta(days=20 + PERIOD - STARTED)).isoformat()
            assert back_on < rows["fee:fee:1"].details["period_start"]
            assert {a.currency for a in rows.values()} == {currency}
            if hold == "customer_dispute":
                # The customer's dispute is dated, and who set and cleared it is in the log.
                dispute = db.session.scalars(select(ContactDispute).where(
                    ContactDispute.contact_id == contact_id)).one()
                assert (dispute.started_at.astimezone(zone).date().isoformat(),
                        dispute.ended_at.astimezone(zone).date().isoformat()) == (
                    held_from, back_on)
                logged = db.session.scalars(select(AuditEvent).where(
                    AuditEvent.org_id == org_id, AuditEvent.kind == "customer_disputed")
                    .order_by(AuditEvent.id)).all()
                assert [(e.data["disputed"], e.data["by"], e.data["contact_id"])
                        for e in logged] == [(True, EMAIL, contact_id), (False, EMAIL, contact_id)]
                name = db.session.get(Contact, contact_id).name
        if hold == "customer_dispute":
            # The activity log words both in the reader's language, with who did it.
            pages = {language: _signed_in(app, EMAIL).get(f"/orgs/{org_id}", headers={
                "Accept-Language": language}).text for language in ("de", "he")}
            assert f"{name} von {EMAIL} als strittig markiert" in pages["de"]
            assert f"Streitfall von {name} von {EMAIL} aufgehoben" in pages["de"]
            assert f"המחלוקת עם {name} הוסרה על ידי {EMAIL}" in pages["he"]

        # The day runs again: nothing is charged twice.
        before = _charges(books, provider_id)
        clock.advance(minutes=5)
        sync_and_run(app, org_id)
        assert _charges(books, provider_id) == before
    finally:
        web.stop()
