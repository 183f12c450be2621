"""The customer's whole portal in a real browser, on both providers: a reminder from Dunwell
carries the link; through it the customer promises to pay one invoice, disputes another, asks
for a plan and pays the first by test card. The ledger, the collector's invoice page and the
provider sandbox's books show each (one Payment for the card payment)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from redis import Redis
from rq import Queue
from sqlalchemy import func, select

from tests.integration.conftest import connect
from tests.integration.stripe_fixtures import (  # noqa: F401 (a fixture)
    books_payments,
    connect_stripe,
    stripe_sandbox,
)
from tests.integration.test_escalation_e2e import smtp  # noqa: F401 (a fixture)
from tests.integration.test_portal import LINK, body_text, mailing, most_overdue, sync_and_run

pytestmark = pytest.mark.db


@pytest.mark.parametrize("provider", ["xero", "quickbooks"])
def test_a_customer_promises_disputes_asks_for_a_plan_and_pays(  # type: ignore[no-untyped-def]
        app, web, page, clock, sandbox, qbo_sandbox, smtp, stripe_sandbox,  # noqa: F811
        provider: str) -> None:
    from jobs.tasks import sweep_ledger
    from store.db import db
    from store.models import AuditEvent, Contact, ProcessorEvent

    if provider == "quickbooks":
        clock.set(datetime(2026, 11, 24, 18, 0, tzinfo=UTC))  # 10:00 in California
    connected = connect(app, web, provider)
    sink = mailing(app, web, smtp, connected.org_id)
    with app.app_context():
        contact_id, invoices = most_overdue(connected.org_id, clock().date())
        first, second = invoices[0].id, invoices[1].id
        provider_id, amount = invoices[0].provider_id, invoices[0].amount_due
        for other in db.session.scalars(select(Contact).where(Contact.id != contact_id)):
            other.excluded = True
        db.session.commit()
        db.session.remove()
    sync_and_run(app, connected.org_id)
    link = LINK.findall(body_text(sink.messages[0]))[-1]
    connect_stripe(app, web, stripe_sandbox, connected.org_id)
    books = sandbox[0] if provider == "xero" else qbo_sandbox[0]
    before = books_payments(provider, books, connected.tenant_id, provider_id)
    today = clock().date()

    page.goto(f"{link}?lang=en")
    page.click(f"#invoice-{first} details:nth-of-type(1) summary")
    page.fill(f"#pay-by-{first}", (today + timedelta(days=7)).isoformat())
    page.click(f"#invoice-{first} details:nth-of-type(1) button[type=submit]")
    page.wait_for_selector(".notice[role=status]")
    assert "will not remind you" in page.inner_text(".notice[role=status]")

    page.click(f"#invoice-{second} details:nth-of-type(2) summary")
    page.fill(f"#reason-{second}", "Half of it never arrived")
    page.click(f"#invoice-{second} details:nth-of-type(2) button[type=submit]")
    page.wait_for_selector(".notice[role=status]")
    assert "Reminders for this invoice stop" in page.inner_text(".notice[role=status]")

    page.click(f"#invoice-{second} details:nth-of-type(3) summary")
    page.fill(f"#instalments-{second}", "2")
    page.fill(f"#first-{second}", (today + timedelta(days=1)).isoformat())
    page.click(f"#invoice-{second} details:nth-of-type(3) button[type=submit]")
    page.wait_for_selector(".notice[role=status]")
    assert "will answer your request" in page.inner_text(".notice[role=status]")

    box = stripe_sandbox[0]
    box.hold_webhooks = True  # delivered below: twice, out of order, around a killed worker
    page.click(f"#invoice-{first} form.pay-card button[type=submit]")
    page.wait_for_selector("#cardNumber")
    page.fill("#cardNumber", "4242 4242 4242 4242")
    page.fill("#cardExpiry", "12 / 34")
    page.fill("#cardCvc", "123")
    page.click("#pay")
    page.wait_for_selector(".notice[role=status]")
    assert "Thank you for your payment" in page.inner_text(".notice[role=status]")

    for event in [*reversed(box.events), *box.events]:  # every event twice, the last first
        assert box.deliver(event["id"]) == 200
    with app.app_context():  # the worker that took their job is killed before it writes
        Queue(app.config["RQ_QUEUE"], connection=Redis.from_url(app.config["REDIS_URL"])).empty()
    assert books_payments(provider, books, connected.tenant_id, provider_id) == before
    clock.advance(minutes=6)  # Stripe has its answers; the sweeper finds the events unapplied
    with app.app_context():
        sweep_ledger(book_next=False)
    sync_and_run(app, connected.org_id)  # a worker books it (and the day's run goes on)
    new = [p for p in books_payments(provider, books, connected.tenant_id, provider_id)
           if p not in before]
    assert len(new) == 1 and new[0][0] == amount
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ProcessorEvent)) == len(
            box.events)  # each stored once
        kinds = {e.kind for e in db.session.scalars(select(AuditEvent).where(
            AuditEvent.org_id == connected.org_id))}
        db.session.remove()
    assert {"promise_made", "dispute_opened", "plan_requested", "card_payment_received",
            "card_payment_booked"} <= kinds
    collector = connected.http.get(f"{web.url}/orgs/{connected.org_id}/invoices/{first}")
    assert collector.status_code == 200 and 'id="card-payment-' in collector.text
    disputed = connected.http.get(f"{web.url}/orgs/{connected.org_id}/invoices/{second}")
    assert "Half of it never arrived" in disputed.text
