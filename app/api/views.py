"""The JSON API (/api/v1): read-only, one organisation per bearer token, described by
app/api/openapi.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, g, jsonify, request
from sqlalchemy import Select, select

from app.dashboard.services import BUCKETS, aging, dso
from app.extensions import csrf
from app.organisations.members import organisation_of_token
from store import clock
from store.db import db
from store.models import Action, Invoice

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(blueprint)
OPENAPI = Path(__file__).with_name("openapi.json")
INVOICE_STATUSES = ("draft", "open", "paid", "voided", "deleted")
ACTION_STATUSES = ("planned", "claimed", "done", "skipped", "failed", "dead")
MAX_LIMIT = 500


def _problem(status: int, message: str) -> tuple[Response, int]:
    answer = jsonify({"error": message})
    if status == 401:
        answer.headers["WWW-Authenticate"] = 'Bearer realm="dunwell"'
    return answer, status


@blueprint.before_request
def authenticate() -> tuple[Response, int] | None:
    if request.endpoint == "api.openapi":
        return None
    header = request.headers.get("Authorization", "")
    secret = header[7:].strip() if header[:7].lower() == "bearer " else ""
    org = organisation_of_token(secret, clock.now()) if secret else None
    if org is None:
        return _problem(401, "a valid bearer token is required")
    g.api_org = org
    return None


def _limit() -> int | tuple[Response, int]:
    raw = request.args.get("limit", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        return _problem(400, f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


def _listing(model: type[Invoice] | type[Action], statuses: tuple[str, ...]
             ) -> Select[Any] | tuple[Response, int]:
    """The organisation's rows of `model` with the request's `status` filter and `limit`;
    or the problem answer for a bad value of either."""
    limit = _limit()
    if isinstance(limit, tuple):
        return limit
    query: Select[Any] = select(model).where(model.org_id == g.api_org.id)
    status = request.args.get("status")
    if status is not None:
        if status not in statuses:
            return _problem(400, f"status must be one of {', '.join(statuses)}")
        query = query.where(model.status == status)
    return query.limit(limit)


def _money(value: Any) -> str | None:
    return None if value is None else format(value, "f")


@blueprint.get("/openapi.json")
def openapi() -> Response:
    return Response(OPENAPI.read_text(encoding="utf-8"), mimetype="application/json")


@blueprint.get("/organisation")
def organisation() -> Response:
    org = g.api_org
    connection = org.connection
    return jsonify({"id": org.id, "name": org.name, "country": org.country,
                    "timezone": org.timezone, "base_currency": org.base_currency,
                    "connection": None if connection is None else
                    {"provider": connection.provider, "status": connection.status}})


@blueprint.get("/aging")
def aging_report() -> Response:
    org = g.api_org
    today = clock.now().astimezone(ZoneInfo(org.timezone)).date()
    return jsonify({"as_of": today.isoformat(), "currencies": [
        {"currency": row.currency, "buckets": {b: _money(row.buckets[b]) for b in BUCKETS},
         "total": _money(row.total), "overdue": _money(row.overdue),
         "dso": dso(org, today, row.currency)} for row in aging(org, today)]})


@blueprint.get("/invoices")
def invoices() -> Response | tuple[Response, int]:
    query = _listing(Invoice, INVOICE_STATUSES)
    if isinstance(query, tuple):
        return query
    rows = db.session.scalars(query.order_by(Invoice.due_date, Invoice.id))
    return jsonify({"invoices": [{
        "id": i.id, "number": i.number, "status": i.status, "currency": i.currency,
        "total": _money(i.total), "amount_due": _money(i.amount_due),
        "issue_date": i.issue_date.isoformat() if i.issue_date else None,
        "due_date": i.due_date.isoformat() if i.due_date else None,
        "disputed": i.disputed,
        "next_action_at": i.next_action_at.isoformat() if i.next_action_at else None,
    } for i in rows]})


@blueprint.get("/actions")
def actions() -> Response | tuple[Response, int]:
    query = _listing(Action, ACTION_STATUSES)
    if isinstance(query, tuple):
        return query
    rows = db.session.scalars(query.order_by(Action.scheduled_for.desc(), Action.id.desc()))
    return jsonify({"actions": [{
        "id": a.id, "key": a.key, "kind": a.kind, "status": a.status,
        "invoice_id": a.invoice_id, "contact_id": a.contact_id,
        "scheduled_for": a.scheduled_for.isoformat(),
        "finished_at": a.finished_at.isoformat() if a.finished_at else None,
        "amount": _money(a.amount), "currency": a.currency, "reason": a.reason,
        "channel": a.channel,
    } for a in rows]})


def spec() -> dict[str, Any]:
    return json.loads(OPENAPI.read_text(encoding="utf-8"))
