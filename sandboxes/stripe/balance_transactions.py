"""Balance transactions: GET /v1/balance_transactions/<id> (a charge's fee and net)."""

from __future__ import annotations

from flask import Blueprint, Response

from sandboxes.stripe.api import retrieve

bp = Blueprint("stripe_balance_transactions", __name__)


@bp.get("/v1/balance_transactions/<txn_id>")
def get_one(txn_id: str) -> Response:
    return retrieve("balance_transaction", txn_id)
