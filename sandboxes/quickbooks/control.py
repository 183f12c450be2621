"""Ours, not Intuit's: control and introspection for tests and the demo (`/_sandbox/...`, no
authentication), and the sandbox's front page."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from html import escape
from typing import Any

from flask import Blueprint, Response, request

from sandboxes.quickbooks.books import Company
from sandboxes.quickbooks.config import CACHE_CONTROL
from sandboxes.quickbooks.context import current
from sandboxes.quickbooks.errors import QboFault, Refused
from sandboxes.quickbooks.sandbox import QuickBooksSandbox
from sandboxes.wire import html_response
from sandboxes.wire import json_response as _json

bp = Blueprint("quickbooks_control", __name__)


def known(realm_id: str) -> Company:
    box = current()
    found = box.companies_by_id.get(realm_id)
    if found is None:
        raise Refused(_json({"error": f"no company {realm_id}"}, 404))
    return found


def refused(error: Refused) -> Response:
    """A Refused raised anywhere answers its own response (the app's error handler)."""
    return error.response


@bp.get("/_sandbox/companies")
def sb_companies() -> Response:
    box = current()
    return _json(box.companies())


# /_sandbox/<realm>/<listing>: what lists it.
LISTINGS: dict[str, Callable[[QuickBooksSandbox, str], list[dict[str, Any]]]] = {
    "invoices": QuickBooksSandbox.invoices, "customers": QuickBooksSandbox.customers,
    "payments": QuickBooksSandbox.payments, "items": QuickBooksSandbox.items,
    "accounts": QuickBooksSandbox.accounts, "creditmemos": QuickBooksSandbox.credit_memos,
    "emails": QuickBooksSandbox.emails, "requests": QuickBooksSandbox.requests}


@bp.get("/_sandbox/<realm_id>/<listing>")
def sb_listing(realm_id: str, listing: str) -> Response:
    known(realm_id)
    if listing not in LISTINGS:
        return _json({"error": f"no listing {listing}"}, 404)
    return _json(LISTINGS[listing](current(), realm_id))


@bp.get("/_sandbox/calls")
def sb_calls() -> Response:
    box = current()
    return _json({"calls": box.calls(request.args.get("realm"))})


@bp.post("/_sandbox/<realm_id>/pay")
def sb_pay(realm_id: str) -> Response:
    box = current()
    known(realm_id)
    payload = request.get_json(silent=True)
    try:
        assert isinstance(payload, dict)
        on = date.fromisoformat(payload["on"]) if payload.get("on") else None
        return _json(box.pay_invoice(realm_id, str(payload["invoice_id"]),
                                     Decimal(str(payload["amount"])), on))
    except KeyError as exc:
        return _json({"error": f"missing or unknown: {exc}"}, 404 if "no invoice" in
                     str(exc) else 400)
    except (AssertionError, TypeError, ArithmeticError, ValueError) as exc:
        return _json({"error": str(exc) or 'send {"invoice_id": "130", "amount": '
                                           '"12.50"}'}, 400)


@bp.post("/_sandbox/<realm_id>/invoices/<invoice_id>")
def sb_update_invoice(realm_id: str, invoice_id: str) -> Response:
    box = current()
    known(realm_id)
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        return _json({"error": "send the fields to change as a JSON object"}, 400)
    with box.lock:
        try:
            return _json(box.update_invoice(realm_id, invoice_id, **payload))
        except QboFault as fault:
            return _json({"Fault": fault.body()}, fault.status)


@bp.post("/_sandbox/<realm_id>/revoke")
def sb_revoke(realm_id: str) -> Response:
    box = current()
    known(realm_id)
    box.revoke_all(realm_id)
    return Response(status=204)


@bp.post("/_sandbox/expire-tokens")
def sb_expire() -> Response:
    box = current()
    box.expire_access_tokens()
    return Response(status=204)


@bp.post("/_sandbox/reset")
def sb_reset() -> Response:
    box = current()
    payload = request.get_json(silent=True) or {}
    try:
        today = date.fromisoformat(payload["today"]) if isinstance(payload, dict) and \
            payload.get("today") else None
    except (TypeError, ValueError):
        return _json({"error": "today must be YYYY-MM-DD"}, 400)
    box.reset(today)
    return _json(box.companies())


@bp.get("/")
def index() -> Response:
    box = current()
    with box.lock:
        rows = "".join(
            f"<tr><td>{escape(c.name)}</td><td><code>{escape(c.realm_id)}</code></td>"
            f"<td>{escape(c.country)}</td><td>{len(c.records['Customer'])}</td>"
            f"<td>{len(c.records['Invoice'])}</td><td>{len(c.records['Payment'])}</td>"
            f"<td>{len(c.emails)}</td><td>{box.call_count.get(c.realm_id, 0)}</td></tr>"
            for c in box.companies_by_id.values())
        connected = sum(1 for c in box.consents.values() if not c.revoked)
    return html_response("<!doctype html><html lang='en'><meta charset='utf-8'>"
                         "<title>QuickBooks sandbox</title><h1>QuickBooks Online sandbox</h1>"
                         f"<p>{connected} connection(s).</p><table><tr><th>Company</th>"
                         "<th>Realm ID</th><th>Country</th><th>Customers</th><th>Invoices</th>"
                         "<th>Payments</th><th>Emails sent</th><th>API calls</th></tr>"
                         f"{rows}</table></html>", 200, CACHE_CONTROL)
