"""Events: GET /v1/events/<id>; and ours, /_sandbox/events: the events sent, for the demo."""

from __future__ import annotations

from html import escape

from flask import Blueprint, Response

from sandboxes.stripe.api import current, retrieve

bp = Blueprint("stripe_events", __name__)


@bp.get("/v1/events/<event_id>")
def get_one(event_id: str) -> Response:
    return retrieve("event", event_id)


@bp.get("/_sandbox/events")
def listing() -> str:
    box = current()
    answered = dict(box.deliveries)
    rows = "".join(f"<tr><td>{escape(e['id'])}</td><td>{escape(e['type'])}</td>"
                   f"<td>{escape(e['data']['object']['id'])}</td>"
                   f"<td>{answered.get(e['id'], '-')}</td></tr>" for e in reversed(box.events))
    return ("<!doctype html><title>Stripe sandbox events</title><h1>Events sent</h1><table>"
            "<tr><th>Event</th><th>Type</th><th>Object</th><th>Answer</th></tr>"
            f"{rows}</table>")
