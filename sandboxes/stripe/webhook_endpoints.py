"""Webhook endpoints: POST /v1/webhook_endpoints (its `secret` is answered once, at creation,
as Stripe does) and GET /v1/webhook_endpoints/<id>."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from sandboxes.stripe.api import StripeError, api, retrieve
from sandboxes.stripe.sandbox import StripeSandbox, new_id

bp = Blueprint("stripe_webhook_endpoints", __name__)


def _public(endpoint: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in endpoint.items() if not k.startswith("_")}


@bp.post("/v1/webhook_endpoints")
def create() -> Response:
    def handle(box: StripeSandbox, key: str, params: dict[str, Any]) -> dict[str, Any]:
        url = str(params.get("url") or "")
        if not url.startswith(("http://", "https://")):
            raise StripeError(400, "invalid_request_error", "Invalid URL: " + (url or "(none)"),
                              "url_invalid", "url")
        events = params.get("enabled_events")
        if not isinstance(events, list) or not events:
            raise StripeError(400, "invalid_request_error",
                              "Missing required param: enabled_events.", "parameter_missing",
                              "enabled_events")
        secret = f"whsec_{new_id('x')[2:]}"
        endpoint = box.store(key, box.render("webhook_endpoint", {
            "id": new_id("we"), "url": url, "enabled_events": [str(e) for e in events],
            "created": box.now(), "description": params.get("description"),
            "metadata": dict(params.get("metadata") or {}), "status": "enabled",
            "_secret": secret}))
        box.accounts[key].endpoints.append(endpoint)
        return {**_public(endpoint), "secret": secret}
    return api(handle)


@bp.get("/v1/webhook_endpoints/<endpoint_id>")
def get_one(endpoint_id: str) -> Response:
    return retrieve("webhook_endpoint", endpoint_id)
