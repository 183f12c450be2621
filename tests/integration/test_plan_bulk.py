"""The set-based planning pass keeps the ledger's exactly-once contract: one action per key
however often the day is planned, keys another worker wrote are skipped (not duplicated, not
returned), actions skipped because their invoice changed are planned again, and every due
invoice's next action time is stored, in the database and in the session's objects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select, update

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)  # a Wednesday, 10:00 in London


def _book(session, due: int, later: int) -> int:  # type: ignore[no-untyped-def]
    """An organisation with `due` invoices 7 days overdue (their first overdue reminder due)
    and `later` invoices due in a month; returns its id."""
    from store.models import Contact, Invoice, Organisation

    org = Organisation(name="Bulk Ltd", country="GB", timezone="Europe/London",
                       base_currency="GBP")
    session.add(org)
    session.flush()
    contact = Contact(org_id=org.id, provider_id="C1", name="Customer",
                      email="accounts@example.com", is_customer=True)
    session.add(contact)
    session.flush()
    for n in range(due + later):
        is_due = n < due
        session.add(Invoice(
            org_id=org.id, provider_id=f"P{n}", number=f"INV-{n:04d}", contact_id=contact.id,
            contact_provider_id="C1", currency="GBP",
            issue_date=(NOW - timedelta(days=60)).date(),
            due_date=(NOW - timedelta(days=7) if is_due else NOW + timedelta(days=30)).date(),
            total=Decimal("1200.00"), amount_paid=Decimal("0.00"),
            amount_due=Decimal("1200.00"), status="open", provider_status="AUTHORISED",
            next_action_at=NOW - timedelta(hours=1) if is_due else NOW + timedelta(days=27)))
    session.commit()
    return org.id


def _make_due_again(session, org_id: int) -> None:  # type: ignore[no-untyped-def]
    from store.models import Invoice

    session.execute(update(Invoice).where(
        Invoice.org_id == org_id, Invoice.due_date < NOW.date()).values(
        next_action_at=NOW - timedelta(hours=1)))
    session.commit()
    session.expire_all()


def test_a_second_pass_plans_nothing_and_next_action_times_are_stored(app) -> None:  # type: ignore[no-untyped-def]
    from collect.plan import plan_org
    from store.db import db
    from store.models import Action, Invoice, Organisation

    with app.app_context():
        session = db.session
        org_id = _book(session, due=30, later=20)
        org = session.get(Organisation, org_id)
        first = plan_org(session, org, NOW)
        session.commit()
        assert len(first) == 30
        assert all(a.id is not None and a.status == "planned" for a in first)
        assert len({a.key for a in first}) == 30
        assert sorted(a.invoice_id for a in first) == sorted(
            session.scalars(select(Invoice.id).where(Invoice.org_id == org_id,
                                                     Invoice.due_date < NOW.date())))
        assert all(a.planned_amount_due == Decimal("1200.00") for a in first)
        # The session's invoices show what the database holds: nothing is due any more.
        due_objects = [session.get(Invoice, a.invoice_id) for a in first]
        assert all(i is not None and i.next_action_at is not None and i.next_action_at > NOW
                   for i in due_objects)
        session.expire_all()
        assert session.scalar(select(func.count()).select_from(Invoice).where(
            Invoice.org_id == org_id, Invoice.next_action_at <= NOW)) == 0

        _make_due_again(session, org_id)
        second = plan_org(session, session.get(Organisation, org_id), NOW)
        session.commit()
        assert second == []
        assert session.scalar(select(func.count()).select_from(Action)) == 30


def test_keys_written_meanwhile_are_skipped_and_changed_ones_planned_again(app) -> None:  # type: ignore[no-untyped-def]
    from collect import ledger
    from collect.plan import plan_org
    from store.db import db
    from store.models import Action, AuditEvent, Organisation

    with app.app_context():
        session = db.session
        org_id = _book(session, due=6, later=0)
        org = session.get(Organisation, org_id)
        keys = {a.key: a.invoice_id for a in plan_org(session, org, NOW)}
        session.rollback()  # as if this worker's pass had not happened
        assert session.scalar(select(func.count()).select_from(Action)) == 0
        # Another worker wrote two of the keys first; a third was skipped because its invoice
        # changed (so it may be planned again against the invoice as it is now).
        taken, changed = sorted(keys)[:2], sorted(keys)[2]
        for key in (*taken, changed):
            session.add(Action(org_id=org_id, invoice_id=keys[key], key=key, kind="reminder",
                               status="skipped" if key == changed else "planned",
                               result={"reason": ledger.REPLAN_REASON} if key == changed
                               else None, scheduled_for=NOW, created_at=NOW, updated_at=NOW))
        session.commit()
        changed_id = session.scalar(select(Action.id).where(Action.key == changed))

        planned = plan_org(session, session.get(Organisation, org_id), NOW)
        session.commit()
        assert {a.key for a in planned} == set(keys) - set(taken)
        assert session.scalar(select(func.count()).select_from(Action)) == len(keys)
        again = next(a for a in planned if a.key == changed)
        assert again.id == changed_id and again.status == "planned" and again.result is None
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.kind == "action_replanned", AuditEvent.action_id == changed_id)) == 1


def test_record_planned_many_writes_each_key_once(app) -> None:  # type: ignore[no-untyped-def]
    """The same step twice in one call, and a call repeated: one row, returned once."""
    from collect import ledger
    from rules import PlannedAction
    from store.db import db
    from store.models import Action, Invoice

    with app.app_context():
        session = db.session
        org_id = _book(session, due=1, later=0)
        invoice = session.scalars(select(Invoice).where(Invoice.org_id == org_id)).one()
        step = PlannedAction(org_id=org_id, invoice_id=invoice.id,
                             key=f"{org_id}:{invoice.id}:test", kind="reminder",
                             scheduled_for=NOW, reason="A test step",
                             details={"channel_note": "kept"})
        first = ledger.record_planned_many(session, [(step, invoice), (step, invoice)], NOW)
        session.commit()
        assert [a.key for a in first] == [step.key]
        row = session.scalars(select(Action).where(Action.key == step.key)).one()
        assert (row.id, row.details, row.attempts) == (first[0].id, {"channel_note": "kept"}, 0)
        assert ledger.record_planned_many(session, [(step, invoice)], NOW) == []
        session.commit()
        assert session.scalar(select(func.count()).select_from(Action)) == 1
