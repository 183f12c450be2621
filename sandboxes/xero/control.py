"""Ours, not Xero's: introspection and control for tests and the demo (`/_sandbox/...`), and
the sandbox's front page."""

from __future__ import annotations

from html import escape

from flask import Blueprint, Response, request

from sandboxes.wire import html_response as html
from sandboxes.wire import json_response as _json
from sandboxes.xero.books import Tenant
from sandboxes.xero.context import current
from sandboxes.xero.errors import ApiError
from sandboxes.xero.formats import to_decimal

bp = Blueprint("xero_control", __name__)


def known_tenant(tenant_id: str) -> Tenant:
    box = current()
    found = box.tenants_by_id.get(tenant_id)
    if found is None:
        raise ApiError(404, {"error": f"no tenant {tenant_id}"})
    return found


@bp.get("/_sandbox/tenants")
def sb_tenants() -> Response:
    box = current()
    return _json(box.tenants())


@bp.get("/_sandbox/tenants/<tenant_id>/history")
def sb_history(tenant_id: str) -> Response:
    box = current()
    known_tenant(tenant_id)
    return _json(box.history(tenant_id, request.args.get("invoice_id")))


@bp.get("/_sandbox/tenants/<tenant_id>/emails")
def sb_emails(tenant_id: str) -> Response:
    box = current()
    known_tenant(tenant_id)
    return _json(box.emails(tenant_id))


@bp.get("/_sandbox/calls")
def sb_calls() -> Response:
    box = current()
    return _json({"calls": box.calls(request.args.get("tenant_id"))})


@bp.post("/_sandbox/tenants/<tenant_id>/invoices/<invoice_id>/payments")
def sb_pay(tenant_id: str, invoice_id: str) -> Response:
    box = current()
    if invoice_id not in known_tenant(tenant_id).invoices:
        return _json({"error": f"no invoice {invoice_id}"}, 404)
    payload = request.get_json(silent=True)
    try:
        amount = to_decimal(payload["amount"])  # type: ignore[index]
        return _json(box.pay_invoice(tenant_id, invoice_id, amount))
    except (KeyError, TypeError, ArithmeticError):
        return _json({"error": 'send {"amount": "12.50"}'}, 400)
    except ValueError as exc:
        return _json({"error": str(exc)}, 400)


@bp.post("/_sandbox/expire-tokens")
def sb_expire() -> Response:
    box = current()
    box.expire_access_tokens()
    return Response(status=204)


@bp.get("/")
def index() -> Response:
    box = current()
    with box.lock:
        rows = "".join(
            f"<tr><td>{escape(t.name)}</td><td><code>{escape(t.tenant_id)}</code></td>"
            f"<td>{len(t.contacts)}</td><td>{len(t.invoices)}</td>"
            f"<td>{len(t.payments)}</td><td>{len(t.emails)}</td><td>{len(t.history)}</td>"
            f"<td>{box.call_count.get(t.tenant_id, 0)}</td></tr>"
            for t in box.tenants_by_id.values())
        connected = sum(len(e["connections"]) for e in box.auth_events.values())
    return html("<!doctype html><html lang='en'><meta charset='utf-8'>"
                "<title>Xero sandbox</title><h1>Xero sandbox</h1>"
                f"<p>{connected} connection(s).</p><table><tr><th>Organisation</th>"
                "<th>Tenant ID</th><th>Contacts</th><th>Invoices</th><th>Payments</th>"
                "<th>Emails sent</th><th>History notes</th><th>API calls</th></tr>"
                f"{rows}</table></html>")
