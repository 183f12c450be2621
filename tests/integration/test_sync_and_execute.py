"""Sync against the sandbox over HTTP, then execute ledger actions with crashes and races."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from connectors.xero import page_floor

pytestmark = pytest.mark.db


def _snapshot(model) -> list[tuple]:  # type: ignore[no-untyped-def]
    from store.db import db

    columns = [c.name for c in model.__table__.columns]
    rows = db.session.scalars(select(model).order_by(model.id)).all()
    return [tuple(getattr(r, c) for c in columns) for r in rows]


def test_full_sync_at_the_call_floor_then_incremental_changes_nothing(
        app, connected, sandbox) -> None:  # type: ignore[no-untyped-def]
    from jobs.tasks import sync_org
    from store.models import Contact, Invoice, Payment

    state, _ = sandbox
    with app.app_context():
        first = sync_org(connected.org_id, plan_after=False)
        counts = first["counts"]
        assert first["mode"] == "full"
        accrec = [i for i in state.invoices(connected.tenant_id) if i["Type"] == "ACCREC"]
        assert counts["invoices"] == len(accrec)
        # One call for the organisation's details, then the fewest pages per stream.
        assert first["api_calls"] == 1 + sum(page_floor(n) for n in counts.values())
        before = [_snapshot(m) for m in (Contact, Invoice, Payment)]

        second = sync_org(connected.org_id, plan_after=False)
        assert second["mode"] == "incremental"
        # If-Modified-Since has one-second resolution: records of the cursor's own second
        # are read again (never skipped), and change nothing.
        assert sum(second["counts"].values()) <= 3
        assert second["changed_invoices"] == 0
        assert second["api_calls"] == 3
        assert [_snapshot(m) for m in (Contact, Invoice, Payment)] == before


def test_incremental_sync_picks_up_a_payment(app, connected, sandbox) -> None:  # type: ignore[no-untyped-def]
    from jobs.tasks import sync_org
    from store.db import db
    from store.models import Invoice, Payment

    state, _ = sandbox
    with app.app_context():
        sync_org(connected.org_id, plan_after=False)
        target = db.session.scalars(select(Invoice).where(Invoice.status == "open")
                                    .order_by(Invoice.id)).first()
        state.pay_invoice(connected.tenant_id, target.provider_id, target.amount_due)
        result = sync_org(connected.org_id, plan_after=False)
        assert result["counts"]["invoices"] >= 1 and result["counts"]["payments"] >= 1
        assert result["changed_invoices"] == 1
        db.session.refresh(target)
        assert target.status == "paid" and target.amount_due == Decimal("0")
        assert target.next_action_at is None
        payment = db.session.scalars(select(Payment).where(Payment.invoice_id == target.id)
                                     .order_by(Payment.id.desc())).first()
        assert payment is not None and payment.amount > 0


def _plan(app, org_id: int):  # type: ignore[no-untyped-def]
    from collect.plan import plan_org
    from jobs.tasks import sync_org
    from store import clock
    from store.db import db
    from store.models import Organisation

    sync_org(org_id, plan_after=False)
    actions = plan_org(db.session, db.session.get(Organisation, org_id), clock.now())
    db.session.commit()
    assert len(actions) >= 2
    return actions


def test_a_payment_between_planning_and_sending_skips_the_reminder(
        app, connected, sandbox) -> None:  # type: ignore[no-untyped-def]
    from jobs.tasks import execute_action
    from store.db import db

    state, _ = sandbox
    with app.app_context():
        paid, other = _plan(app, connected.org_id)[:2]
        state.pay_invoice(connected.tenant_id, paid.invoice.provider_id,
                          paid.planned_amount_due)
        assert execute_action(paid.id) == "skipped"
        assert execute_action(other.id) == "done"
        db.session.refresh(paid)
        assert paid.result["reason"] == "paid"
        assert paid.invoice.status == "paid"
        emailed = Counter(e["InvoiceID"] for e in state.emails(connected.tenant_id))
        assert emailed == {other.invoice.provider_id: 1}


def test_a_retry_after_a_crash_replays_instead_of_repeating(
        app, connected, sandbox) -> None:  # type: ignore[no-untyped-def]
    from jobs.tasks import execute_action
    from store.db import db

    state, _ = sandbox
    with app.app_context():
        action = _plan(app, connected.org_id)[0]
        assert execute_action(action.id) == "done"
        # The worker "died" after the provider answered but before our commit; its lease ran out.
        from store import clock

        action.status, action.result, action.finished_at = "claimed", None, None
        action.claimed_by, action.lease_until = "dead-worker/1", clock.now() - timedelta(seconds=1)
        db.session.commit()
        assert execute_action(action.id) == "done"
        provider_id = action.invoice.provider_id
        assert Counter(e["InvoiceID"] for e in state.emails(connected.tenant_id)) == {
            provider_id: 1}
        notes = [h for h in state.history(connected.tenant_id, provider_id)
                 if h["Details"].startswith("Dunwell")]
        assert len(notes) == 1
        assert execute_action(action.id) == "done"  # a finished action is a no-op


def test_a_429_defers_the_action_instead_of_failing_it(app, connected, sandbox) -> None:  # type: ignore[no-untyped-def]
    from rq import Queue
    from rq.registry import ScheduledJobRegistry

    from collect.providers import redis_client
    from jobs.tasks import execute_action
    from store.db import db

    state, _ = sandbox
    with app.app_context():
        action = _plan(app, connected.org_id)[0]
        used = len(state.minute_calls[connected.tenant_id])
        state.config.per_minute_limit = used  # the tenant's minute is spent
        assert execute_action(action.id) == "deferred"
        db.session.refresh(action)
        assert (action.status, action.attempts, action.error) == ("planned", 0, None)
        queue = Queue(app.config["RQ_QUEUE"], connection=redis_client())
        assert [j for j in ScheduledJobRegistry(queue=queue).get_job_ids()
                if j.startswith(f"action-{action.id}-at-")]
        assert state.emails(connected.tenant_id) == []
        # Every worker now leaves the tenant alone until Xero's Retry-After has passed.
        cooldown = f"dunwell:budget:xero:{connected.tenant_id}:cooldown"
        assert redis_client().pttl(cooldown) > 0
        calls = state.calls(connected.tenant_id)
        assert execute_action(action.id) == "deferred"
        assert state.calls(connected.tenant_id) == calls  # no hot loop against a 429

        redis_client().delete(cooldown)  # as its expiry would
        state.config.per_minute_limit = 100_000
        assert execute_action(action.id) == "done"
        assert len(state.emails(connected.tenant_id)) == 1


def test_the_daily_run_is_booked_at_the_send_time_in_the_organisations_zone(
        app, connected) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from rq import Queue
    from rq.registry import ScheduledJobRegistry

    from collect.providers import redis_client
    from jobs.tasks import schedule_daily_run, sync_org

    with app.app_context():
        sync_org(connected.org_id, plan_after=False)  # learns the zone: Europe/London
        queue = Queue(app.config["RQ_QUEUE"], connection=redis_client())
        registry = ScheduledJobRegistry(queue=queue)
        job_id = f"daily-{connected.org_id}-2026-11-25"  # 10:00 today is past 09:00
        assert job_id in registry.get_job_ids()
        assert registry.get_scheduled_time(job_id) == datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
        schedule_daily_run(connected.org_id)  # booking again is harmless
        assert [j for j in registry.get_job_ids() if j.startswith("daily-")] == [job_id]


def test_an_action_held_by_a_live_worker_is_not_run_twice(app, connected, sandbox,
                                                          clock) -> None:  # type: ignore[no-untyped-def]
    from collect import ledger
    from jobs.tasks import execute_action
    from store.db import db

    state, _ = sandbox
    with app.app_context():
        action = _plan(app, connected.org_id)[0]
        assert ledger.claim(db.session, action, "worker-a/job-1", clock())
        assert not ledger.claim(db.session, action, "worker-b/job-1", clock())
        assert (action.status, action.claimed_by, action.attempts) == (
            "claimed", "worker-a/job-1", 1)
        assert execute_action(action.id) == "held"
        assert state.emails(connected.tenant_id) == []
        clock.advance(minutes=11)  # worker-a died: its lease runs out
        assert execute_action(action.id) == "done"
        db.session.refresh(action)
        assert (action.attempts, action.claimed_by, action.lease_until) == (2, None, None)
        assert len(state.emails(connected.tenant_id)) == 1


def test_the_sweeper_gives_stuck_actions_a_job_again(app, connected, sandbox, clock) -> None:  # type: ignore[no-untyped-def]
    from rq import Queue
    from rq.registry import ScheduledJobRegistry

    from collect.providers import redis_client
    from jobs.tasks import sweep_ledger
    from store.db import db

    with app.app_context():
        lost, dead_worker, fresh = _plan(app, connected.org_id)[:3]
        redis_client().flushdb()  # every queued job is gone
        dead_worker.status, dead_worker.claimed_by = "claimed", "gone/1"
        dead_worker.lease_until = clock() - timedelta(minutes=1)
        lost.updated_at = clock() - timedelta(minutes=20)
        fresh.updated_at = clock() - timedelta(minutes=1)  # its job may still be on its way
        db.session.commit()
        assert sweep_ledger() == 2
        queue = Queue(app.config["RQ_QUEUE"], connection=redis_client())
        assert set(queue.job_ids) == {f"action-{lost.id}", f"action-{dead_worker.id}"}
        assert any(j.startswith("sweep-")
                   for j in ScheduledJobRegistry(queue=queue).get_job_ids())


def test_a_spent_daily_limit_waits_and_tells_the_owner_once(app, connected, sandbox) -> None:  # type: ignore[no-untyped-def]
    from jobs.tasks import execute_action
    from store.db import db
    from store.models import AuditEvent

    state, _ = sandbox
    with app.app_context():
        first, second = _plan(app, connected.org_id)[:2]
        state.config.per_day_limit = state.calls(connected.tenant_id)  # the day is spent
        assert execute_action(first.id) == "deferred"
        assert execute_action(second.id) == "deferred"
        notices = db.session.scalars(select(AuditEvent).where(AuditEvent.kind == "daily_limit"))
        assert [n.message for n in notices] == [
            "Xero's daily API limit for this organisation is spent; the remaining reminders "
            "wait and go out when it refills."]
        db.session.refresh(first)
        assert first.status == "planned" and state.emails(connected.tenant_id) == []
    page = connected.http.get(f"{connected.web.url}/orgs/{connected.org_id}")
    assert "daily API limit for this organisation is spent" in page.text


def test_an_organisation_that_must_reconnect_pauses_its_actions_until_it_does(
        app, connected, sandbox) -> None:  # type: ignore[no-untyped-def]
    from jobs.tasks import execute_action
    from store.db import db
    from store.models import Connection

    state, _ = sandbox
    with app.app_context():
        waiting, gone = _plan(app, connected.org_id)[:2]
        connection = db.session.scalar(select(Connection).where(
            Connection.org_id == connected.org_id))
        connection.status = "needs_reconnect"
        db.session.commit()
        assert execute_action(waiting.id) == "paused"
        db.session.refresh(waiting)
        assert (waiting.status, waiting.attempts) == ("planned", 0)
        assert state.emails(connected.tenant_id) == []
        connection.status = "active"  # the owner reconnected
        db.session.commit()
        assert execute_action(waiting.id) == "done"
        connection.status = "disconnected"  # the owner disconnected: nothing more goes
        db.session.commit()
        assert execute_action(gone.id) == "skipped"
        db.session.refresh(gone)
        assert gone.result == {"reason": "disconnected"}
        assert len(state.emails(connected.tenant_id)) == 1
