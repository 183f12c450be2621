"""A local emulator of the parts of Stripe's API the portal's card payments use, for the demo
and tests: the official `stripe` package talks to it over HTTP when its API base is pointed
here (`StripeClient(base_addresses={"api": ...})`).

Checkout Sessions (with the hosted page their `url` leads to), PaymentIntents, charges, balance
transactions (the fee), refunds, events and webhook endpoints; answers rendered from Stripe's
own fixtures (sandboxes/specs/stripe/fixtures3.json); secret-key auth; form-encoded bodies;
Idempotency-Key replays; Stripe's error bodies; webhooks signed with `Stripe-Signature`
(t=..., v1=HMAC-SHA256) and sent to each endpoint of the account; Stripe's test cards:
4242 4242 4242 4242 succeeds, 4000 0000 0000 0002 is declined, 4000 0025 0000 3155 asks for
authentication first.
See `sandbox.py` for the choices no document settles.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.serving import run_simple

from sandboxes.stripe import (
    balance_transactions,
    charges,
    checkout,
    events,
    payment_intents,
    refunds,
    webhook_endpoints,
)
from sandboxes.stripe.api import EXTENSION, StripeError, error_response
from sandboxes.stripe.sandbox import (
    CARD_AUTHENTICATES,
    CARD_DECLINED,
    CARD_SUCCEEDS,
    DEMO_SECRET_KEY,
    DEMO_WEBHOOK_SECRET,
    SandboxConfig,
    StripeSandbox,
    signature_header,
)

__all__ = ["CARD_AUTHENTICATES", "CARD_DECLINED", "CARD_SUCCEEDS", "DEMO_SECRET_KEY",
           "DEMO_WEBHOOK_SECRET", "SandboxConfig", "StripeSandbox", "create_app", "serve",
           "signature_header"]


def create_app(sandbox: StripeSandbox | None = None) -> Flask:
    app = Flask(__name__)
    app.extensions[EXTENSION] = sandbox or StripeSandbox()
    for module in (checkout, payment_intents, charges, balance_transactions, refunds, events,
                   webhook_endpoints):
        app.register_blueprint(module.bp)
    app.register_error_handler(StripeError, error_response)
    return app


def serve(host: str = "127.0.0.1", port: int = 5059, webhook_url: str | None = None,
          secret_key: str = DEMO_SECRET_KEY,
          webhook_secret: str = DEMO_WEBHOOK_SECRET) -> None:
    sandbox = StripeSandbox(SandboxConfig(base_url=f"http://{host}:{port}"))
    sandbox.add_account(secret_key, webhook_url, webhook_secret)
    print(f"Stripe sandbox on http://{host}:{port} (events: /_sandbox/events)", flush=True)
    run_simple(host, port, create_app(sandbox), threaded=True)
