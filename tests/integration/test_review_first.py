"""The first hour, on both sandboxes: a new organisation is synced and planned in review and
nothing reaches its books or a customer until the owner goes live; then an invoice long
overdue gets the first contact and the next step at the ladder's spacing, earlier lateness is
charged nothing unless the owner opted in, and a fee invoice Dunwell made is never chased."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text

from tests.integration import flows
from tests.integration.conftest import connect, run_jobs

pytestmark = pytest.mark.db

FEE_POLICY = {
    "version": 2,
    "reminder_steps": [{"offset_days": -3}, {"offset_days": 0},
                       {"offset_days": 7, "tone": "firm"}, {"offset_days": 21, "tone": "final"}],
    "late_fees": [{"id": "late", "rule": {"kind": "flat", "amount": "25.00", "grace_days": 0,
                                          "placement": "separate_invoice"}}],
}


def books(provider: str, sandbox: Any, qbo_sandbox: Any, tenant: str) -> str:
    return flows.books_state(provider, (sandbox if provider == "xero" else qbo_sandbox)[0],
                             tenant)


def emails_of(provider: str, sandbox: Any, qbo_sandbox: Any, tenant: str) -> list[str]:
    if provider == "xero":
        return [str(e["InvoiceID"]) for e in sandbox[0].emails(tenant)]
    return [str(e["InvoiceId"]) for e in qbo_sandbox[0].emails(tenant)]


def start(provider: str, clock: Any) -> None:
    if provider == "quickbooks":
        clock.set(datetime(2026, 11, 24, 18, 0, tzinfo=UTC))  # 10:00 in California


@pytest.mark.parametrize("provider", ["xero", "quickbooks"])
def test_nothing_reaches_the_books_before_go_live_then_first_contact_and_spacing(  # type: ignore[no-untyped-def]
        app, web, sandbox, qbo_sandbox, clock, provider: str) -> None:
    from app.settings.services import save_policy
    from jobs.tasks import enqueue_sync
    from rules import policy_from_json
    from store.db import db
    from store.models import Action, AuditEvent, Invoice, Organisation

    start(provider, clock)
    untouched = None
    connected = connect(app, web, provider, live=False)
    tenant = connected.tenant_id
    untouched = books(provider, sandbox, qbo_sandbox, tenant)
    run_jobs(app)  # the first sync and the day's run, in review
    with app.app_context():
        org = db.session.get(Organisation, connected.org_id)
        assert org.mode == "review" and org.live_since is None
        save_policy(org, "the test", policy_from_json(FEE_POLICY), clock())
        assert db.session.scalar(select(func.count(Action.id))) == 0
        told = db.session.scalars(select(AuditEvent.message).where(
            AuditEvent.kind == "review_run")).all()
        assert told and "nothing was sent" in told[0]
    # Another day's run, and the setup page with its previews: still nothing anywhere.
    with app.app_context():
        enqueue_sync(connected.org_id)
    run_jobs(app)
    page = connected.http.get(f"{web.url}/orgs/{connected.org_id}/setup")
    assert page.status_code == 200 and "In review." in page.text and "week-counts" in page.text
    assert books(provider, sandbox, qbo_sandbox, tenant) == untouched
    with app.app_context():
        assert db.session.scalar(select(func.count(Action.id))) == 0

    # Go live without charging earlier lateness.
    flows.go_live(connected.http, web.url, connected.org_id, charge_earlier=False)
    run_jobs(app)
    today = clock()
    with app.app_context():
        org = db.session.get(Organisation, connected.org_id)
        assert org.mode == "live" and org.live_since is not None
        local_today = today.astimezone(ZoneInfo(org.timezone)).date()
        actions = db.session.scalars(select(Action).where(
            Action.org_id == org.id)).all()
        assert actions and books(provider, sandbox, qbo_sandbox, tenant) != untouched
        # Pre-existing lateness is charged nothing: a fee only where lateness began today (the
        # rule's grace is 0 days: due yesterday), none where it began before go-live.
        fined = [db.session.get(Invoice, a.invoice_id) for a in actions
                 if a.kind in ("fee", "interest", "compensation")]
        assert all(i.due_date + timedelta(days=1) >= local_today for i in fined), [
            (i.number, i.due_date) for i in fined]
        # No invoice's first message is the final step.
        assert not [a for a in actions if a.kind == "reminder" and a.step_index == 3]
        late = db.session.scalars(select(Invoice).where(
            Invoice.org_id == org.id, Invoice.status == "open",
            Invoice.due_date <= local_today - timedelta(days=60))).all()
        reminded = {a.invoice_id: a for a in actions if a.kind == "reminder"}
        long_late = sorted((i for i in late if i.id in reminded),
                           key=lambda i: abs((local_today - i.due_date).days - 84))
        assert long_late, "the seed must hold an invoice about 84 days overdue"
        target = long_late[0]
        first = reminded[target.id]
        assert (first.step_index, first.tone, first.status) == (2, "friendly", "done")
        assert (first.details or {}).get("first_contact") is True
        # The next step comes at the ladder's spacing from the contact: 21 - 7 = 14 days.
        nxt = target.next_action_at
        assert nxt is not None
        assert (nxt.astimezone(first.scheduled_for.tzinfo).date()
                - first.scheduled_for.date()).days in (14, 15, 16)  # a weekend moves it on
        target_id, target_provider_id = target.id, target.provider_id
    before = emails_of(provider, sandbox, qbo_sandbox, tenant).count(target_provider_id)
    assert before == 1

    # Thirteen days on: nothing more for it. Fourteen (or the next business day): step 4.
    clock.advance(days=13)
    with app.app_context():
        enqueue_sync(connected.org_id)
    run_jobs(app)
    assert emails_of(provider, sandbox, qbo_sandbox, tenant).count(target_provider_id) == 1
    while emails_of(provider, sandbox, qbo_sandbox, tenant).count(target_provider_id) == 1:
        assert clock() - today < timedelta(days=17)
        clock.advance(days=1)
        with app.app_context():
            enqueue_sync(connected.org_id)
        run_jobs(app)
    with app.app_context():
        keys = db.session.scalars(select(Action.key).where(
            Action.invoice_id == target_id, Action.kind == "reminder")
            .order_by(Action.id)).all()
        assert [k.rsplit(":", 1)[1] for k in keys] == ["2", "3"]
        fees = db.session.scalars(select(Action).where(
            Action.invoice_id == target_id, Action.kind == "fee")).all()
        assert fees == []  # its lateness began before go-live: never charged


@pytest.mark.parametrize("provider", ["xero", "quickbooks"])
def test_a_fee_invoice_dunwell_made_is_never_reminded(  # type: ignore[no-untyped-def]
        app, web, sandbox, qbo_sandbox, clock, provider: str) -> None:
    from app.settings.services import save_policy
    from jobs.tasks import enqueue_sync
    from rules import policy_from_json
    from store.db import db
    from store.models import Action, Invoice, Organisation, OwnDocument

    start(provider, clock)
    connected = connect(app, web, provider, live=False)
    run_jobs(app)
    with app.app_context():
        org = db.session.get(Organisation, connected.org_id)
        save_policy(org, "the test", policy_from_json(FEE_POLICY), clock())
    flows.go_live(connected.http, web.url, connected.org_id, charge_earlier=True)
    run_jobs(app)
    with app.app_context():
        made = db.session.scalars(select(OwnDocument.provider_id).where(
            OwnDocument.org_id == connected.org_id)).all()
        assert made, "charging earlier lateness on separate invoices made fee invoices"
    # The fee invoices are synced back, fall due after 14 days, and stay unchased for 40.
    for _ in range(4):
        clock.advance(days=10)
        with app.app_context():
            enqueue_sync(connected.org_id)
        run_jobs(app)
    with app.app_context():
        ours = db.session.scalars(select(Invoice).where(
            Invoice.org_id == connected.org_id, Invoice.provider_id.in_(made))).all()
        assert len(ours) == len(made)
        assert any(i.status == "open" and i.due_date < clock().date() for i in ours)
        assert db.session.scalar(select(func.count(Action.id)).where(
            Action.invoice_id.in_([i.id for i in ours]))) == 0
        assert all(i.next_action_at is None for i in ours)


def test_bad_input_on_the_setup_page_says_so_and_saves_nothing(app, web, clock) -> None:  # type: ignore[no-untyped-def]
    from app.settings.services import save_policy
    from rules import policy_from_json
    from store.db import db
    from store.models import Organisation, Policy

    connected = connect(app, web, "xero", live=False)
    with app.app_context():
        org = db.session.get(Organisation, connected.org_id)
        save_policy(org, "the test", policy_from_json(FEE_POLICY), clock())
        version = db.session.scalar(select(Policy.version))
    http, base = connected.http, f"{web.url}/orgs/{connected.org_id}/setup"
    csrf = flows.csrf_token(http.get(base).text)
    refused = http.post(f"{base}/preset", data={"csrf_token": csrf, "preset": "reckless"})
    assert refused.status_code == 422 and "Choose one of the offered ladders." in refused.text
    # Fees not acknowledged: not live, the policy as it was.
    refused = http.post(f"{base}/go-live", data={"csrf_token": csrf, "charge_earlier": "on"})
    assert refused.status_code == 422 and "confirm you have seen the fees" in refused.text
    with app.app_context():
        org = db.session.get(Organisation, connected.org_id)
        assert org.mode == "review" and org.live_since is None
        assert db.session.scalar(select(Policy.version)) == version
        assert "effective_from" not in json.dumps(db.session.scalar(select(Policy.body)))
    # A preset, then go live with the fees seen: each saves whole.
    assert http.post(f"{base}/preset", data={"csrf_token": csrf, "preset": "firm"}).ok
    live = http.post(f"{base}/go-live", data={"csrf_token": csrf, "fees_seen": "on"})
    assert live.status_code == 200
    with app.app_context():
        body = db.session.scalar(select(Policy.body))
        assert len(body["reminder_steps"]) == 5 and body["repeat"]["every_days"] == 7
        assert body["late_fees"][0]["effective_from"] == clock().date().isoformat()
        assert db.session.get(Organisation, connected.org_id).mode == "live"
    assert Decimal(body["late_fees"][0]["rule"]["amount"]) == Decimal("25.00")


def test_organisations_that_existed_stay_live_and_new_ones_start_in_review(  # type: ignore[no-untyped-def]
        empty_database_url) -> None:
    from sqlalchemy import create_engine

    from migrations import upgrade

    upgrade("f1session0001", url=empty_database_url)
    engine = create_engine(empty_database_url)
    insert = text("INSERT INTO organisations (name, country, timezone, base_currency, created_at,"
                  " safe_mode) VALUES (:name, 'GB', 'UTC', 'GBP', :at, :safe)")
    with engine.begin() as connection:
        connection.execute(insert, {"name": "Old Ltd", "at": datetime.now(UTC), "safe": False})
        connection.execute(insert, {"name": "Careful Ltd", "at": datetime.now(UTC), "safe": True})
    upgrade(url=empty_database_url)
    with engine.begin() as connection:
        connection.execute(insert, {"name": "New Ltd", "at": datetime.now(UTC), "safe": False})
        rows = dict(connection.execute(text(
            "SELECT name, mode FROM organisations")).all())
        safe = connection.execute(text(
            "SELECT safe_mode FROM organisations WHERE name = 'Careful Ltd'")).scalar()
    engine.dispose()
    assert rows == {"Old Ltd": "live", "Careful Ltd": "live", "New Ltd": "review"}
    assert safe  # approvals, as it was
