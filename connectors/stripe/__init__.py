"""Stripe, for the card payments a customer makes from the portal: Checkout Sessions, their
PaymentIntents, charges (the fee is on the charge's balance transaction), refunds, and the
webhooks Stripe signs with `Stripe-Signature` (verified by the official package, with its
timestamp tolerance).

One organisation's own account: its secret key is passed in (never logged, never in repr), and
`api_base` points the official `stripe` package at another host (the local emulator in tests
and the demo). Amounts cross this boundary in the currency's minor units, as Stripe counts
them; the caller converts. Every failure is classified once into connectors.base's errors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import stripe

from connectors.base import (
    ConfigurationError,
    ConnectorError,
    NotFound,
    ProviderRejected,
    RateLimited,
    TransientError,
)

log = logging.getLogger(__name__)

WEBHOOK_TOLERANCE_SECONDS = 300  # Stripe's own default: older signatures are replays
REQUEST_TIMEOUT = 20


class SignatureRefused(ConnectorError):
    """A webhook whose Stripe-Signature does not verify (wrong secret, altered body, too old)."""


@dataclass(frozen=True)
class CheckoutOrder:
    """What the customer is asked to pay, and where Stripe sends them afterwards."""

    currency: str  # ISO 4217, upper case
    amount_minor: int
    description: str
    payment_method_types: Sequence[str]
    success_url: str
    cancel_url: str
    reference: str  # client_reference_id: ours, to find the payment again
    metadata: dict[str, str]
    customer_email: str | None = None
    locale: str | None = None


@dataclass(frozen=True)
class CheckoutStarted:
    session_id: str
    url: str


@dataclass(frozen=True)
class CheckoutState:
    session_id: str
    status: str  # open | complete | expired
    payment_status: str  # paid | unpaid | no_payment_required
    payment_id: str | None
    metadata: dict[str, str]


@dataclass(frozen=True)
class PaymentState:
    """A PaymentIntent as it stands now, with what its latest charge says of fee and refunds."""

    payment_id: str
    status: str  # succeeded | processing | requires_payment_method | requires_action | canceled
    currency: str
    amount_minor: int
    received_minor: int
    fee_minor: int | None
    refunded_minor: int
    failure: str | None
    metadata: dict[str, str]


@dataclass(frozen=True)
class EventNotice:
    """A verified webhook event: its id and type, and the object it is about."""

    event_id: str
    kind: str
    object_id: str
    object_type: str


def verify_event(payload: bytes, signature: str | None, secret: str,
                 tolerance: int = WEBHOOK_TOLERANCE_SECONDS) -> EventNotice:
    """The event a webhook carries, once its signature and timestamp verify; SignatureRefused
    otherwise (a malformed body too)."""
    try:
        event = stripe.Webhook.construct_event(payload, signature or "", secret,
                                               tolerance=tolerance)
    except stripe.SignatureVerificationError as exc:
        raise SignatureRefused("Stripe-Signature does not verify") from exc
    except ValueError as exc:
        raise SignatureRefused("the webhook's body is not an event") from exc
    body = event.to_dict()
    obj = (body.get("data") or {}).get("object") or {}
    if not body.get("id") or not body.get("type") or not obj.get("id"):
        raise SignatureRefused("the event names no object")
    return EventNotice(str(body["id"]), str(body["type"]), str(obj["id"]),
                       str(obj.get("object") or ""))


def _classify(what: str, exc: stripe.StripeError) -> ConnectorError:
    message = f"Stripe {what}: {getattr(exc, 'user_message', None) or type(exc).__name__}"
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return ConfigurationError(message)
    if isinstance(exc, stripe.RateLimitError):
        return RateLimited(message, retry_after=2.0)
    if isinstance(exc, stripe.APIConnectionError):
        return TransientError(message)
    if isinstance(exc, stripe.InvalidRequestError):
        if exc.http_status == 404:
            return NotFound(message)
        return ProviderRejected(message)
    if isinstance(exc, stripe.CardError):
        return ProviderRejected(message)
    status = exc.http_status or 500
    return TransientError(message) if status >= 500 or status == 409 else ProviderRejected(
        message)


def _metadata(obj: Any) -> dict[str, str]:
    raw = obj.get("metadata") or {}
    return {str(k): str(v) for k, v in dict(raw).items()}


class StripeProcessor:
    """One organisation's Stripe account."""

    def __init__(self, secret_key: str, api_base: str | None = None) -> None:
        addresses: Any = {"api": api_base} if api_base else None
        self._client = stripe.StripeClient(
            secret_key, base_addresses=addresses, max_network_retries=2,
            http_client=stripe.RequestsClient(timeout=REQUEST_TIMEOUT))
        self.calls = 0

    def __repr__(self) -> str:  # the key never reaches a log line through repr()
        return "StripeProcessor(<secret>)"

    def _call(self, what: str, fn: Callable[..., Any], *args: Any,
              **kwargs: Any) -> dict[str, Any]:
        """One call; the answer as plain data (StripeObject is not a dict)."""
        self.calls += 1
        try:
            answer = fn(*args, **kwargs)
        except stripe.StripeError as exc:
            raise _classify(what, exc) from exc
        return dict(answer.to_dict())

    def create_checkout(self, order: CheckoutOrder, idempotency_key: str) -> CheckoutStarted:
        params: dict[str, Any] = {
            "mode": "payment",
            "payment_method_types": list(order.payment_method_types),
            "line_items": [{"quantity": 1, "price_data": {
                "currency": order.currency.lower(), "unit_amount": order.amount_minor,
                "product_data": {"name": order.description}}}],
            "success_url": order.success_url, "cancel_url": order.cancel_url,
            "client_reference_id": order.reference, "metadata": order.metadata,
            "payment_intent_data": {"metadata": order.metadata,
                                    "description": order.description},
        }
        if order.customer_email:
            params["customer_email"] = order.customer_email
        if order.locale:
            params["locale"] = order.locale
        session = self._call("create checkout session", self._client.v1.checkout.sessions.create,
                             params, {"idempotency_key": idempotency_key})
        if not session.get("id") or not session.get("url"):
            raise ProviderRejected("Stripe answered a checkout session without its page")
        return CheckoutStarted(str(session["id"]), str(session["url"]))

    def checkout(self, session_id: str) -> CheckoutState:
        session = self._call(f"checkout session {session_id}",
                             self._client.v1.checkout.sessions.retrieve, session_id)
        intent = session.get("payment_intent")
        if intent is not None and not isinstance(intent, str):
            intent = intent.get("id")
        return CheckoutState(str(session["id"]), str(session.get("status") or ""),
                             str(session.get("payment_status") or ""),
                             str(intent) if intent else None, _metadata(session))

    def payment(self, payment_id: str) -> PaymentState:
        """The PaymentIntent, and its latest charge's fee and refunds."""
        intent = self._call(f"payment {payment_id}", self._client.v1.payment_intents.retrieve,
                            payment_id)
        fee = None
        refunded = 0
        charge_id = intent.get("latest_charge")
        if charge_id is not None and not isinstance(charge_id, str):
            charge_id = charge_id.get("id")
        if charge_id:
            charge = self._call(f"charge {charge_id}", self._client.v1.charges.retrieve,
                                str(charge_id))
            refunded = int(charge.get("amount_refunded") or 0)
            txn = charge.get("balance_transaction")
            if txn is not None and not isinstance(txn, str):
                txn = txn.get("id")
            if txn:
                balance = self._call(f"balance transaction {txn}",
                                     self._client.v1.balance_transactions.retrieve, str(txn))
                fee = int(balance.get("fee") or 0)
        error = intent.get("last_payment_error") or {}
        failure = error.get("message") or error.get("code") if error else None
        return PaymentState(
            payment_id=str(intent["id"]), status=str(intent.get("status") or ""),
            currency=str(intent.get("currency") or "").upper(),
            amount_minor=int(intent.get("amount") or 0),
            received_minor=int(intent.get("amount_received") or 0), fee_minor=fee,
            refunded_minor=refunded, failure=str(failure)[:255] if failure else None,
            metadata=_metadata(intent))

    def refund(self, payment_id: str, amount_minor: int | None, idempotency_key: str) -> str:
        params: dict[str, Any] = {"payment_intent": payment_id}
        if amount_minor is not None:
            params["amount"] = amount_minor
        refund = self._call(f"refund {payment_id}", self._client.v1.refunds.create, params,
                            {"idempotency_key": idempotency_key})
        return str(refund["id"])

    def create_webhook_endpoint(self, url: str, events: Sequence[str]) -> tuple[str, str]:
        """A webhook endpoint of the account at `url`: its id and its signing secret (Stripe
        answers the secret once, when the endpoint is made)."""
        endpoint = self._call("create webhook endpoint",
                              self._client.v1.webhook_endpoints.create,
                              {"url": url, "enabled_events": list(events),
                               "description": "Dunwell: card payments from the portal"})
        if not endpoint.get("id") or not endpoint.get("secret"):
            raise ProviderRejected("Stripe answered a webhook endpoint without its secret")
        return str(endpoint["id"]), str(endpoint["secret"])

    def charge_payment_id(self, charge_id: str) -> str | None:
        """The PaymentIntent a charge belongs to (a refund's webhook names the charge)."""
        charge = self._call(f"charge {charge_id}", self._client.v1.charges.retrieve, charge_id)
        intent = charge.get("payment_intent")
        if intent is not None and not isinstance(intent, str):
            intent = intent.get("id")
        return str(intent) if intent else None
