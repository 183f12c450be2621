"""The daily run plans many organisations per pass (collect.plan.plan_orgs): the same books
planned one organisation at a time and in one batch record exactly the same actions and next
action times; an organisation whose data fails is logged and the others' plans are kept; an
organisation with nothing due adds no read to the pass; the RQ job of a batch plans, audits
and enqueues each organisation's actions."""

from __future__ import annotations

import gc
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import delete, event, select, update

pytestmark = pytest.mark.db

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)  # a Wednesday, 10:00 in London
TODAY = NOW.date()

FEES = {"version": 2,
        "reminder_steps": [{"offset_days": -3}, {"offset_days": 0},
                           {"offset_days": 7, "tone": "firm"},
                           {"offset_days": 21, "tone": "final"}],
        "late_fees": [{"id": "late", "rule": {"kind": "flat", "amount": "25.00",
                                              "grace_days": 0,
                                              "placement": "separate_invoice"}}]}
INTEREST = {"version": 2, "reminder_steps": [{"offset_days": 7}],
            "late_fees": [{"id": "statutory", "rule": {"kind": "statutory_interest",
                                                        "jurisdiction": "GB"}}]}


def _org(session, n: int, policy: dict[str, Any] | None, *, timezone: str = "Europe/London",
         country: str = "GB"):  # type: ignore[no-untyped-def]
    from store.models import Contact, Organisation
    from store.models import Policy as PolicyRow

    org = Organisation(name=f"Batch {n} Ltd", country=country, timezone=timezone,
                       base_currency="GBP", mode="live")
    session.add(org)
    session.flush()
    if policy is not None:
        session.add(PolicyRow(org_id=org.id, version=2, body=policy))
    contacts = [Contact(org_id=org.id, provider_id=f"C{n}-{c}", name=f"Customer {c}",
                        email=f"c{c}@example.com" if c != 2 else None, is_customer=True)
                for c in range(3)]
    session.add_all(contacts)
    session.flush()
    return org, contacts


def _invoice(session, org, contact, k: int, overdue_days: int, *, paid: str = "0.00",
             due_now: bool = True):  # type: ignore[no-untyped-def]
    from store.models import Invoice

    total = Decimal("1200.00")
    invoice = Invoice(
        org_id=org.id, provider_id=f"P{org.id}-{k}", number=f"INV-{org.id}-{k:03d}",
        contact_id=contact.id, contact_provider_id=contact.provider_id, currency="GBP",
        issue_date=TODAY - timedelta(days=overdue_days + 30),
        due_date=TODAY - timedelta(days=overdue_days), total=total,
        amount_paid=Decimal(paid), amount_due=total - Decimal(paid), status="open",
        provider_status="AUTHORISED",
        next_action_at=NOW - timedelta(hours=1) if due_now else NOW + timedelta(days=20))
    session.add(invoice)
    session.flush()
    return invoice


def _books(session) -> list[int]:  # type: ignore[no-untyped-def]
    """Organisations unlike each other: policies with fees and statutory interest, a contact
    with its own overrides, one disputed, one without an address, part payments, a payment
    plan, a promise, a document of our own, nothing due, a zone far from London."""
    from store.models import OwnDocument, Payment, PaymentPromise
    from store.models import PaymentPlan as PlanRow

    made = []
    for n, (policy, zone) in enumerate([(None, "Europe/London"), (FEES, "Europe/London"),
                                        (INTEREST, "Europe/London"), (FEES, "Pacific/Auckland"),
                                        (None, "Europe/London")]):
        org, contacts = _org(session, n, policy, timezone=zone)
        made.append(org.id)
        if n == 4:  # nothing due
            _invoice(session, org, contacts[0], 0, 3, due_now=False)
            continue
        if n == 1:
            contacts[1].policy_overrides = {"reminder_steps": [{"offset_days": 1},
                                                               {"offset_days": 10}]}
            contacts[0].disputed = n == 3
        for k, overdue in enumerate((-3, 0, 1, 7, 8, 21, 40, 90)):
            contact = contacts[k % 3]
            invoice = _invoice(session, org, contact, k, overdue,
                               paid="200.00" if k % 4 == 1 else "0.00")
            if k % 4 == 1:
                session.add(Payment(org_id=org.id, provider_id=f"PAY{org.id}-{k}",
                                    invoice_id=invoice.id, amount=Decimal("200.00"),
                                    paid_on=TODAY - timedelta(days=2), status="active"))
            if k == 5:
                session.add(PlanRow(org_id=org.id, invoice_id=invoice.id, status="active",
                                    paid_before=Decimal("0.00"),
                                    instalments=[{"due_date": (TODAY + timedelta(days=3))
                                                  .isoformat(), "amount": "600.00"},
                                                 {"due_date": (TODAY + timedelta(days=33))
                                                  .isoformat(), "amount": "600.00"}]))
            if k == 6:
                session.add(PaymentPromise(org_id=org.id, invoice_id=invoice.id,
                                           contact_id=contact.id, pay_by=TODAY + timedelta(days=5),
                                           amount=invoice.amount_due, currency="GBP",
                                           paid_before=Decimal("0.00"), status="open"))
            if k == 7:
                session.add(OwnDocument(org_id=org.id, provider_id=invoice.provider_id,
                                        invoice_id=None))
    session.commit()
    return made


def _ledger(session, org_ids: list[int]) -> list[tuple[Any, ...]]:  # type: ignore[no-untyped-def]
    from store.models import Action

    return [tuple(row) for row in session.execute(
        select(Action.org_id, Action.invoice_id, Action.key, Action.kind, Action.status,
               Action.amount, Action.currency, Action.scheduled_for, Action.reason,
               Action.channel, Action.details, Action.planned_amount_due)
        .where(Action.org_id.in_(org_ids)).order_by(Action.key))]


def _next_times(session, org_ids: list[int]) -> dict[int, Any]:  # type: ignore[no-untyped-def]
    from store.models import Invoice

    return dict(session.execute(select(Invoice.id, Invoice.next_action_at)
                                .where(Invoice.org_id.in_(org_ids))).all())


def _start_again(session, org_ids: list[int], times: dict[int, Any]) -> None:  # type: ignore[no-untyped-def]
    from store.models import Action, AuditEvent, ExpectedPayment, Invoice

    session.execute(delete(AuditEvent).where(AuditEvent.org_id.in_(org_ids)))
    session.execute(delete(ExpectedPayment).where(ExpectedPayment.org_id.in_(org_ids)))
    session.execute(delete(Action).where(Action.org_id.in_(org_ids)))
    for invoice_id, when in times.items():
        session.execute(update(Invoice).where(Invoice.id == invoice_id)
                        .values(next_action_at=when))
    session.commit()
    session.expire_all()


@pytest.mark.parametrize(("due_per_pass", "copy_from"), [(20_000, None), (3, None), (20_000, 1)])
def test_a_batch_records_exactly_what_one_organisation_at_a_time_records(  # type: ignore[no-untyped-def]
        app, monkeypatch, due_per_pass: int, copy_from: int | None) -> None:
    """Also when the batch's due invoices are planned a few organisations at a time, and
    when PostgreSQL takes the batch's rows by COPY (`copy_from`: from how many rows; one
    organisation's few go as arrays)."""
    from collect import plan
    from collect.plan import plan_org, plan_orgs
    from store.db import db
    from store.models import Organisation
    from sync import engine

    with app.app_context():
        session = db.session
        org_ids = _books(session)
        before = _next_times(session, org_ids)

        for org_id in org_ids:
            plan_org(session, session.get(Organisation, org_id), NOW)
            session.commit()
        one_at_a_time = _ledger(session, org_ids)
        times_one = _next_times(session, org_ids)

        _start_again(session, org_ids, before)
        monkeypatch.setattr(plan, "DUE_PER_PASS", due_per_pass)
        if copy_from is not None:
            monkeypatch.setattr(engine, "COPY_FROM_ROWS", copy_from)
        batch = plan_orgs(session, [session.get(Organisation, i) for i in org_ids], NOW)
        session.commit()
        batched = _ledger(session, org_ids)

        # Reminders in three books, late fees in one; none at 23:00 in Auckland.
        assert len(one_at_a_time) >= 10
        assert {row[3] for row in one_at_a_time} >= {"reminder", "fee"}
        assert {row[0] for row in one_at_a_time} == set(org_ids[:3])
        assert batched == one_at_a_time
        assert _next_times(session, org_ids) == times_one
        assert times_one != before
        assert batch.errors == {}
        assert batch.idle == 1  # the book with nothing due
        assert sum(len(a) for a in batch.actions.values()) == len(batched)


def test_the_pass_stores_next_action_at_as_rules_next_action_at_answers(app, clock) -> None:  # type: ignore[no-untyped-def]
    """The pass asks NextActionPlanner (one answer per combination of facts) for each due
    invoice's next action time: the very time rules.next_action_at gives it with the actions
    just planned in its history, invoice by invoice, across books unlike each other."""
    from collect.book import Book
    from collect.plan import plan_orgs
    from rules import next_action_at
    from store.db import db
    from store.models import Invoice, Organisation

    with app.app_context():
        session = db.session
        org_ids = _books(session)
        clock.set(NOW)
        due = {org_id: list(session.scalars(select(Invoice.id).where(
            Invoice.org_id == org_id, Invoice.next_action_at <= NOW))) for org_id in org_ids}
        plan_orgs(session, [session.get(Organisation, i) for i in org_ids], NOW)
        session.commit()
        session.expire_all()
        compared = 0
        for org_id, ids in due.items():
            org = session.get(Organisation, org_id)
            invoices = session.scalars(select(Invoice).where(Invoice.id.in_(ids))
                                       .order_by(Invoice.id)).all()
            book = Book(session, org, invoices)
            for invoice in invoices:
                assert invoice.next_action_at == next_action_at(
                    book.state(invoice), book.past(invoice), book.policy_of(invoice),
                    book.calendar, NOW), invoice.number
                compared += 1
        assert compared >= 30


def test_one_organisations_bad_data_loses_no_one_elses_plan(app, caplog) -> None:  # type: ignore[no-untyped-def]
    from collect.plan import plan_org, plan_orgs
    from store.db import db
    from store.models import Action, Organisation

    with app.app_context():
        session = db.session
        org_ids = _books(session)
        broken = org_ids[2]
        # What a bad row looks like: an organisation whose zone no longer exists.
        session.get(Organisation, broken).timezone = "Nowhere/Atlantis"
        session.commit()
        with pytest.raises(ValueError, match="unknown time zone"):  # one organisation: raised
            plan_org(session, session.get(Organisation, broken), NOW)
        session.rollback()

        with caplog.at_level(logging.ERROR, logger="collect.plan"):
            batch = plan_orgs(session, [session.get(Organisation, i) for i in org_ids], NOW)
        session.commit()

        assert set(batch.errors) == {broken}
        assert f"org {broken}: planning failed" in caplog.text
        planned = {org_id for (org_id,) in session.execute(
            select(Action.org_id).where(Action.org_id.in_(org_ids)).distinct())}
        assert planned == set(org_ids[:3]) - {broken}  # Auckland sleeps at 23:00
        assert batch.actions[broken] == []


def test_organisations_with_nothing_due_add_no_read(app) -> None:  # type: ignore[no-untyped-def]
    """The statements of a pass over 3 idle organisations and over 30 are the same few."""
    from collect.plan import plan_orgs
    from store.db import db
    from store.models import Organisation

    with app.app_context():
        session = db.session
        idle: list[Any] = []
        for n in range(30):
            org, contacts = _org(session, 100 + n, None)
            _invoice(session, org, contacts[0], 0, 3, due_now=False)
            idle.append(org.id)
        session.commit()
        idle = session.scalars(select(Organisation).where(Organisation.id.in_(idle))
                               .order_by(Organisation.id)).all()  # as the job reads them
        statements: list[str] = []

        def count(conn, cursor, statement, *args: Any) -> None:  # type: ignore[no-untyped-def]
            statements.append(statement)

        engine = session.get_bind()
        event.listen(engine, "before_cursor_execute", count)
        try:
            few = plan_orgs(session, idle[:3], NOW)
            at_three = len(statements)
            statements.clear()
            many = plan_orgs(session, idle, NOW)
            at_thirty = len(statements)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        session.rollback()
        assert (few.idle, many.idle) == (3, 30)
        assert at_three == at_thirty <= 3


def test_the_rq_job_over_idle_organisations_reads_as_few_for_30_as_for_3(app, clock) -> None:  # type: ignore[no-untyped-def]
    """The daily run's job (jobs.tasks.plan_orgs), not only the pass inside it: after its
    commit it reads no organisation again one by one (a SELECT each, 10,000 in a pass over
    10,000 organisations, when the fee batches' read asked for their ids)."""
    from jobs import tasks
    from store.db import db

    with app.app_context():
        session = db.session
        idle: list[int] = []
        for n in range(30):
            org, contacts = _org(session, 200 + n, None)
            _invoice(session, org, contacts[0], 0, 3, due_now=False)
            idle.append(org.id)
        session.commit()
        clock.set(NOW)
        statements: list[str] = []

        def count(conn, cursor, statement, *args: Any) -> None:  # type: ignore[no-untyped-def]
            statements.append(statement)

        engine = db.engine
        event.listen(engine, "before_cursor_execute", count)
        try:
            few = tasks.plan_orgs(idle[:3])
            at_three = len(statements)
            statements.clear()
            many = tasks.plan_orgs(idle)
            at_thirty = len(statements)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert (few["idle"], many["idle"]) == (3, 30)
        assert at_three == at_thirty


@pytest.mark.parametrize("copy_from", [None, 1])
def test_the_rq_job_plans_a_batch_and_enqueues_its_actions(app, clock, monkeypatch,  # type: ignore[no-untyped-def]
                                                           copy_from: int | None) -> None:
    """`copy_from`: PostgreSQL takes the ledger's and the activity log's rows by COPY from
    this many (by default a batch this small goes by arrays and an INSERT)."""
    from rq import Queue

    from collect import ledger
    from collect.providers import redis_client
    from jobs import tasks
    from store.db import db
    from store.models import Action, AuditEvent, Organisation
    from sync import engine

    with app.app_context():
        session = db.session
        org_ids = _books(session)
        session.get(Organisation, org_ids[1]).safe_mode = True
        session.commit()
        clock.set(NOW)
        if copy_from is not None:
            monkeypatch.setattr(engine, "COPY_FROM_ROWS", copy_from)
        result = tasks.plan_orgs(org_ids)
        actions = session.scalars(select(Action).where(Action.org_id.in_(org_ids))).all()
        assert result["planned"] == len(actions) > 0
        assert result["failed"] == [] and result["idle"] == 1
        entries = session.scalars(select(AuditEvent).where(
            AuditEvent.kind == "action_planned", AuditEvent.org_id.in_(org_ids))).all()
        assert {e.action_id for e in entries} == {a.id for a in actions}
        # Each entry as the activity log words it: the action's reason and particulars.
        by_id = {a.id: a for a in actions}
        assert all((e.org_id, e.invoice_id, e.at, e.message, e.data) == (
            by_id[e.action_id].org_id, by_id[e.action_id].invoice_id, NOW,
            f"Planned: {by_id[e.action_id].reason}",
            ledger.about(by_id[e.action_id])) for e in entries)
        # One execution job per group of an organisation's actions: each action sent is in
        # exactly one, with its own organisation's only.
        groups = [job.args[0] for job in Queue(app.config["RQ_QUEUE"],
                                               connection=redis_client()).get_jobs()
                  if job.func_name.endswith("execute_actions")]
        org_of = {a.id: a.org_id for a in actions}
        sent = sorted(a.id for a in actions if a.org_id != org_ids[1])
        assert sent and sorted(i for group in groups for i in group) == sent
        assert all(len({org_of[i] for i in group}) == 1 for group in groups)
        held = [a for a in actions if a.org_id == org_ids[1]]
        assert held and all(a.status == "pending_approval" for a in held)


def test_the_rq_job_pauses_the_cyclic_gc_and_restores_it(app, clock, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The pass's objects are freed by their reference counts; the cyclic collector walking
    them again and again cost a quarter of its CPU. Off for the job, on again after it."""
    from collect import plan
    from jobs import tasks
    from store.db import db

    during: list[bool] = []
    pass_of = plan.plan_orgs

    def watched(*args: Any, **kwargs: Any) -> Any:
        during.append(gc.isenabled())
        return pass_of(*args, **kwargs)

    monkeypatch.setattr(plan, "plan_orgs", watched)
    with app.app_context():
        org_ids = _books(db.session)
        clock.set(NOW)
        assert gc.isenabled()
        assert tasks.plan_orgs(org_ids)["planned"] > 0
        assert during == [False] and gc.isenabled()
        gc.disable()  # a caller that had it off finds it off
        try:
            tasks.plan_orgs(org_ids)
            assert not gc.isenabled()
        finally:
            gc.enable()


def test_the_fan_out_hands_each_job_a_batch_of_organisations(app, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from rq import Queue

    from collect.providers import redis_client
    from jobs import tasks
    from store.db import db
    from store.models import Connection

    with app.app_context():
        session = db.session
        org_ids = _books(session)
        for org_id in org_ids:
            session.add(Connection(org_id=org_id, provider="xero", status="active",
                                   tenant_id=f"T{org_id}"))
        session.commit()
        monkeypatch.setattr(tasks, "PLAN_BATCH", 2)
        assert tasks.plan_all_organisations(book_next=False) == 3
        queue = Queue(app.config["RQ_QUEUE"], connection=redis_client())
        batches = [job.args[0] for job in queue.get_jobs() if job.func_name.endswith("plan_orgs")]
        assert sorted(batches) == [org_ids[0:2], org_ids[2:4], org_ids[4:5]]
        assert tasks.plan_all_organisations(book_next=False) == 3
        assert len([j for j in queue.get_jobs() if j.func_name.endswith("plan_orgs")]) == 3


def test_the_workers_upkeep_books_the_next_planning_pass(app, clock) -> None:  # type: ignore[no-untyped-def]
    from rq import Queue
    from rq.registry import ScheduledJobRegistry

    from collect.providers import redis_client
    from jobs import tasks
    from store.db import db

    with app.app_context():
        clock.set(NOW)
        tasks.ensure_schedules()
        tasks.ensure_schedules()  # booked once, however often the upkeep runs
        registry = ScheduledJobRegistry(queue=Queue(app.config["RQ_QUEUE"],
                                                    connection=redis_client()))
        booked = [job_id for job_id in registry.get_job_ids() if job_id.startswith("plan-all-")]
        slot = int(NOW.timestamp()) // int(tasks.PLAN_EVERY.total_seconds())
        assert booked == [f"plan-all-{slot + 1}"]
        db.session.remove()
