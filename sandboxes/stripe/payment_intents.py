"""PaymentIntents: GET /v1/payment_intents/<id> (made by a Checkout Session)."""

from __future__ import annotations

from flask import Blueprint, Response

from sandboxes.stripe.api import retrieve

bp = Blueprint("stripe_payment_intents", __name__)


@bp.get("/v1/payment_intents/<intent_id>")
def get_one(intent_id: str) -> Response:
    return retrieve("payment_intent", intent_id)
