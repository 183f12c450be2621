"""Each fault of issue 30 on its own, against real parts: what it once left behind, and what it
must leave now (tests/integration/test_chaos.py runs them all together, from outside)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from redis import Redis
from rq import Queue
from rq.job import JobStatus
from rq.registry import ScheduledJobRegistry
from sqlalchemy import func, select

from benchmarks.chaos import PrivateRedis
from sandboxes.faults import FaultInjector
from tests.conftest import FakeClock
from tests.integration.conftest import Connected, connect, run_jobs

pytestmark = pytest.mark.db


def _faults_in_front(server: Any, provider: str) -> FaultInjector:
    """The running sandbox answers through a fault injector from now on."""
    faults = FaultInjector(server.server.app, provider, seed=3)  # type: ignore[arg-type]
    server.server.app = faults
    return faults


def _next_actions(app, org_id: int) -> dict[int, Any]:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Invoice

    with app.app_context():
        rows = db.session.execute(select(Invoice.id, Invoice.next_action_at).where(
            Invoice.org_id == org_id, Invoice.status == "open")).all()
        db.session.remove()
    return dict(rows)  # type: ignore[arg-type]


def _a_planned_reminder(org_id: int, clock: FakeClock, tag: str) -> Any:
    """The books synced (nothing planned or sent, the queue empty) and one reminder planned by
    hand for the first open invoice whose customer has an email address."""
    from jobs.queues import queue
    from jobs.tasks import sync_org
    from store.db import db
    from store.models import Action, Contact, Invoice

    sync_org(org_id, plan_after=False)
    queue().empty()
    invoice = db.session.scalars(
        select(Invoice).join(Contact, Invoice.contact_id == Contact.id)
        .where(Invoice.org_id == org_id, Invoice.status == "open",
               Contact.email.is_not(None)).order_by(Invoice.id)).first()
    assert invoice is not None
    action = Action(org_id=org_id, invoice_id=invoice.id,
                    key=f"{org_id}:{invoice.id}:reminder:{tag}", kind="reminder",
                    status="planned", planned_amount_due=invoice.amount_due,
                    scheduled_for=clock(), created_at=clock(), updated_at=clock(),
                    reason=f"Test ({tag})", channel="provider_email", step_index=0,
                    step_count=3, template="friendly")
    db.session.add(action)
    db.session.commit()
    return action


def test_an_interrupted_first_sync_leaves_no_invoice_without_its_next_action(
        app, web, sandbox, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    """A provider 500 on the payments page of the first sync (contacts and invoices are
    stored), then the retry: every invoice gets its next-action time, as after a first sync
    that never failed, and the daily run is booked."""
    from collect import plan
    from jobs.tasks import sync_org
    from store.db import db
    from store.models import AuditEvent, Organisation, SyncRun

    faults = _faults_in_front(sandbox[1], "xero")
    connected = connect(app, web, live=False)
    faults.add("server_error", method="GET", path="/Payments$", times=1)
    run_jobs(app)  # the connection's first sync: fails on the payments page
    with app.app_context():
        [run] = db.session.scalars(select(SyncRun)).all()
        assert (run.status, run.mode) == ("failed", "pending")
        assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.kind == "sync_failed")) == 1
        # The failure's class, which the pages word in the reader's language.
        assert db.session.scalars(select(AuditEvent.data).where(
            AuditEvent.kind == "sync_failed")).one()["error_class"] == "transient"
    stored = _next_actions(app, connected.org_id)
    assert len(stored) >= 20 and set(stored.values()) == {None}  # stored, not planned

    with app.app_context():  # RQ's retry
        assert sync_org(connected.org_id, plan_after=False)["mode"] == "full"
        db.session.remove()
    after = _next_actions(app, connected.org_id)
    assert set(after) == set(stored) and any(after.values())
    with app.app_context():  # computing every invoice afresh changes nothing: none was left
        org = db.session.get(Organisation, connected.org_id)
        plan.refresh_next_action(db.session, org, clock())
        db.session.commit()
    assert _next_actions(app, connected.org_id) == after
    booked = ScheduledJobRegistry(app.config["RQ_QUEUE"],
                                  connection=Redis.from_url(app.config["REDIS_URL"]))
    assert any(job.startswith(f"daily-{connected.org_id}-") for job in booked.get_job_ids())


def test_a_sync_after_an_unfinished_one_plans_what_that_one_stored(
        app, connected: Connected, sandbox, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    """An incremental sync dies after storing a page (its next-action times not computed);
    the next sync, which finds nothing new to read, still computes them."""
    from jobs.tasks import sync_org
    from store.db import db
    from store.models import Invoice, SyncRun

    faults = _faults_in_front(sandbox[1], "xero")
    run_jobs(app)  # the first sync
    state, _ = sandbox
    nothing_due = {k for k, v in _next_actions(app, connected.org_id).items() if v is None}
    with app.app_context():
        invoice = db.session.scalars(select(Invoice).where(
            Invoice.org_id == connected.org_id, Invoice.status == "open",
            Invoice.next_action_at.is_not(None))).first()
        assert invoice is not None
        provider_id, planned = invoice.provider_id, invoice.next_action_at
        db.session.remove()
    clock.advance(seconds=5)
    state.add_invoice(connected.tenant_id, {  # a new invoice, already overdue
        "Type": "ACCREC", "Status": "AUTHORISED",
        "Contact": {"Name": "Late Payer Ltd", "EmailAddress": "late@example.com"},
        "Date": (clock().date() - timedelta(days=40)).isoformat(),
        "DueDate": (clock().date() - timedelta(days=10)).isoformat(),
        "LineItems": [{"Description": "Work", "Quantity": 1, "UnitAmount": 250,
                       "AccountCode": "200", "TaxType": "NONE"}]})
    faults.add("server_error", method="GET", path="/Payments$", times=1)
    with app.app_context(), pytest.raises(Exception, match="500"):
        sync_org(connected.org_id, plan_after=False)
    late = {k for k, v in _next_actions(app, connected.org_id).items()
            if v is None} - nothing_due
    assert len(late) == 1  # the new invoice, stored without its time
    with app.app_context():
        assert sync_org(connected.org_id, plan_after=False)["mode"] == "incremental"
        assert [r.status for r in db.session.scalars(select(SyncRun).order_by(SyncRun.id))
                ][-2:] == ["failed", "done"]
        db.session.remove()
    after = _next_actions(app, connected.org_id)
    assert all(after[k] is not None for k in late), after
    with app.app_context():
        again = db.session.scalar(select(Invoice.next_action_at).where(
            Invoice.provider_id == provider_id))
    assert again == planned


def test_a_sync_record_whose_job_is_over_or_gone_is_ended_by_the_sweeper(
        app, connected: Connected, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    from jobs.tasks import STUCK_AFTER, end_lost_sync_runs
    from store.db import db
    from store.models import SyncRun

    redis = Redis.from_url(app.config["REDIS_URL"])
    finished = Queue(app.config["RQ_QUEUE"], connection=redis).enqueue("os.getpid",
                                                                       job_id="sync-finished")
    run_jobs(app)  # runs it (and the connection's first sync)
    assert finished.get_status(refresh=True) == "finished"
    # Jobs the sweeper finds after a run's execution ended (its outcome's write failed with
    # the database): waiting for RQ's retry, back in the queue, or running again.
    queue = Queue(app.config["RQ_QUEUE"], connection=redis)
    queue.enqueue_in(timedelta(hours=1), "os.getpid", job_id="sync-retry-booked")
    queue.enqueue("os.getpid", job_id="sync-queued")
    queue.enqueue("os.getpid", job_id="sync-again").set_status(JobStatus.STARTED)
    with app.app_context():
        now = clock()
        rows = [SyncRun(org_id=connected.org_id, job_id=job_id, mode="pending",
                        status="running", started_at=started, progress={})
                for job_id, started in (
                    ("sync-finished", now),  # its job ended without writing the outcome
                    ("sync-gone", now - STUCK_AFTER - timedelta(seconds=1)),  # Redis lost it
                    ("sync-gone-recent", now),  # gone, but could still be starting
                    ("sync-retry-booked", now), ("sync-queued", now),
                    ("sync-again", now),  # its first execution's run...
                    ("sync-again", now))]  # ...and the one running now
        db.session.add_all(rows)
        db.session.commit()
        assert end_lost_sync_runs() == 5
        statuses = db.session.execute(select(SyncRun.job_id, SyncRun.status).where(
            SyncRun.job_id.in_([r.job_id for r in rows])).order_by(SyncRun.id)).all()
    assert [tuple(row) for row in statuses] == [
        ("sync-finished", "failed"), ("sync-gone", "failed"), ("sync-gone-recent", "running"),
        ("sync-retry-booked", "failed"), ("sync-queued", "failed"), ("sync-again", "failed"),
        ("sync-again", "running")]


def test_a_worker_that_lost_its_claim_writes_nothing(
        app, connected: Connected, sandbox, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    """Paused past its lease after the provider answered: another worker claimed the action
    and carried it out; the paused one resumes and records its part and its outcome. Neither
    reaches the ledger: the result stays the other worker's, 'done' is written once."""
    from collect import execute, ledger
    from collect.providers import connector_for
    from store.db import db
    from store.models import Action, AuditEvent, Organisation

    with app.app_context():
        action = _a_planned_reminder(connected.org_id, clock, "fence")
        invoice = action.invoice
        org = db.session.get(Organisation, connected.org_id)
        assert ledger.claim(db.session, action, "paused/1/a", clock())
        stalled = execute.Effect(db.session, action, invoice, org,
                                 connector_for(org.connection), clock(), owner="paused/1/a")
        with ledger.fenced(db.session, [action], "paused/1/a"):
            stalled.begin("emailed")
        action_id = action.id
        db.session.remove()

    clock.advance(minutes=11)  # its lease ran out; another worker takes the action over
    with app.app_context():
        other = db.session.get(Action, action_id)
        org = db.session.get(Organisation, connected.org_id)
        assert execute.execute_action(db.session, other, connector_for(org.connection),
                                      clock(), owner="other/1/b") == "done"
        taken = dict(other.result or {})
        db.session.remove()

    with app.app_context():  # the paused worker resumes where it stopped
        action = db.session.get(Action, action_id)
        stalled.session, stalled.action = db.session, action
        with pytest.raises(ledger.ClaimLost), ledger.fenced(db.session, [action], "paused/1/a"):
            stalled.record_part("emailed")
        db.session.rollback()
        with pytest.raises(ledger.ClaimLost), ledger.fenced(db.session, [action], "paused/1/a"):
            stalled.finish("Reminder: emailed")
            db.session.commit()
        db.session.rollback()
        db.session.expire_all()
        row = db.session.get(Action, action_id)
        assert (row.status, row.result) == ("done", taken)
        assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action_id == action_id, AuditEvent.kind == "action_done")) == 1
        provider_id = row.invoice.provider_id
    assert [e["InvoiceID"] for e in sandbox[0].emails(connected.tenant_id)] == [provider_id]


def test_a_full_rate_budget_defers_the_daily_run(
        app, connected: Connected, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    from jobs.tasks import daily_run
    from store.db import db
    from store.models import AuditEvent, SyncRun

    run_jobs(app)  # the first sync: its calls fill this minute (the test clock stands still)
    app.config["XERO_CALLS_PER_MINUTE"] = 1
    day = clock().date().isoformat()
    with app.app_context():
        daily_run(connected.org_id, day)  # the minute is spent: waits, does not fail
        last = db.session.scalars(select(SyncRun).order_by(SyncRun.id.desc())).first()
        assert last is not None and last.status == "failed" and "budget" in (last.error or "")
        assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.kind == "sync_failed")) == 0
    booked = ScheduledJobRegistry(app.config["RQ_QUEUE"],
                                  connection=Redis.from_url(app.config["REDIS_URL"]))
    assert any(job.startswith(f"daily-{connected.org_id}-{day}-at-")
               for job in booked.get_job_ids()), booked.get_job_ids()


def test_a_worker_rides_out_a_redis_outage_and_a_restart_empty(database_url: str) -> None:
    """Redis killed under an idle worker, kept down, started again with nothing in it: the
    same worker process, without anyone restarting it, runs the next job."""
    redis_server = PrivateRedis()
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_server.url,
           "RQ_QUEUE": "outage", "SECRET_KEY": "outage", "DUNWELL_SWEEP_SECONDS": "1",
           "DUNWELL_WORKER_BACKOFF": "0.2:1",
           "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(), "PYTHONUNBUFFERED": "1"}
    worker = subprocess.Popen([str(Path(sys.executable).with_name("dunwell")), "worker"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        time.sleep(3)
        redis_server.kill()
        time.sleep(4)  # RQ's loop ends on the lost connection; the worker waits for Redis
        assert worker.poll() is None, "the worker quit while Redis was down"
        redis_server.start()
        job = Queue("outage", connection=Redis.from_url(redis_server.url)).enqueue(
            "os.getpid", job_id="after-the-outage")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and job.get_status(refresh=True) != "finished":
            assert worker.poll() is None, "the worker died"
            time.sleep(0.2)
        finished = job.get_status(refresh=True)
        alive = worker.poll() is None
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        output = worker.communicate(timeout=10)[0].decode(errors="replace")
        redis_server.kill()
    assert finished == "finished" and alive, output[-3000:]


def test_the_budget_counts_minutes_on_redis_clock(redis_url: str) -> None:
    """Without a clock of its own the budget stamps each call with Redis's time: two workers
    whose clocks differ by minutes still fill one window."""
    from connectors.base import RateLimited
    from connectors.ratelimit import RateBudget, server_time

    redis = Redis.from_url(redis_url)
    one = RateBudget(redis, "xero", per_minute=2, per_day=100, max_wait_seconds=0)
    other = RateBudget(Redis.from_url(redis_url), "xero", per_minute=2, per_day=100,
                       max_wait_seconds=0)
    one.take("tenant-skew")
    other.take("tenant-skew")
    with pytest.raises(RateLimited) as caught:
        one.take("tenant-skew")
    assert 55 < caught.value.retry_after <= 60
    stamps = [score for _, score in redis.zrange("dunwell:budget:xero:tenant-skew:minute", 0,
                                                 -1, withscores=True)]
    now = server_time(redis).timestamp() * 1000
    assert len(stamps) == 2 and all(now - 5000 < s <= now for s in stamps)


def test_a_failure_on_a_fast_clock_is_not_hidden_from_the_sweeper(
        app, connected: Connected, sandbox, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    """A worker whose own clock runs three minutes fast records a passing failure, and Redis
    loses the retry. The failure is stamped on the shared clock, as claims are, so the sweeper
    gives the action a job again as soon as it counts as stuck, not three minutes later."""
    from collect import execute
    from collect.outcomes import RetryLater
    from collect.providers import connector_for
    from jobs.queues import queue
    from jobs.tasks import STUCK_AFTER, sweep_ledger
    from store.db import db
    from store.models import Action, Organisation

    faults = _faults_in_front(sandbox[1], "xero")
    with app.app_context():
        action = _a_planned_reminder(connected.org_id, clock, "skew")
        faults.add("server_error", method="GET", path=r"(?i)/invoices?/", times=None)
        org = db.session.get(Organisation, connected.org_id)
        fast = clock() + timedelta(minutes=3)  # this worker's own clock
        with pytest.raises(RetryLater):
            execute.execute_action(db.session, action, connector_for(org.connection), fast,
                                   owner="fast/1/a")
        action_id = action.id
        db.session.remove()
    faults.clear()
    clock.advance(seconds=STUCK_AFTER.total_seconds() + 1)
    with app.app_context():
        row = db.session.get(Action, action_id)
        assert row is not None and row.status == "failed"
        assert row.updated_at <= clock() - STUCK_AFTER
        assert sweep_ledger(book_next=False) == 1  # its job was lost: it gets one again
        assert queue().job_ids == [f"action-{action_id}"]
        db.session.remove()
