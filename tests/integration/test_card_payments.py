"""Paying an invoice by card from the portal, on both providers: Stripe's Checkout (the Stripe
sandbox's hosted page, over HTTP), its signed webhooks to the app, and the payment booked in
the provider sandbox's books exactly once, however often a webhook arrives, in whatever order,
and when the worker booking it dies half way. A refund and a declined card are recorded and
shown and book nothing; a webhook that is not Stripe's changes nothing."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
import requests
from redis import Redis
from rq import Queue
from sqlalchemy import func, select

from tests.integration import flows
from tests.integration.conftest import connect, run_jobs
from tests.integration.stripe_fixtures import (  # noqa: F401 (a fixture)
    books_fees,
    books_payments,
    connect_stripe,
    stripe_sandbox,
)

pytestmark = pytest.mark.db

PROVIDERS = ["xero", "quickbooks"]


def _setup(app, web, provider: str, stripe) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Connected, synced, card payments on; an open invoice, its customer's portal link."""
    from collect import portal
    from jobs.tasks import sync_org
    from store.db import db
    from store.models import Invoice

    connected = connect(app, web, provider)
    with app.app_context():
        sync_org(connected.org_id, plan_after=False)
        invoice = db.session.scalars(select(Invoice).where(
            Invoice.org_id == connected.org_id, Invoice.status == "open",
            Invoice.contact_id.is_not(None)).order_by(Invoice.id)).all()
        invoice = next(i for i in invoice if i.amount_due > 0)
        token = portal.link_token(db.session(), invoice.contact, app.config["SECRET_KEY"])
        db.session.commit()
        facts = {"invoice_id": invoice.id, "provider_id": invoice.provider_id,
                 "amount": invoice.amount_due, "currency": invoice.currency,
                 "number": invoice.number}
    account = connect_stripe(app, web, stripe, connected.org_id)
    return {"connected": connected, "token": token, "account": account, **facts}


def _checkout(web, facts: dict[str, Any]) -> tuple[requests.Session, str]:  # type: ignore[no-untyped-def]
    """The customer opens their portal and presses Pay by card: Stripe's page."""
    http = requests.Session()
    page = http.get(f"{web.url}/portal/{facts['token']}")
    assert page.status_code == 200
    form = next(f for f in flows.forms_of(page.text)
                if f["action"].split("?")[0].endswith(f"/invoices/{facts['invoice_id']}/card"))
    fields = {i["name"]: i.get("value") or "" for i in form["inputs"] if i.get("name")}
    answer = http.post(f"{web.url}{form['action']}", data=fields, allow_redirects=False)
    assert answer.status_code == 303, answer.text[:300]
    return http, answer.headers["Location"]


def _pay(http: requests.Session, checkout_url: str, card: str) -> requests.Response:
    return http.post(checkout_url, data={"cardNumber": card, "cardExpiry": "12 / 34",
                                         "cardCvc": "123", "billingName": "A Customer"},
                     allow_redirects=False)


def _deliver_all(box) -> None:  # type: ignore[no-untyped-def]
    for event in list(box.events):
        assert box.deliver(event["id"]) == 200


def _paid_and_job_lost(app, web, box, facts: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    """The customer pays; Stripe's webhooks are stored and answered; then their job is lost
    (Redis's queue emptied, as a worker killed before it ran leaves it)."""
    http, checkout_url = _checkout(web, facts)
    box.hold_webhooks = True
    _pay(http, checkout_url, "4242424242424242")
    _deliver_all(box)
    with app.app_context():
        Queue(app.config["RQ_QUEUE"], connection=Redis.from_url(app.config["REDIS_URL"])).empty()


def _row(app, facts: dict[str, Any]):  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import CardPayment

    with app.app_context():
        row = db.session.scalars(select(CardPayment).where(
            CardPayment.invoice_id == facts["invoice_id"]).order_by(CardPayment.id.desc())
        ).first()
        db.session.expunge_all()
        return row


def _books(provider: str, sandbox, qbo_sandbox, facts: dict[str, Any]):  # type: ignore[no-untyped-def]
    box = sandbox[0] if provider == "xero" else qbo_sandbox[0]
    return books_payments(provider, box, facts["connected"].tenant_id, facts["provider_id"])


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_card_payment_is_booked_once_however_often_stripe_tells(  # type: ignore[no-untyped-def]
        app, web, sandbox, qbo_sandbox, stripe_sandbox, provider: str) -> None:  # noqa: F811
    from store.db import db
    from store.models import AuditEvent, Invoice, ProcessorEvent

    box = stripe_sandbox[0]
    facts = _setup(app, web, provider, stripe_sandbox)
    before = _books(provider, sandbox, qbo_sandbox, facts)
    http, checkout_url = _checkout(web, facts)
    assert checkout_url.startswith(stripe_sandbox[1].url + "/c/pay/cs_test_")
    assert "Pay" in http.get(checkout_url).text

    box.hold_webhooks = True
    paid = _pay(http, checkout_url, "4242424242424242")
    assert paid.status_code == 303
    back = http.get(paid.headers["Location"])
    assert back.status_code == 200 and "Thank you for your payment" in back.text

    # Every event twice, the last first: the books get one payment.
    for event in reversed(box.events):
        assert box.deliver(event["id"]) == 200
    _deliver_all(box)
    run_jobs(app)
    _deliver_all(box)
    run_jobs(app)

    after = _books(provider, sandbox, qbo_sandbox, facts)
    new = [p for p in after if p not in before]
    assert len(new) == 1, after
    assert new[0][0] == facts["amount"]
    row = _row(app, facts)
    assert row.status == "paid" and row.books_payment_id and row.received == facts["amount"]
    assert row.fee is not None and row.fee > 0
    assert row.payment_id and row.payment_id in new[0][1]
    with app.app_context():
        invoice = db.session.get(Invoice, facts["invoice_id"])
        assert invoice.amount_due == 0 and invoice.status == "paid"
        kinds = [e.kind for e in db.session.scalars(select(AuditEvent).where(
            AuditEvent.invoice_id == facts["invoice_id"]))]
        assert kinds.count("card_payment_received") == 1
        assert kinds.count("card_payment_booked") == 1
        # Booked with the parameters a page words it from in the reader's language.
        booked = db.session.scalars(select(AuditEvent).where(
            AuditEvent.invoice_id == facts["invoice_id"],
            AuditEvent.kind == "card_payment_booked")).one().data
        assert (Decimal(booked["amount"]), booked["currency"], booked["number"]) == (
            row.received, row.currency, invoice.number)
        events = db.session.scalar(select(func.count()).select_from(ProcessorEvent))
        assert events == len(box.events)  # each stored once, however often it came

    # The collector sees it on the invoice's page and the organisation's card payments page.
    org_id = facts["connected"].org_id
    page = facts["connected"].http.get(f"{web.url}/orgs/{org_id}/invoices/{facts['invoice_id']}")
    assert page.status_code == 200
    panel = page.text.split('id="card-payment-', 1)[1].split("</p>", 1)[0]
    assert "Card payment" in panel and "Paid" in panel and "Booked" in panel
    page = facts["connected"].http.get(f"{web.url}/orgs/{org_id}/card-payments")
    assert page.status_code == 200 and "Booked" in page.text


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_worker_killed_while_booking_books_nothing_twice(  # type: ignore[no-untyped-def]
        app, web, clock, sandbox, qbo_sandbox, stripe_sandbox, provider: str) -> None:  # noqa: F811
    from collect import payments
    from collect.providers import connector_for
    from jobs.payments import apply_card_events
    from store.db import db
    from store.models import CardPaymentSettings, Connection

    box = stripe_sandbox[0]
    facts = _setup(app, web, provider, stripe_sandbox)
    with app.app_context():  # Stripe's fee is booked too, as a bank fee
        db.session.scalars(select(CardPaymentSettings)).one().book_fees = True
        db.session.commit()
    before = _books(provider, sandbox, qbo_sandbox, facts)
    # The webhooks are stored and their job queued, then the queue is lost (the worker that
    # took the job was killed before it wrote anything).
    _paid_and_job_lost(app, web, box, facts)
    assert _books(provider, sandbox, qbo_sandbox, facts) == before
    # Stripe delivers again (it does until it is answered; a replay of a stored event that
    # was never applied queues it again).
    _deliver_all(box)

    class Killed(BaseException):
        """The worker dies: after the provider wrote the payment, before our commit."""

    class DiesAfterWriting:
        def __init__(self, real: Any) -> None:
            self.real = real

        def __getattr__(self, name: str) -> Any:
            return getattr(self.real, name)

        def record_payment(self, *args: Any, **kwargs: Any) -> str:
            self.real.record_payment(*args, **kwargs)
            raise Killed()

    with app.app_context():
        apply_card_events(facts["connected"].org_id)
        row = _row(app, facts)
        connection = db.session.scalars(select(Connection)).one()
        with pytest.raises(Killed):
            payments.book(db.session(), row.id, DiesAfterWriting(connector_for(connection)),
                          "killed-worker", clock().date())
        db.session.rollback()
        db.session.remove()
    assert len([p for p in _books(provider, sandbox, qbo_sandbox, facts) if p not in before]) == 1
    held = _row(app, facts)
    assert held.books_payment_id is None and held.claimed_by == "killed-worker"

    run_jobs(app)  # its job retried while the dead worker's claim lasts: it waits
    assert _row(app, facts).books_payment_id is None
    clock.advance(minutes=3)  # the claim's lease passes
    with app.app_context():
        from jobs.payments import book_card_payment

        assert book_card_payment(held.id) == "booked"
    _deliver_all(box)
    run_jobs(app)
    new = [p for p in _books(provider, sandbox, qbo_sandbox, facts) if p not in before]
    assert len(new) == 1, new
    row = _row(app, facts)
    assert row.books_payment_id and row.claimed_by is None
    books = sandbox[0] if provider == "xero" else qbo_sandbox[0]
    assert books_fees(provider, books, facts["connected"].tenant_id, row.payment_id) == [
        row.fee]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_refund_and_a_declined_card_are_recorded_and_book_nothing(  # type: ignore[no-untyped-def]
        app, web, sandbox, qbo_sandbox, stripe_sandbox, provider: str) -> None:  # noqa: F811
    from collect import payments
    from store.db import db
    from store.models import AuditEvent, CardPaymentSettings

    box = stripe_sandbox[0]
    facts = _setup(app, web, provider, stripe_sandbox)
    before = _books(provider, sandbox, qbo_sandbox, facts)
    http, checkout_url = _checkout(web, facts)
    declined = _pay(http, checkout_url, "4000000000000002")
    assert declined.status_code == 200 and "declined" in declined.text
    run_jobs(app)
    row = _row(app, facts)
    assert row.status == "failed" and "declined" in (row.failure or "")
    assert _books(provider, sandbox, qbo_sandbox, facts) == before
    page = http.get(f"{web.url}/portal/{facts['token']}")
    assert "did not go through" in page.text

    # The same page, another card that asks the bank first: paid once confirmed.
    asked = _pay(http, checkout_url, "4000002500003155")
    assert "Complete authentication" in asked.text
    confirmed = http.post(f"{checkout_url}/authenticate", data={"answer": "approve"},
                          allow_redirects=False)
    assert confirmed.status_code == 303
    run_jobs(app)
    assert _row(app, facts).status == "paid"
    assert len([p for p in _books(provider, sandbox, qbo_sandbox, facts)
                if p not in before]) == 1

    # Refunded through Stripe: recorded once, shown, and the books are not written again.
    with app.app_context():
        settings = db.session.scalars(select(CardPaymentSettings)).one()
        minor = int(facts["amount"] * 100)
        payments.processor_for(settings).refund(_row(app, facts).payment_id, minor // 2,
                                                "refund-1")
    run_jobs(app)
    _deliver_all(box)
    run_jobs(app)
    row = _row(app, facts)
    assert row.refunded == (Decimal(minor // 2) / 100).quantize(Decimal("0.01"))
    assert len([p for p in _books(provider, sandbox, qbo_sandbox, facts)
                if p not in before]) == 1
    with app.app_context():
        kinds = [e.kind for e in db.session.scalars(select(AuditEvent).where(
            AuditEvent.invoice_id == facts["invoice_id"]))]
    assert kinds.count("card_payment_refunded") == 1
    assert kinds.count("card_payment_failed") == 1
    with app.app_context():
        refunded = db.session.scalars(select(AuditEvent).where(
            AuditEvent.invoice_id == facts["invoice_id"],
            AuditEvent.kind == "card_payment_refunded")).one().data
    # Half refunded: the books' payment stays; the amount is the refund's.
    assert (Decimal(refunded["amount"]), refunded["currency"], refunded["taken_off"]) == (
        row.refunded, row.currency, False)
    page = facts["connected"].http.get(
        f"{web.url}/orgs/{facts['connected'].org_id}/card-payments")
    assert "refunded" in page.text


def test_a_webhook_stripe_did_not_sign_changes_nothing(  # type: ignore[no-untyped-def]
        app, web, stripe_sandbox) -> None:  # noqa: F811
    from sandboxes.stripe import signature_header
    from store.db import db
    from store.models import ProcessorEvent

    facts = _setup(app, web, "xero", stripe_sandbox)
    org_id = facts["connected"].org_id
    event = {"id": "evt_forged", "object": "event", "type": "payment_intent.succeeded",
             "data": {"object": {"id": "pi_forged", "object": "payment_intent"}}}
    body = json.dumps(event).encode()
    url = f"{web.url}/webhooks/stripe/{org_id}"
    for header in (signature_header(body, "whsec_not_theirs"),  # another secret
                   signature_header(body, facts["account"].webhook_secret, at=1_000_000),  # old
                   "", "t=1,v1=00"):
        answer = requests.post(url, data=body, headers={"Stripe-Signature": header})
        assert answer.status_code == 400
    # Signed right, but altered on the way.
    header = signature_header(body, facts["account"].webhook_secret)
    answer = requests.post(url, data=body.replace(b"pi_forged", b"pi_altered"),
                           headers={"Stripe-Signature": header})
    assert answer.status_code == 400
    # An organisation without Stripe: nothing there.
    assert requests.post(f"{web.url}/webhooks/stripe/{org_id + 99}", data=body,
                         headers={"Stripe-Signature": header}).status_code == 404
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ProcessorEvent)) == 0


def test_the_owner_connects_stripe_with_the_secret_key_alone(  # type: ignore[no-untyped-def]
        app, web, stripe_sandbox) -> None:  # noqa: F811
    """The settings page takes the secret key; Dunwell makes the webhook endpoint through
    Stripe's API and keeps its signing secret, encrypted. A key Stripe refuses saves nothing."""
    from store.db import db
    from store.models import CardPaymentSettings

    box, server = stripe_sandbox
    connected = connect(app, web, "xero")
    app.config["STRIPE_API_BASE"] = server.url
    account = box.add_account()
    url = f"{web.url}/orgs/{connected.org_id}/card-payments"
    page = connected.http.get(url)
    refused = connected.http.post(url, data={
        "csrf_token": flows.csrf_token(page.text), "enabled": "on",
        "secret_key": "sk_test_not_a_key_stripe_knows"})
    assert refused.status_code == 400 and "did not accept" in refused.text
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(CardPaymentSettings)) == 0
    saved = connected.http.post(url, data={
        "csrf_token": flows.csrf_token(page.text), "enabled": "on",
        "secret_key": account.secret_key, "account_code": "090"})
    assert saved.status_code == 200 and "Card payments are on" in saved.text
    assert [e["url"] for e in account.endpoints] == [
        f"{web.url}/webhooks/stripe/{connected.org_id}"]
    with app.app_context():
        row = db.session.scalars(select(CardPaymentSettings)).one()
        assert row.enabled and row.account_code == "090"
        secret = account.endpoints[0]["_secret"]
        assert account.secret_key not in (row.secret_key_enc or "")
        assert secret not in (row.webhook_secret_enc or "")
    assert account.secret_key not in saved.text and secret not in saved.text


def test_a_link_pays_only_its_own_customers_invoices(  # type: ignore[no-untyped-def]
        app, web, stripe_sandbox) -> None:  # noqa: F811
    """Another customer's invoice through this link, a post without its CSRF token, and a
    link that lets no one in: no card payment, no checkout at Stripe."""
    from store.db import db
    from store.models import CardPayment, Invoice

    box = stripe_sandbox[0]
    facts = _setup(app, web, "xero", stripe_sandbox)
    with app.app_context():
        mine = db.session.get(Invoice, facts["invoice_id"])
        other = next(i for i in db.session.scalars(select(Invoice).where(
            Invoice.org_id == mine.org_id, Invoice.status == "open"))
            if i.contact_id != mine.contact_id and i.amount_due > 0)
        other_id = other.id
    http = requests.Session()
    page = http.get(f"{web.url}/portal/{facts['token']}")
    csrf = flows.csrf_token(page.text)
    refused = http.post(f"{web.url}/portal/{facts['token']}/invoices/{other_id}/card",
                        data={"csrf_token": csrf}, allow_redirects=False)
    assert refused.status_code == 400 and "not one of yours" in refused.text
    assert http.post(f"{web.url}/portal/{facts['token']}/invoices/{facts['invoice_id']}/card",
                     allow_redirects=False).status_code == 400  # no CSRF token
    wrong = http.post(f"{web.url}/portal/{facts['token']}x/invoices/{facts['invoice_id']}/card",
                      data={"csrf_token": csrf}, allow_redirects=False)
    assert wrong.status_code == 404
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(CardPayment)) == 0
    assert not [o for o in box.objects.values() if o.get("object") == "checkout.session"]


def test_the_sweeper_gives_a_lost_job_again(  # type: ignore[no-untyped-def]
        app, web, clock, sandbox, stripe_sandbox) -> None:  # noqa: F811
    """The webhooks were stored and answered, then their job was lost (Redis flushed) and
    Stripe has no reason to send them again: the sweeper finds them, and the payment is
    booked once."""
    from jobs.tasks import sweep_ledger

    box = stripe_sandbox[0]
    facts = _setup(app, web, "xero", stripe_sandbox)
    before = _books("xero", sandbox, None, facts)
    _paid_and_job_lost(app, web, box, facts)
    with app.app_context():
        assert sweep_ledger(book_next=False) == 0  # not yet: the job may still be on its way
    run_jobs(app)
    assert _books("xero", sandbox, None, facts) == before
    clock.advance(minutes=6)
    with app.app_context():
        sweep_ledger(book_next=False)
    run_jobs(app)
    new = [p for p in _books("xero", sandbox, None, facts) if p not in before]
    assert len(new) == 1 and _row(app, facts).books_payment_id
    with app.app_context():
        sweep_ledger(book_next=False)
    run_jobs(app)
    assert len([p for p in _books("xero", sandbox, None, facts) if p not in before]) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_card_surcharge_only_where_the_law_allows_shown_before_paying(  # type: ignore[no-untyped-def]
        app, web, sandbox, qbo_sandbox, stripe_sandbox, provider: str) -> None:  # noqa: F811
    """The owner sets a 5 % surcharge. A consumer in the UK (the Xero sandbox's business) is
    asked none; the same customer as a business, and a consumer of the US business (the
    QuickBooks sandbox's), are asked the card's cost at most (5 % is more). The portal shows it
    before paying, Stripe is asked for the total, and the books get the invoice's amount."""
    from rules.card_payments import card_cost
    from store.db import db
    from store.models import CardPaymentSettings, Contact, Invoice, Organisation

    box = stripe_sandbox[0]
    facts = _setup(app, web, provider, stripe_sandbox)
    org_id = facts["connected"].org_id
    url = f"{web.url}/orgs/{org_id}/card-payments"
    http = facts["connected"].http
    page = http.get(url)
    for bad in ("12", "-1", "2.555", "lots"):  # refused in plain words, nothing saved
        refused = http.post(url, data={"csrf_token": flows.csrf_token(page.text),
                                       "enabled": "on", "surcharge_percent": bad})
        assert refused.status_code == 400 and "such as 2.5" in refused.text, bad
    with app.app_context():
        assert db.session.scalars(select(CardPaymentSettings)).one().surcharge_percent is None
    saved = http.post(url, data={"csrf_token": flows.csrf_token(page.text), "enabled": "on",
                                 "surcharge_percent": "5", "book_fees": ""})
    assert saved.status_code == 200 and 'value="5"' in saved.text
    with app.app_context():
        org = db.session.get(Organisation, org_id)
        country = org.country
        contact = db.session.get(Invoice, facts["invoice_id"]).contact
        contact.is_business, contact_id = False, contact.id
        db.session.commit()
    portal = requests.get(f"{web.url}/portal/{facts['token']}").text
    cost = card_cost(facts["amount"], facts["currency"])
    if country == "GB":  # a consumer in the UK: none, and none shown
        assert f'id="surcharge-{facts["invoice_id"]}"' not in portal
        with app.app_context():
            db.session.get(Contact, contact_id).is_business = True  # a business: allowed
            db.session.commit()
        portal = requests.get(f"{web.url}/portal/{facts['token']}").text
    else:
        assert country == "US", country
    surcharge = min(cost, (facts["amount"] * 5 / 100).quantize(Decimal("0.01")))
    assert surcharge == cost  # 5 % is more than the card costs: capped
    shown = portal.split(f'id="surcharge-{facts["invoice_id"]}">', 1)[1].split("</p>", 1)[0]
    assert "surcharge" in shown and str(surcharge) in shown
    assert str((facts["amount"] + surcharge).quantize(Decimal("0.01"))) in shown.replace(",", "")

    before = _books(provider, sandbox, qbo_sandbox, facts)
    http_customer, checkout_url = _checkout(web, facts)
    session_id = checkout_url.rsplit("/", 1)[1]
    assert box.objects[box.objects[session_id]["payment_intent"]]["amount"] == int(
        (facts["amount"] + surcharge) * 100)
    box.hold_webhooks = True
    assert _pay(http_customer, checkout_url, "4242424242424242").status_code == 303
    _deliver_all(box)
    run_jobs(app)
    row = _row(app, facts)
    assert (row.surcharge, row.received, row.status) == (
        surcharge, facts["amount"] + surcharge, "paid")
    new = [p for p in _books(provider, sandbox, qbo_sandbox, facts) if p not in before]
    assert [amount for amount, _ in new] == [facts["amount"]]  # the invoice's, once


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_full_refund_takes_the_payment_off_the_books_once_and_the_invoice_is_chased_again(  # type: ignore[no-untyped-def]
        app, web, clock, sandbox, qbo_sandbox, stripe_sandbox, provider: str) -> None:  # noqa: F811
    """Refunds in the books on: a payment refunded in full through Stripe is taken off its
    invoice in the books once (Stripe's events twice, the sweeper and the job again change
    nothing more), the owner sees it on the invoice's activity, and the invoice, owed again,
    gets its next action and is planned a reminder."""
    from collect import payments
    from collect.plan import plan_org
    from jobs.tasks import sweep_ledger
    from store.db import db
    from store.models import Action, AuditEvent, CardPaymentSettings, Invoice, Organisation

    box = stripe_sandbox[0]
    facts = _setup(app, web, provider, stripe_sandbox)
    with app.app_context():
        db.session.scalars(select(CardPaymentSettings)).one().refunds_in_books = True
        db.session.commit()
    before = _books(provider, sandbox, qbo_sandbox, facts)
    http, checkout_url = _checkout(web, facts)
    box.hold_webhooks = True
    assert _pay(http, checkout_url, "4242424242424242").status_code == 303
    _deliver_all(box)
    run_jobs(app)
    assert len([p for p in _books(provider, sandbox, qbo_sandbox, facts)
                if p not in before]) == 1
    with app.app_context():
        assert db.session.get(Invoice, facts["invoice_id"]).amount_due == 0
        settings = db.session.scalars(select(CardPaymentSettings)).one()
        payments.processor_for(settings).refund(_row(app, facts).payment_id, None, "refund-all")
    for _ in range(2):  # every event twice, the job and the sweeper again
        _deliver_all(box)
        run_jobs(app)
        clock.advance(minutes=6)
        with app.app_context():
            sweep_ledger(book_next=False)
        run_jobs(app)
    assert _books(provider, sandbox, qbo_sandbox, facts) == before  # the payment is off
    row = _row(app, facts)
    assert row.refunded == facts["amount"] and row.books_removed_at is not None
    with app.app_context():
        invoice = db.session.get(Invoice, facts["invoice_id"])
        assert (invoice.amount_due, invoice.status) == (facts["amount"], "open")
        assert invoice.next_action_at is not None  # chased again
        kinds = [e.kind for e in db.session.scalars(select(AuditEvent).where(
            AuditEvent.invoice_id == facts["invoice_id"]))]
        assert kinds.count("card_payment_unbooked") == 1
        assert kinds.count("card_payment_refunded") == 1
        org = db.session.get(Organisation, invoice.org_id)
        plan_org(db.session(), org, max(clock(), invoice.next_action_at))
        db.session.commit()
        assert db.session.scalars(select(Action).where(
            Action.invoice_id == facts["invoice_id"],
            Action.status == "planned")).first() is not None
    page = facts["connected"].http.get(
        f"{web.url}/orgs/{facts['connected'].org_id}/invoices/{facts['invoice_id']}")
    assert page.status_code == 200 and "taken off the invoice" in page.text
