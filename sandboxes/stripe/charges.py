"""Charges: GET /v1/charges/<id> (made when a PaymentIntent succeeds)."""

from __future__ import annotations

from flask import Blueprint, Response

from sandboxes.stripe.api import retrieve

bp = Blueprint("stripe_charges", __name__)


@bp.get("/v1/charges/<charge_id>")
def get_one(charge_id: str) -> Response:
    return retrieve("charge", charge_id)
