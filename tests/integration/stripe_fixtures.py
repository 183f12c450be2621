"""The Stripe sandbox for card-payment tests: served on 127.0.0.1, an account per test with
keys made for it, its webhooks sent to the app under test, and helpers that read what each
provider sandbox's books hold."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import FakeClock, LiveServer


@pytest.fixture
def stripe_sandbox(clock: FakeClock) -> Iterator[tuple[Any, LiveServer]]:
    from sandboxes.stripe import SandboxConfig, StripeSandbox, create_app

    box = StripeSandbox(SandboxConfig(clock=clock))
    server = LiveServer(create_app(box))
    box.config.base_url = server.url
    yield box, server
    server.stop()


def connect_stripe(app, web: LiveServer, stripe_sandbox, org_id: int) -> Any:  # type: ignore[no-untyped-def]
    """The organisation takes card payments through a new account of the Stripe sandbox,
    whose webhooks come to this app; the account (its keys made for this test)."""
    from collect import payments
    from store import clock
    from store.db import db
    from store.models import Organisation

    box, server = stripe_sandbox
    account = box.add_account(secret_key=f"sk_test_{secrets.token_hex(16)}",
                              webhook_url=f"{web.url}/webhooks/stripe/{org_id}",
                              webhook_secret=f"whsec_{secrets.token_hex(16)}")
    app.config["STRIPE_API_BASE"] = server.url
    with app.app_context():
        org = db.session.get(Organisation, org_id)
        payments.save_settings(db.session(), org, payments.CardChoice(
            enabled=True, secret_key=account.secret_key,
            webhook_secret=account.webhook_secret, account_code=None, book_fees=False),
            clock.now())
        db.session.commit()
    return account


def books_payments(provider: str, box: Any, tenant_id: str, invoice_id: str
                   ) -> list[tuple[Decimal, str]]:
    """The payments the provider sandbox's books hold on the invoice: (amount, reference)."""
    if provider == "xero":
        tenant = box.tenant(tenant_id)
        return [(p["Amount"], str(p.get("Reference") or "")) for p in tenant.payments.values()
                if p["_invoice_id"] == invoice_id and p.get("Status") != "DELETED"]
    company = box.company(tenant_id)
    found = []
    for payment in company.records["Payment"].values():
        for line in payment.get("Line") or []:
            if any(t.get("TxnId") == invoice_id and t.get("TxnType") == "Invoice"
                   for t in line.get("LinkedTxn") or []):
                found.append((Decimal(str(line["Amount"])), str(payment.get("PrivateNote"))))
    return found


def books_fees(provider: str, box: Any, tenant_id: str, payment_id: str) -> list[Decimal]:
    """The bank fees the provider sandbox's books hold for a processor's payment."""
    if provider == "xero":
        return [t["Total"] for t in box.tenant(tenant_id).bank_transactions.values()
                if payment_id in str(t.get("Reference"))]
    return [p["TotalAmt"] for p in box.company(tenant_id).records["Purchase"].values()
            if payment_id in str(p.get("PrivateNote"))]
