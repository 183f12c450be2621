"""The daily run's actions go to the workers as one job per group of an organisation's actions
(jobs.tasks.execute_actions), and every guarantee of one job per action holds: each action
runs once through the ledger, a 429 books the rest of the group for when the budget refills,
one action's failure is its own, a retry re-runs only what is not done, the log lines name
each action's organisation and invoice, the sweeper leaves a waiting group alone and rescues
a lost one, and a group steps aside for a payment's webhook sync."""

from __future__ import annotations

import logging
from collections import Counter

import pytest
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from tests.conftest import LiveServer
from tests.integration.conftest import run_jobs

pytestmark = pytest.mark.db


@pytest.fixture
def sandbox(faulty_sandbox: tuple[object, LiveServer]) -> tuple[object, LiveServer]:
    """The Xero sandbox behind a fault injector (the app fixture talks to this one)."""
    return faulty_sandbox


def _queue(app) -> Queue:  # type: ignore[no-untyped-def]
    from collect.providers import redis_client

    return Queue(app.config["RQ_QUEUE"], connection=redis_client())


def _planned(app, org_id: int) -> list[int]:  # type: ignore[no-untyped-def]
    """The first sync, then the planning job as the daily run runs it (its groups queued)."""
    from jobs.tasks import plan_org, sync_org
    from store.db import db
    from store.models import Action

    sync_org(org_id, plan_after=False)
    _queue(app).empty()
    assert plan_org(org_id) >= 3
    ids = list(db.session.scalars(select(Action.id).where(
        Action.org_id == org_id, Action.status == "planned").order_by(Action.id)))
    assert len(ids) >= 3
    return ids


def _reminders(app, org_id: int) -> list[int]:  # type: ignore[no-untyped-def]
    """Planned reminders (each re-reads its invoice at the provider, then emails it)."""
    from store.db import db
    from store.models import Action

    _planned(app, org_id)
    ids = list(db.session.scalars(select(Action.id).where(
        Action.org_id == org_id, Action.status == "planned", Action.kind == "reminder",
        Action.channel == "provider_email").order_by(Action.id)))
    assert len(ids) >= 3
    return ids


def _groups_queued(app) -> dict[str, list[int]]:  # type: ignore[no-untyped-def]
    return {job.id: list(job.args[0]) for job in _queue(app).get_jobs()
            if job.func_name.endswith("execute_actions")}


def _provider_id(action_id: int) -> str:
    """The provider's id of the invoice an action is filed under."""
    from store.db import db
    from store.models import Action

    return str(db.session.get(Action, action_id).invoice.provider_id)


def _booked(app) -> list[Job]:  # type: ignore[no-untyped-def]
    """The group jobs booked for later."""
    from collect.providers import redis_client

    return [Job.fetch(j, connection=redis_client())
            for j in ScheduledJobRegistry(queue=_queue(app)).get_job_ids()
            if j.startswith("action-group-")]


def _each_emailed_once(state, tenant_id: str, invoices: int) -> None:  # type: ignore[no-untyped-def]
    emailed = _emails(state, tenant_id)
    assert len(emailed) == invoices and set(emailed.values()) == {1}


def _statuses(ids: list[int]) -> dict[int, str]:
    from store.db import db
    from store.models import Action

    db.session.expire_all()
    return dict(db.session.execute(select(Action.id, Action.status).where(
        Action.id.in_(ids))).all())


def _emails(state, tenant_id: str) -> Counter[str]:  # type: ignore[no-untyped-def]
    return Counter(e["InvoiceID"] for e in state.emails(tenant_id))


def test_the_daily_run_queues_one_job_per_group_of_an_organisations_actions(
        app, connected, sandbox, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from collect.providers import redis_client
    from jobs import tasks
    from store.db import db
    from store.models import Action, Invoice

    state, _ = sandbox
    monkeypatch.setattr(tasks, "GROUP_SIZE", 2)
    with app.app_context():
        ids = _planned(app, connected.org_id)
        groups = _groups_queued(app)
        # Every action in exactly one group, groups of at most 2, no job of its own.
        assert sorted(i for group in groups.values() for i in group) == ids
        assert all(1 <= len(group) <= 2 for group in groups.values())
        assert len(groups) == (len(ids) + 1) // 2
        assert not [j for j in _queue(app).job_ids if j.startswith("action-")
                    and j not in groups]
        # The sweeper can tell which job holds each action.
        held = {int(k): v.decode() for k, v in redis_client().hgetall(tasks.GROUP_OF).items()}
        assert held == {i: job_id for job_id, group in groups.items() for i in group}

    run_jobs(app)
    with app.app_context():
        statuses = _statuses(ids)
        assert set(statuses.values()) <= {"done", "skipped"}
        assert "done" in statuses.values()
        assert redis_client().hlen(tasks.GROUP_OF) == 0
        # Each invoice emailed at most once.
        emailed = _emails(state, connected.tenant_id)
        assert emailed and set(emailed.values()) == {1}
        done_invoices = set(db.session.scalars(select(Invoice.provider_id).join(
            Action, Action.invoice_id == Invoice.id).where(
            Action.id.in_(ids), Action.status == "done", Action.kind == "reminder",
            Action.channel == "provider_email")))
        assert set(emailed) == done_invoices


def test_a_group_runs_each_action_once_however_often_it_is_delivered(
        app, connected, sandbox) -> None:  # type: ignore[no-untyped-def]
    from jobs.tasks import execute_action, execute_actions

    state, _ = sandbox
    with app.app_context():
        ids = _reminders(app, connected.org_id)
        first = execute_actions(ids)
        assert first == {"done": len(ids)}
        # The same group again, and one of its actions on its own: nothing more happens.
        assert execute_actions(ids) == {"done": len(ids)}
        assert execute_action(ids[0]) == "done"
        _each_emailed_once(state, connected.tenant_id, len(ids))


def test_a_group_works_out_its_invoices_next_action_times_once_at_its_end(
        app, connected, clock) -> None:  # type: ignore[no-untyped-def]
    """Each invoice a group's actions touched has the next action time its state now gives (as
    refresh_next_action works it out), past the reminder just sent; the group reads the
    organisation's book for them once, not once per action."""
    from sqlalchemy import event

    from collect.plan import refresh_next_action
    from jobs.tasks import execute_actions
    from store.db import db
    from store.models import Action, Invoice, Organisation

    with app.app_context():
        ids = _reminders(app, connected.org_id)
        invoice_ids = sorted(set(db.session.scalars(select(Action.invoice_id).where(
            Action.id.in_(ids)))))
        policies_read: list[str] = []

        def count(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
            if statement.lstrip().upper().startswith("SELECT POLICIES."):
                policies_read.append(statement)

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            assert execute_actions(ids) == {"done": len(ids)}
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        assert len(policies_read) == 1  # one book for the group (one per action before)
        db.session.expire_all()
        after = dict(db.session.execute(select(Invoice.id, Invoice.next_action_at).where(
            Invoice.id.in_(invoice_ids))).all())
        assert all(when is None or when > clock() for when in after.values()), after
        refresh_next_action(db.session(), db.session.get(Organisation, connected.org_id),
                            clock(), invoice_ids)
        assert {i.id: i.next_action_at for i in db.session.scalars(select(Invoice).where(
            Invoice.id.in_(invoice_ids)))} == after  # nothing left to work out


def test_a_429_books_the_rest_of_the_group_for_when_the_budget_refills(
        app, connected, sandbox, faulty) -> None:  # type: ignore[no-untyped-def]
    from collect.providers import redis_client
    from jobs import tasks
    from store.db import db
    from store.models import Action

    state, _ = sandbox
    with app.app_context():
        ids = _reminders(app, connected.org_id)
        second = _provider_id(ids[1])
        # Xero asks for 30 s; the test ends the cool-down itself, as its expiry would.
        faulty.faults.add("rate_limited", method="GET", path=rf"/Invoices/{second}$",
                          retry_after=30)
        counts = tasks.execute_actions(ids)
        assert counts == {"done": 1, "deferred": len(ids) - 1}
        statuses = _statuses(ids)
        assert statuses[ids[0]] == "done"
        assert {statuses[i] for i in ids[1:]} == {"planned"}
        rest = db.session.scalars(select(Action).where(Action.id.in_(ids[1:]))).all()
        assert all(a.attempts == 0 and a.error is None for a in rest)
        # The rest is booked as one job, after Xero's Retry-After; nothing of it is lost.
        booked = _booked(app)
        assert len(booked) == 1 and "-at-" in booked[0].id
        job = booked[0]
        assert list(job.args[0]) == ids[1:]
        assert {int(k): v.decode() for k, v in redis_client().hgetall(tasks.GROUP_OF).items()
                } == {i: job.id for i in ids[1:]}
        # Within the tenant's cool-down the booked group calls nobody.
        calls = state.calls(connected.tenant_id)
        assert tasks.execute_actions(ids[1:]) == {"deferred": len(ids) - 1}
        assert state.calls(connected.tenant_id) == calls
        redis_client().delete(f"dunwell:budget:xero:{connected.tenant_id}:cooldown")
        assert tasks.execute_actions(*job.args) == {"done": len(ids) - 1}
        assert set(_statuses(ids).values()) == {"done"}
        _each_emailed_once(state, connected.tenant_id, len(ids))


def test_a_failing_action_is_its_own_and_its_retry_runs_only_it(
        app, connected, sandbox, faulty) -> None:  # type: ignore[no-untyped-def]
    from jobs import tasks

    state, _ = sandbox
    with app.app_context():
        ids = _reminders(app, connected.org_id)
        failing = _provider_id(ids[0])
        rule = faulty.faults.add("server_error", method="POST", path=rf"/Invoices/{failing}/",
                                 times=None)
        assert tasks.execute_actions(ids) == {"failed": 1, "done": len(ids) - 1}
        statuses = _statuses(ids)
        assert statuses[ids[0]] == "failed"
        assert {statuses[i] for i in ids[1:]} == {"done"}
        # Its retry is a group of its own, after ACTION_RETRY's first interval.
        booked = _booked(app)
        assert len(booked) == 1
        job = booked[0]
        assert list(job.args[0]) == [ids[0]]
        waits = ScheduledJobRegistry(queue=_queue(app)).get_scheduled_time(job) \
            - tasks.clock.now()
        assert abs(waits.total_seconds() - tasks.ACTION_RETRY.intervals[0]) <= 1
        rule.times = rule.fired  # the provider is back
        assert tasks.execute_actions(*job.args) == {"done": 1}
        _each_emailed_once(state, connected.tenant_id, len(ids))


def test_an_unexpected_error_stops_only_its_action_and_the_job_says_so(
        app, connected, sandbox, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from collect import execute
    from jobs import tasks
    from store.db import db
    from store.models import Action

    with app.app_context():
        ids = _reminders(app, connected.org_id)
        broken = db.session.get(Action, ids[1]).invoice_id
        note = execute.reminder_note

        def reminder_note(action, invoice):  # type: ignore[no-untyped-def]
            if invoice.id == broken:
                raise KeyError("template")
            return note(action, invoice)

        monkeypatch.setattr(execute, "reminder_note", reminder_note)
        with pytest.raises(tasks.GroupIncomplete, match=f"action {ids[1]}: KeyError"):
            tasks.execute_actions(ids)
        statuses = _statuses(ids)
        assert {statuses[i] for i in ids if i != ids[1]} == {"done"}
        assert statuses[ids[1]] != "done"
        assert [(list(job.args[0]), job.args[1]) for job in _booked(app)] == [([ids[1]], 1)]


def test_the_log_lines_of_a_group_name_each_actions_organisation_and_invoice(
        app, connected, sandbox, caplog) -> None:  # type: ignore[no-untyped-def]
    from jobs.tasks import execute_actions
    from store.db import db
    from store.models import Action

    with app.app_context():
        ids = _reminders(app, connected.org_id)
        actions = db.session.scalars(select(Action).where(Action.id.in_(ids))).all()
        expected = {f"org {a.org_id} invoice {a.invoice_id} action {a.key}: done"
                    for a in actions}
        with caplog.at_level(logging.INFO, logger="collect.ledger"):
            execute_actions(ids)
        lines = [r.getMessage() for r in caplog.records if r.name == "collect.ledger"]
        assert all(any(line.startswith(prefix) for line in lines) for prefix in expected)


def test_the_sweeper_leaves_a_waiting_group_alone_and_rescues_a_lost_one(
        app, connected, sandbox, clock, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from collect.providers import redis_client
    from jobs import tasks
    from store.db import db
    from store.models import Action

    monkeypatch.setattr(tasks, "GROUP_SIZE", 2)
    with app.app_context():
        ids = _planned(app, connected.org_id)
        groups = _groups_queued(app)
        assert len(groups) >= 2
        # Long after planning, the actions still wait their turn in the queue: not stuck.
        for action in db.session.scalars(select(Action).where(Action.id.in_(ids))):
            action.updated_at = clock() - timedelta(minutes=20)
        db.session.commit()
        assert tasks.sweep_ledger(book_next=False) == 0
        assert _groups_queued(app) == groups
        # One group's job is lost (Redis lost it): its actions get a job each again.
        lost_id, lost = sorted(groups.items())[0]
        Job.fetch(lost_id, connection=redis_client()).delete()
        assert tasks.sweep_ledger(book_next=False) == len(lost)
        queued = _queue(app).job_ids
        assert {f"action-{i}" for i in lost} <= set(queued)
        assert not [i for i in ids if i not in lost and f"action-{i}" in queued]
        assert redis_client().hmget(tasks.GROUP_OF, lost) == [None] * len(lost)


def test_a_group_steps_aside_for_a_payments_webhook_sync(app, connected, sandbox) -> None:  # type: ignore[no-untyped-def]
    from jobs import tasks
    from jobs.queues import enqueue_once

    state, _ = sandbox
    with app.app_context():
        ids = _reminders(app, connected.org_id)
        _queue(app).empty()
        enqueue_once(tasks.sync_webhook_changes, connected.org_id,
                     job_id=f"webhook-sync-{connected.org_id}-0", at_front=True)
        # The first action runs (a group always makes progress); then it steps aside.
        assert tasks.execute_actions(ids) == {"done": 1, "stepped_aside": len(ids) - 1}
        queued = _queue(app).get_jobs()
        assert queued[0].id == f"webhook-sync-{connected.org_id}-0"
        assert [list(job.args[0]) for job in queued[1:]] == [ids[1:]]
        assert set(_statuses(ids[1:]).values()) == {"planned"}
        # Nothing waits at the front: a group runs to its end.
        _queue(app).empty()
        assert tasks.execute_actions(ids[1:]) == {"done": len(ids) - 1}
        assert len(_emails(state, connected.tenant_id)) == len(ids)
