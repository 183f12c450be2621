"""The policy engine end to end, on both providers: a late fee written as a line, an early-
payment discount realised as a credit note, and a payment plan whose kept instalments hold the
fees back. Checked on the sandbox's own books; a second run adds nothing."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from sqlalchemy import select

from tests.conftest import LiveServer
from tests.integration import flows
from tests.integration.conftest import EMAIL, PASSWORD, create_user, run_jobs

pytestmark = pytest.mark.db

POLICY = {
    "version": 2,
    "reminder_steps": [{"offset_days": 0}, {"offset_days": 7}],
    "late_fees": [{"id": "late", "rule": {"kind": "flat", "amount": "25.00",
                                          "grace_days": 30}}],
    "early_payment_discount": {"percent": "2", "within_days": 10},
}


@dataclass
class Books:
    """What the test reads of one sandbox company, whichever provider it is."""

    box: Any
    tenant: str
    provider: str

    def lines(self, invoice_id: str) -> list[tuple[str, Decimal]]:
        if self.provider == "xero":
            raw = self.box.tenant(self.tenant).invoices[invoice_id]
            return [(str(x.get("Description")), Decimal(x["LineAmount"]))
                    for x in raw["LineItems"]]
        raw = next(i for i in self.box.invoices(self.tenant) if i["Id"] == invoice_id)
        return [(str(x.get("Description")), Decimal(x["Amount"])) for x in raw["Line"]
                if x.get("DetailType") != "SubTotalLineDetail"]

    def balance(self, invoice_id: str) -> Decimal:
        if self.provider == "xero":
            return Decimal(self.box.tenant(self.tenant).invoices[invoice_id]["AmountDue"])
        raw = next(i for i in self.box.invoices(self.tenant) if i["Id"] == invoice_id)
        return Decimal(raw["Balance"])

    def credits(self) -> int:
        if self.provider == "xero":
            return len(self.box.tenant(self.tenant).credit_notes)
        return len(self.box.credit_memos(self.tenant))

    def emails(self) -> Counter[str]:
        key = "InvoiceID" if self.provider == "xero" else "InvoiceId"
        return Counter(str(e[key]) for e in self.box.emails(self.tenant))

    def pay(self, invoice_id: str, amount: Decimal) -> None:
        self.box.pay_invoice(self.tenant, invoice_id, amount)


def _connect(app, provider: str, clock, sandbox,  # type: ignore[no-untyped-def]
             qbo_sandbox) -> tuple[Books, int, LiveServer]:
    from store.db import db
    from store.models import Connection

    if provider == "quickbooks":
        clock.set(datetime(2026, 11, 24, 18, 0, tzinfo=UTC))  # 10:00 in California
    create_user(app)
    web = LiveServer(app)
    http = requests.Session()
    flows.sign_in(http, web.url, EMAIL, PASSWORD)
    landed = flows.answer_consent(http, flows.start_connect(http, web.url, provider), "allow")
    assert landed.status_code == 200, landed.text[:300]
    with app.app_context():
        connection = db.session.scalars(select(Connection)).one()
        org_id, tenant = connection.org_id, connection.tenant_id
    flows.go_live(http, web.url, org_id)  # a new organisation starts in review
    box = (sandbox if provider == "xero" else qbo_sandbox)[0]
    return Books(box, tenant, provider), org_id, web


@pytest.mark.parametrize("provider", ["xero", "quickbooks"])
def test_a_fee_a_discount_and_a_plan_reach_the_books_once(  # type: ignore[no-untyped-def]
        app, clock, sandbox, qbo_sandbox, provider: str) -> None:
    from jobs.tasks import enqueue_sync, sync_org
    from store.db import db
    from store.models import Action, Invoice, Organisation, PaymentPlan, Policy

    books, org_id, web = _connect(app, provider, clock, sandbox, qbo_sandbox)
    try:
        with app.app_context():
            sync_org(org_id, plan_after=False)
            org = db.session.get(Organisation, org_id)
            today = clock().astimezone(ZoneInfo(org.timezone)).date()
            db.session.merge(Policy(id=db.session.scalar(select(Policy.id).where(
                Policy.org_id == org_id)), org_id=org_id, version=2, body=POLICY))
            open_unpaid = [i for i in db.session.scalars(select(Invoice).where(
                Invoice.org_id == org_id, Invoice.status == "open").order_by(Invoice.id))
                if i.contact is not None and i.contact.email and i.due_date is not None
                and i.amount_paid == 0]
            overdue = [i for i in open_unpaid if i.due_date <= today - timedelta(days=31)]
            recent = [i for i in open_unpaid if i.issue_date is not None
                      and i.issue_date >= today - timedelta(days=9)]
            assert len(overdue) >= 2 and recent, "the seed must hold such invoices"
            fee_target, plan_target, discount_target = overdue[0], overdue[1], recent[0]
            # The plan: half due today, half in a month; nothing paid yet.
            half = (plan_target.amount_due / 2).quantize(Decimal("0.01"))
            db.session.add(PaymentPlan(
                org_id=org_id, invoice_id=plan_target.id, paid_before=Decimal(0),
                instalments=[{"due_date": today.isoformat(), "amount": str(half)},
                             {"due_date": (today + timedelta(days=30)).isoformat(),
                              "amount": str(plan_target.amount_due - half)}]))
            db.session.commit()
            fee_id, plan_id, discount_id = (fee_target.provider_id, plan_target.provider_id,
                                            discount_target.provider_id)
            discount_total = discount_target.total
        # The customer pays 98 % within the ten days, taking the 2 % discount.
        books.pay(discount_id, discount_total * Decimal("0.98"))
        credits_before = books.credits()

        with app.app_context():
            enqueue_sync(org_id)
        run_jobs(app)

        fee_lines = [line for line in books.lines(fee_id) if line[0].startswith("Late fee")]
        assert [amount for _, amount in fee_lines] == [Decimal("25.00")]
        assert "(ref DW-" in fee_lines[0][0]
        assert not [x for x in books.lines(plan_id) if x[0].startswith("Late fee")]
        with app.app_context():
            discount_actions = [(a.status, a.attempts, a.result, a.error) for a in
                                db.session.scalars(select(Action).where(
                                    Action.invoice_id == discount_target.id))]
        assert books.balance(discount_id) == 0, discount_actions
        assert books.credits() == credits_before + 1
        emails = books.emails()
        assert emails[plan_id] == 1  # the instalment due today
        with app.app_context():
            done = Counter(a.kind for a in db.session.scalars(select(Action).where(
                Action.org_id == org_id, Action.status == "done")))
            assert done["fee"] >= 1 and done["discount"] == 1
            assert done["plan_instalment"] == 1
            fee = db.session.scalars(select(Action).where(
                Action.kind == "fee", Action.invoice_id == fee_target.id)).one()
            assert fee.amount == Decimal("25.00") and fee.result["placed"] == "line"
            assert fee.reason.startswith("Late fee")

        # The day runs again after a sync: nothing is charged, credited or sent twice.
        lines_before = {i: books.lines(i) for i in (fee_id, plan_id, discount_id)}
        clock.advance(minutes=5)
        with app.app_context():
            enqueue_sync(org_id)
        run_jobs(app)
        assert {i: books.lines(i) for i in (fee_id, plan_id, discount_id)} == lines_before
        assert books.credits() == credits_before + 1
        assert books.emails() == emails
    finally:
        web.stop()
