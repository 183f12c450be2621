"""Refunds: POST /v1/refunds (of a PaymentIntent or a charge, all or part), GET
/v1/refunds/<id>."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from sandboxes.stripe.api import StripeError, api, found, integer, retrieve
from sandboxes.stripe.sandbox import StripeSandbox

bp = Blueprint("stripe_refunds", __name__)


@bp.post("/v1/refunds")
def create() -> Response:
    def handle(box: StripeSandbox, key: str, params: dict[str, Any]) -> dict[str, Any]:
        intent_id = params.get("payment_intent")
        if not intent_id and params.get("charge"):
            intent_id = found(box, key, "charge", str(params["charge"]))["payment_intent"]
        if not intent_id:
            raise StripeError(400, "invalid_request_error",
                              "One of the following params should be provided for this "
                              "request: payment_intent or charge.", "parameter_missing")
        intent = found(box, key, "payment_intent", str(intent_id))
        if intent["status"] != "succeeded":
            raise StripeError(400, "invalid_request_error",
                              "This PaymentIntent does not have a successful charge to refund.",
                              "charge_not_refundable")
        charge = box.objects[intent["latest_charge"]]
        left = charge["amount"] - charge["amount_refunded"]
        amount = integer(params, "amount", params["amount"]) if "amount" in params else None
        if left <= 0:
            raise StripeError(400, "invalid_request_error",
                              f"Charge {charge['id']} has already been refunded.",
                              "charge_already_refunded")
        if amount is not None and not 0 < amount <= left:
            raise StripeError(400, "invalid_request_error",
                              f"Refund amount ({amount}) is greater than unrefunded amount on "
                              f"charge ({left})", "amount_too_large", "amount")
        return box.refund(key, intent, amount, params.get("reason"))
    return api(handle)


@bp.get("/v1/refunds/<refund_id>")
def get_one(refund_id: str) -> Response:
    return retrieve("refund", refund_id)
