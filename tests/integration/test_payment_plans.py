"""Agreeing a payment plan from the command line: checked, stored, and planned at once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

pytestmark = pytest.mark.db


def test_a_plan_is_agreed_checked_and_replaces_the_old_one(app, connected, clock) -> None:  # type: ignore[no-untyped-def]
    from jobs.tasks import sync_org
    from store.db import db
    from store.models import AuditEvent, Invoice, PaymentPlan

    with app.app_context():
        sync_org(connected.org_id, plan_after=False)
        invoice = next(i for i in db.session.scalars(select(Invoice).where(
            Invoice.org_id == connected.org_id, Invoice.status == "open").order_by(Invoice.id))
            if i.amount_due > 1)
        number, due, invoice_id = invoice.number, invoice.amount_due, invoice.id
    today = clock().date()
    half = (due / 2).quantize(Decimal("0.01"))
    first, second = today + timedelta(days=7), today + timedelta(days=37)

    def run(*args: str):  # type: ignore[no-untyped-def]
        return app.test_cli_runner().invoke(args=["plans", "add", str(connected.org_id),
                                                  number, *args])

    wrong = run("--instalment", f"{first}:{half}", "--instalment", f"{second}:1.00")
    assert wrong.exit_code == 1
    assert f"the instalments add up to {half + Decimal('1.00')}, but {number} has {due}" \
        in wrong.output
    past = run("--instalment", f"{today - timedelta(days=1)}:{due}")
    assert past.exit_code == 1 and "is before today" in past.output
    garbled = run("--instalment", "next week:10")
    assert garbled.exit_code == 1 and "give DATE:AMOUNT" in garbled.output

    ok = run("--instalment", f"{first}:{half}", "--instalment", f"{second}:{due - half}")
    assert ok.exit_code == 0, ok.output
    again = run("--instalment", f"{first}:{due}")
    assert again.exit_code == 0, again.output
    with app.app_context():
        plans = db.session.scalars(select(PaymentPlan).order_by(PaymentPlan.id)).all()
        assert [p.status for p in plans] == ["cancelled", "active"]
        assert plans[1].instalments == [{"due_date": first.isoformat(), "amount": str(due)}]
        events = db.session.scalars(select(AuditEvent.message).where(
            AuditEvent.kind == "payment_plan")).all()
        assert len(events) == 2 and number in events[0]
        # Kept plan: the next thing for the invoice is the instalment's first reminder, three
        # days before Tuesday 1 December: Saturday, so Monday 30 November at 09:00 London.
        invoice = db.session.get(Invoice, invoice_id)
        assert first == date(2026, 12, 1)
        assert invoice.next_action_at == datetime(2026, 11, 30, 9, tzinfo=UTC)
