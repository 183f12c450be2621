"""The provider's daily limit, spent, on the organisation page: a banner saying at which
provider, how many actions wait and until when (the organisation's local time), gone once the
provider's day has rolled over."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from tests.integration import flows
from tests.integration.conftest import EMAIL, PASSWORD

pytestmark = pytest.mark.db


def _signed_in(app):  # type: ignore[no-untyped-def]
    client = app.test_client()
    page = client.get("/signin")
    answer = client.post("/signin", data={"csrf_token": flows.csrf_token(page.text),
                                          "email": EMAIL, "password": PASSWORD})
    assert answer.status_code == 302, answer.text[:300]
    return client


def _banner(client, org_id: int) -> str | None:  # type: ignore[no-untyped-def]
    import re

    page = client.get(f"/orgs/{org_id}")
    assert page.status_code == 200
    found = re.search(r'<div[^>]*id="daily-limit-banner"[^>]*>(.*?)</div>', page.text, re.S)
    return found.group(1).strip() if found else None


def test_a_spent_daily_limit_shows_on_the_org_page_until_the_day_rolls_over(
        app, connected, sandbox, clock) -> None:  # type: ignore[no-untyped-def]
    from jobs.queues import queue
    from jobs.tasks import execute_action, sync_org
    from store.db import db
    from store.models import Action, AuditEvent, Contact, Invoice

    state, _ = sandbox
    with app.app_context():
        sync_org(connected.org_id, plan_after=False)
        queue().empty()
        invoices = db.session.scalars(
            select(Invoice).join(Contact, Invoice.contact_id == Contact.id)
            .where(Invoice.status == "open", Contact.email.is_not(None))
            .order_by(Invoice.id).limit(2)).all()
        now = clock()
        actions = [Action(org_id=connected.org_id, invoice_id=invoice.id,
                          key=f"{connected.org_id}:{invoice.id}:reminder:limit", kind="reminder",
                          status="planned", planned_amount_due=invoice.amount_due,
                          scheduled_for=now, created_at=now, updated_at=now,
                          reason="Reminder 1", channel="provider_email", step_index=0,
                          step_count=3, template="friendly") for invoice in invoices]
        db.session.add_all(actions)
        db.session.commit()
        ids = [action.id for action in actions]

    client = _signed_in(app)
    assert _banner(client, connected.org_id) is None  # nothing spent yet

    # Xero's day for this tenant is spent: its next call answers 429 "day".
    state.config.per_day_limit = state.calls(connected.tenant_id)  # type: ignore[attr-defined]
    with app.app_context():
        assert [execute_action(i) for i in ids] == ["deferred", "deferred"]
        assert db.session.scalars(select(Action.status).where(Action.id.in_(ids))).all() == [
            "planned", "planned"]
        assert db.session.scalar(select(AuditEvent.kind).where(
            AuditEvent.org_id == connected.org_id, AuditEvent.kind == "daily_limit"))
    # 10:00 UTC on Tuesday 24 November; Xero's day ends at 00:00 UTC, which is midnight in
    # London in winter.
    assert _banner(client, connected.org_id) == (
        "Daily limit reached at Xero; 2 actions deferred until Wed 25 Nov 2026, 00:00 "
        "(Europe/London).")

    # Every worker honours the cooldown until Xero's day ends: the action stays deferred.
    with app.app_context():
        assert execute_action(ids[0]) == "deferred"
        # One of them is settled meanwhile (the invoice was paid): one still waits.
        from collect import ledger
        from store import clock as app_clock

        first = db.session.get(Action, ids[0])
        ledger.finish(db.session, first, "skipped", "Invoice paid", app_clock.now(),
                      result={"reason": "paid"})
        db.session.commit()
    assert _banner(client, connected.org_id) == (
        "Daily limit reached at Xero; 1 action deferred until Wed 25 Nov 2026, 00:00 "
        "(Europe/London).")

    clock.advance(hours=13, minutes=59)  # 23:59 UTC: still the same day
    assert _banner(client, connected.org_id) is not None
    clock.advance(minutes=1)  # 00:00 UTC on the 25th: a new day, a new budget
    assert _banner(client, connected.org_id) is None


def test_the_banner_is_shown_in_the_organisations_own_time_zone(
        app, connected, clock) -> None:  # type: ignore[no-untyped-def]
    """A New Zealand book: Xero's day ends at 00:00 UTC, 13:00 the next day in Auckland."""
    from collect import ledger
    from store import clock as app_clock
    from store.db import db
    from store.models import Organisation

    with app.app_context():
        org = db.session.get(Organisation, connected.org_id)
        org.timezone = "Pacific/Auckland"
        ledger.audit(db.session, org.id, "daily_limit", "Xero's daily API limit is spent",
                     at=app_clock.now() - timedelta(hours=1))
        db.session.commit()
    client = _signed_in(app)
    assert _banner(client, connected.org_id) == (
        "Daily limit reached at Xero; 0 actions deferred until Wed 25 Nov 2026, 13:00 "
        "(Pacific/Auckland).")
    clock.advance(days=1)
    assert _banner(client, connected.org_id) is None


def test_a_limit_spent_again_on_the_next_utc_day_is_told_again_within_one_local_day(
        app, connected, clock) -> None:  # type: ignore[no-untyped-def]
    """Auckland (UTC+13): 23:30 UTC on the 24th and 00:30 UTC on the 25th are both the 25th
    there (12:30 and 13:30), yet two provider days: each spent day gets its own notice, so the
    banner comes back after Xero's day rolled over."""
    from jobs.tasks import _tell_owner_daily_limit
    from store.db import db
    from store.models import AuditEvent, Organisation

    client = _signed_in(app)
    auckland = ZoneInfo("Pacific/Auckland")
    with app.app_context():
        org = db.session.get(Organisation, connected.org_id)
        org.timezone = "Pacific/Auckland"
        db.session.commit()
        clock.advance(hours=13, minutes=30)  # 23:30 UTC on the 24th
        late = clock()
        _tell_owner_daily_limit(org, late)
        _tell_owner_daily_limit(org, late + timedelta(minutes=15))  # the same provider day
        clock.advance(hours=1)  # 00:30 UTC on the 25th: Xero's new day, the same local day
        _tell_owner_daily_limit(org, clock())
        told = db.session.scalars(select(AuditEvent.at).where(
            AuditEvent.org_id == org.id, AuditEvent.kind == "daily_limit")).all()
    assert late.astimezone(auckland).date() == clock().astimezone(auckland).date()
    assert len(told) == 2
    assert _banner(client, connected.org_id) is not None

