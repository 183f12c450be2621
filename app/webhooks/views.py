"""POST /webhooks/xero and /webhooks/quickbooks: thin; services.py does the work.

No session, no CSRF token, no cookie: providers sign the raw body instead. Answers carry no
body except a short reason on a 400, as Xero's intent-to-receive check requires.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, request

from app.webhooks.payloads import PayloadError, ProviderEvent, intuit_events, xero_events
from app.webhooks.services import SIGNATURE_HEADERS, signature_valid, store_events

log = logging.getLogger(__name__)

blueprint = Blueprint("webhooks", __name__, url_prefix="/webhooks")

MAX_BODY = 1024 * 1024  # Xero and Intuit batches are far smaller


def _receive(provider: str, parse: Callable[[Any], list[ProviderEvent]]) -> Response:
    if (request.content_length or 0) > MAX_BODY:
        return Response(status=413)
    body = request.get_data(cache=False)
    if not signature_valid(provider, body, request.headers.get(SIGNATURE_HEADERS[provider])):
        log.warning("%s webhook refused: signature missing or wrong", provider)
        return Response(status=401)
    try:
        events = parse(json.loads(body))
    except (ValueError, RecursionError) as error:  # PayloadError and JSON errors alike
        reason = str(error) if isinstance(error, PayloadError) else "body is not JSON"
        log.warning("%s webhook refused: %s", provider, reason)
        return Response(json.dumps({"error": reason}), status=400,
                        mimetype="application/json")
    if events:
        store_events(provider, events)
    return Response(status=200)


@blueprint.post("/xero")
def xero() -> Response:
    return _receive("xero", xero_events)


@blueprint.post("/quickbooks")
def quickbooks() -> Response:
    return _receive("quickbooks", intuit_events)
