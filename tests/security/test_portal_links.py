"""The customer's portal: a link shows one customer's invoices of one organisation and
nothing else; a forged, expired, rotated or re-signed link is the same 404 as a made-up one;
every POST needs the CSRF token and is rate-limited; none of the refusals changes anything."""

from __future__ import annotations

import time
from decimal import Decimal
from urllib.parse import urljoin

import pytest
import requests
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select

from tests.integration import flows
from tests.integration.conftest import run_jobs
from tests.security.conftest import fingerprint

pytestmark = pytest.mark.db


def _setup(app, connected) -> tuple[str, int, list[int], int]:  # type: ignore[no-untyped-def]
    """The books synced; a link for a customer with an open invoice; that invoice, other
    customers' invoices of the same books, and an invoice of another organisation."""
    from collect import portal
    from store.db import db
    from store.models import Contact, Invoice, Organisation

    run_jobs(app)
    app.config["BASE_URL"] = connected.web.url
    org_id = connected.org_id
    with app.app_context():
        mine = next(i for i in db.session.scalars(select(Invoice).where(
            Invoice.org_id == org_id, Invoice.status == "open").order_by(Invoice.id))
            if i.contact_id is not None and i.amount_due > 0)
        others = [i.id for i in db.session.scalars(select(Invoice).where(
            Invoice.org_id == org_id, Invoice.contact_id != mine.contact_id,
            Invoice.status == "open")).all()][:3]
        other_org = Organisation(name="Another Ltd", country="GB", timezone="Europe/London",
                                 base_currency="GBP")
        db.session.add(other_org)
        db.session.flush()
        stranger = Contact(org_id=other_org.id, provider_id="x-1", name="Other customer")
        db.session.add(stranger)
        db.session.flush()
        foreign = Invoice(org_id=other_org.id, provider_id="inv-x-1", number="X-1",
                          contact_id=stranger.id, currency="GBP", total=Decimal(100),
                          amount_paid=Decimal(0),
                          amount_due=Decimal(100), status="open")
        db.session.add(foreign)
        db.session.flush()
        contact = db.session.get(Contact, mine.contact_id)
        link = portal.portal_url(db.session, contact)
        ids = mine.id, others, foreign.id
        db.session.commit()
        db.session.remove()
    assert link is not None
    return link, *ids


def test_a_link_reaches_one_customers_invoices_and_nothing_else(app, connected) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Invoice

    link, mine, others, foreign = _setup(app, connected)
    customer = requests.Session()
    page = customer.get(link)
    assert page.status_code == 200
    with app.app_context():
        numbers = {i.id: i.number for i in db.session.scalars(select(Invoice))}
    assert numbers[mine] in page.text
    assert numbers[foreign] not in page.text
    for other in others:
        assert f"invoice-{other}" not in page.text
    csrf = flows.csrf_token(page.text)
    before = fingerprint(app)
    for invoice_id in [*others, foreign]:
        for kind, data in (("promise", {"pay_by": "2026-12-01"}),
                           ("dispute", {"reason": "not mine"}),
                           ("plan", {"instalments": "2", "every_days": "30",
                                     "first_on": "2026-12-01"})):
            answer = customer.post(f"{link}/invoices/{invoice_id}/{kind}",
                                   data={"csrf_token": csrf, **data})
            assert answer.status_code == 400 and "not one of yours" in answer.text
        for kind in ("pdf", "pay"):
            assert customer.get(f"{link}/invoices/{invoice_id}/{kind}",
                                allow_redirects=False).status_code == 404
    assert fingerprint(app) == before


def test_forged_expired_and_resigned_links_are_one_404(app, connected) -> None:  # type: ignore[no-untyped-def]
    from collect import portal
    from store.db import db
    from store.models import Contact, PortalAccess

    link, mine, _others, _foreign = _setup(app, connected)
    base = connected.web.url
    token = link.rsplit("/", 1)[1]
    with app.app_context():
        access = db.session.scalars(select(PortalAccess)).one()
        key, contact_id = access.key, access.contact_id
        another = db.session.scalar(select(Contact.id).where(
            Contact.org_id == connected.org_id, Contact.id != contact_id).limit(1))
        db.session.remove()

    class LongAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - (portal.LINK_DAYS + 1) * 86400

    secret = app.config["SECRET_KEY"]
    expired = URLSafeTimedSerializer(secret, salt=portal.SALT, signer=LongAgo).dumps(
        {"c": contact_id, "k": key})
    other_secret = URLSafeTimedSerializer("another-secret", salt=portal.SALT).dumps(
        {"c": contact_id, "k": key})
    other_customer = URLSafeTimedSerializer(secret, salt=portal.SALT).dumps(
        {"c": another, "k": key})  # a real signature, another customer's id, this key
    other_salt = URLSafeTimedSerializer(secret).dumps({"c": contact_id, "k": key})
    anonymous = requests.Session()
    made_up = anonymous.get(f"{base}/portal/made-up")
    assert made_up.status_code == 404
    # One character of the signature changed: its first, whose six bits all count (the last
    # character's lowest bits are padding, so "…B" and "…A" can be the same signature).
    head, signature = token.rsplit(".", 1)
    tampered = f"{head}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"
    for bad in (expired, other_secret, other_customer, other_salt, tampered,
                token + "x", "x" * 4000):
        answer = anonymous.get(f"{base}/portal/{bad}")
        assert (answer.status_code, answer.text) == (404, made_up.text), bad[:40]
        assert anonymous.get(f"{base}/portal/{bad}/invoices/{mine}/pdf").status_code == 404
    assert anonymous.get(link).status_code == 200


def test_every_portal_post_needs_the_csrf_token_and_is_rate_limited(app, connected) -> None:  # type: ignore[no-untyped-def]
    from app.portal.views import PORTAL_POSTS_ALLOWED
    from store.db import db
    from store.models import PaymentPromise

    link, mine, _others, _foreign = _setup(app, connected)
    customer = requests.Session()
    page = customer.get(link)
    form = next(f for f in flows.forms_of(page.text) if "/promise" in f["action"])
    url = urljoin(link, form["action"])
    before = fingerprint(app)
    # No token, a token of another browser's session: refused, nothing saved.
    assert customer.post(url, data={"pay_by": "2026-11-30"}).status_code == 400
    stranger = requests.Session()
    other_token = flows.csrf_token(stranger.get(link).text)
    assert customer.post(url, data={"pay_by": "2026-11-30",
                                    "csrf_token": other_token}).status_code == 400
    assert fingerprint(app) == before
    csrf = flows.csrf_token(page.text)
    # Bad input counts too: after the allowance, even a good promise is refused with 429.
    for _ in range(PORTAL_POSTS_ALLOWED):
        assert customer.post(url, data={"csrf_token": csrf, "pay_by": "2020-01-01"}
                             ).status_code == 400
    limited = customer.post(url, data={"csrf_token": csrf, "pay_by": "2026-11-30"})
    assert limited.status_code == 429 and limited.headers["Retry-After"]
    assert "Too many requests" in limited.text
    with app.app_context():
        assert db.session.scalars(select(PaymentPromise)).all() == []
        db.session.remove()
    del mine


def test_the_access_log_hides_portal_links() -> None:
    from app.security import redact_secrets

    line = '127.0.0.1 - - "GET /portal/eyJjIjoyM30.abc.def/invoices/3/pdf?lang=he HTTP/1.1" 200'
    assert redact_secrets(line) == ('127.0.0.1 - - "GET /portal/[redacted]?lang=he HTTP/1.1"'
                                    ' 200')
