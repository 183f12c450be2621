"""The Stripe sandbox's state: accounts (secret key -> webhook endpoint and signing secret),
Checkout Sessions, PaymentIntents, charges, balance transactions, refunds and events, each
rendered from Stripe's own fixture of the resource (sandboxes/specs/stripe/fixtures3.json) with
our values over it.

Choices no document settles, marked UNVERIFIED:
- The fee: 1.5 % + 25 minor units for EUR, 1.5 % + 20 for GBP, 2.9 % + 30 otherwise (Stripe's
  published standard prices for European and US cards; the real fee depends on the card).
- Webhooks are sent as soon as the event happens, one POST per event, in the order they
  happen; `hold_webhooks` keeps them for a test to deliver (again, or out of order).
- The hosted page at /c/pay/<session> is ours: Stripe's real page is a JavaScript app; this one
  is a plain form with the fields a person fills in (card number, expiry, CVC, name).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

FIXTURES = Path(__file__).resolve().parents[1] / "specs" / "stripe" / "fixtures3.json"
DEMO_SECRET_KEY = "sk_test_dunwell_demo_0000000000000000"
DEMO_WEBHOOK_SECRET = "whsec_dunwell_demo_000000000000000000"

# Stripe's test cards: https://docs.stripe.com/testing
CARD_SUCCEEDS = "4242424242424242"
CARD_DECLINED = "4000000000000002"
CARD_AUTHENTICATES = "4000002500003155"


def _fixtures() -> dict[str, Any]:
    return dict(json.loads(FIXTURES.read_text())["resources"])


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def signature_header(payload: bytes, secret: str, at: int | None = None) -> str:
    """`t=<unix time>,v1=<HMAC-SHA256 of "t.payload">`, as Stripe signs a webhook."""
    stamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256)
    return f"t={stamp},v1={digest.hexdigest()}"


def fee_of(amount: int, currency: str) -> int:
    """UNVERIFIED: see the module's docstring."""
    percent, fixed = {"eur": (15, 25), "gbp": (15, 20)}.get(currency, (29, 30))
    return (amount * percent + 500) // 1000 + fixed


@dataclass
class Account:
    secret_key: str
    webhook_url: str | None = None  # an endpoint set up beforehand (as in the dashboard)
    webhook_secret: str = DEMO_WEBHOOK_SECRET
    endpoints: list[dict[str, Any]] = field(default_factory=list)  # POST /v1/webhook_endpoints


@dataclass
class SandboxConfig:
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    base_url: str = "http://127.0.0.1:5059"


class StripeSandbox:
    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.lock = threading.RLock()
        self.fixtures = _fixtures()
        self.accounts: dict[str, Account] = {}
        self.objects: dict[str, dict[str, Any]] = {}  # by id, every kind
        self.owner: dict[str, str] = {}  # object id -> secret key of its account
        self.events: list[dict[str, Any]] = []
        self.idempotent: dict[tuple[str, str], tuple[str, int, str]] = {}
        self.hold_webhooks = False
        self.deliveries: list[tuple[str, int]] = []  # (event id, status answered)

    # --- accounts --------------------------------------------------------------------------

    def add_account(self, secret_key: str | None = None, webhook_url: str | None = None,
                    webhook_secret: str | None = None) -> Account:
        account = Account(secret_key or f"sk_test_{secrets.token_hex(16)}", webhook_url,
                          webhook_secret or f"whsec_{secrets.token_hex(16)}")
        with self.lock:
            self.accounts[account.secret_key] = account
        return account

    def now(self) -> int:
        return int(self.config.clock().timestamp())

    # --- resources -------------------------------------------------------------------------

    def render(self, kind: str, values: dict[str, Any]) -> dict[str, Any]:
        """Stripe's fixture of the resource, our values over it."""
        base = copy.deepcopy(self.fixtures[kind])
        base.update(values)
        base["livemode"] = False
        return base

    def store(self, key: str, obj: dict[str, Any]) -> dict[str, Any]:
        self.objects[obj["id"]] = obj
        self.owner[obj["id"]] = key
        return obj

    def get(self, key: str, object_id: str, kind: str) -> dict[str, Any] | None:
        obj = self.objects.get(object_id)
        if obj is None or self.owner.get(object_id) != key or obj.get("object") != kind:
            return None
        return obj

    # --- events ----------------------------------------------------------------------------

    def emit(self, key: str, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        event = self.render("event", {
            "id": new_id("evt"), "type": kind, "created": self.now(),
            "api_version": "2025-09-30.clover", "data": {"object": copy.deepcopy(obj)},
            "pending_webhooks": 1, "request": {"id": new_id("req"), "idempotency_key": None}})
        self.store(key, event)
        self.events.append(event)
        if not self.hold_webhooks:
            self.deliver(event["id"])
        return event

    def deliver(self, event_id: str, *, secret: str | None = None) -> int:
        """POST the event to each endpoint of its account that wants it, signed now; the
        worst status answered (0: none reached, or no endpoint)."""
        event = self.objects[event_id]
        account = self.accounts[self.owner[event_id]]
        targets = [(account.webhook_url, account.webhook_secret)] if account.webhook_url else []
        targets += [(e["url"], e["_secret"]) for e in account.endpoints
                    if e["status"] == "enabled" and (
                        "*" in e["enabled_events"] or event["type"] in e["enabled_events"])]
        worst = 0
        payload = json.dumps(event).encode()
        for url, endpoint_secret in targets:
            header = signature_header(payload, secret or endpoint_secret)
            try:
                answer = requests.post(url, data=payload, timeout=30, headers={
                    "Content-Type": "application/json; charset=utf-8",
                    "Stripe-Signature": header, "User-Agent": "Stripe/1.0 (+https://stripe.com)"})
                status = answer.status_code
            except requests.RequestException:
                status = 599
            self.deliveries.append((event_id, status))
            worst = max(worst, status)
        return worst

    def events_of(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.events if kind is None or e["type"] == kind]

    # --- paying ----------------------------------------------------------------------------

    def pay(self, session_id: str, card_number: str, name: str = "") -> str:
        """The customer submits the hosted page: succeeded | failed | requires_action."""
        with self.lock:
            session = self.objects[session_id]
            key = self.owner[session_id]
            intent = self.objects[session["payment_intent"]]
            number = card_number.replace(" ", "")
            if number == CARD_DECLINED:
                self._decline(key, intent)
                return "failed"
            if number == CARD_AUTHENTICATES:
                intent["status"] = "requires_action"
                intent["next_action"] = {"type": "use_stripe_sdk"}
                return "requires_action"
            self._succeed(key, session, intent, name)
            return "succeeded"

    def authenticate(self, session_id: str, approve: bool, name: str = "") -> str:
        with self.lock:
            session = self.objects[session_id]
            key = self.owner[session_id]
            intent = self.objects[session["payment_intent"]]
            if intent["status"] != "requires_action":
                return intent["status"]
            if not approve:
                self._decline(key, intent, code="authentication_required",
                              message="The card's authentication failed.")
                return "failed"
            self._succeed(key, session, intent, name)
            return "succeeded"

    def _decline(self, key: str, intent: dict[str, Any], code: str = "card_declined",
                 message: str = "Your card was declined.") -> None:
        intent["status"] = "requires_payment_method"
        intent["next_action"] = None
        intent["last_payment_error"] = {"type": "card_error", "code": code,
                                        "decline_code": "generic_decline", "message": message}
        self.emit(key, "payment_intent.payment_failed", intent)

    def _succeed(self, key: str, session: dict[str, Any], intent: dict[str, Any],
                 name: str) -> None:
        amount, currency = intent["amount"], intent["currency"]
        fee = fee_of(amount, currency)
        txn = self.store(key, self.render("balance_transaction", {
            "id": new_id("txn"), "amount": amount, "currency": currency, "fee": fee,
            "fee_details": [{"amount": fee, "application": None, "currency": currency,
                             "description": "Stripe processing fees", "type": "stripe_fee"}],
            "net": amount - fee, "created": self.now(), "available_on": self.now() + 2 * 86400,
            "description": intent.get("description"), "reporting_category": "charge",
            "status": "pending", "type": "charge"}))
        charge = self.store(key, self.render("charge", {
            "id": new_id("ch"), "amount": amount, "amount_captured": amount,
            "amount_refunded": 0, "refunded": False, "captured": True, "paid": True,
            "status": "succeeded", "currency": currency, "created": self.now(),
            "balance_transaction": txn["id"], "payment_intent": intent["id"],
            "metadata": dict(intent.get("metadata") or {}),
            "description": intent.get("description"), "refunds": None,
            "billing_details": {**self.fixtures["charge"]["billing_details"], "name": name}}))
        txn["source"] = charge["id"]
        intent.update({"status": "succeeded", "amount_received": amount,
                       "latest_charge": charge["id"], "last_payment_error": None,
                       "next_action": None, "payment_method": new_id("pm")})
        session.update({"status": "complete", "payment_status": "paid"})
        self.emit(key, "charge.succeeded", charge)
        self.emit(key, "payment_intent.succeeded", intent)
        self.emit(key, "checkout.session.completed", session)

    def refund(self, key: str, intent: dict[str, Any], amount: int | None,
               reason: str | None) -> dict[str, Any]:
        charge = self.objects[intent["latest_charge"]]
        left = charge["amount"] - charge["amount_refunded"]
        value = left if amount is None else amount
        refund = self.store(key, self.render("refund", {
            "id": new_id("re"), "amount": value, "charge": charge["id"],
            "payment_intent": intent["id"], "currency": charge["currency"],
            "created": self.now(), "status": "succeeded", "reason": reason,
            "metadata": {}, "balance_transaction": None}))
        charge["amount_refunded"] += value
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        self.emit(key, "refund.created", refund)
        self.emit(key, "charge.refunded", charge)
        return refund
