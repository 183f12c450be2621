"""An invoice's History & Notes: GET lists notes and e-mails, PUT adds notes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Response, request

from sandboxes.wire import json_response as _json
from sandboxes.xero.api import API, accounting, envelope, request_body
from sandboxes.xero.books import Tenant
from sandboxes.xero.context import current
from sandboxes.xero.errors import validation_error
from sandboxes.xero.formats import ms_date
from sandboxes.xero.invoices import find_invoice

bp = Blueprint("xero_history", __name__)


def history_out(entry: dict[str, Any]) -> dict[str, Any]:
    moment = datetime.fromisoformat(entry["DateUTC"])
    return {"Changes": entry["Changes"],
            "DateUTCString": moment.strftime("%Y-%m-%dT%H:%M:%S"),
            "DateUTC": ms_date(moment), "User": entry["User"], "Details": entry["Details"]}


@bp.route(f"{API}/Invoices/<invoice_id>/History", methods=["GET", "PUT"])
def invoice_history(invoice_id: str) -> Response:
    box = current()

    def handle(t: Tenant) -> Response:
        record = find_invoice(t, invoice_id)
        if request.method == "GET":
            # Xero's History & Notes holds each email of the invoice too ("Sent", when and
            # to whom), next to the notes, oldest first.
            sent = [{"InvoiceID": e["InvoiceID"], "DateUTC": e["SentAt"],
                     "User": "System Generated", "Changes": "Sent",
                     "Details": f"This invoice has been sent to {e['To']}."}
                    for e in t.emails if e["InvoiceID"] == record["InvoiceID"]]
            notes = [h for h in t.history if h["InvoiceID"] == record["InvoiceID"]]
            merged = sorted([*notes, *sent], key=lambda h: datetime.fromisoformat(
                h["DateUTC"]))
            return _json(envelope("HistoryRecords", [history_out(h) for h in merged]))
        try:
            body = request_body()
            records = body["HistoryRecords"] if isinstance(body, dict) and \
                "HistoryRecords" in body else [body]
            details = [str(r["Details"]) for r in records]
        except (ValueError, KeyError, TypeError) as exc:
            raise validation_error("HistoryRecords with Details are required") from exc
        if not details or any(not d.strip() for d in details):
            raise validation_error("The History Details cannot be empty")
        if any(len(d) > 2500 for d in details):
            raise validation_error("The History Details must be 2500 characters or less")
        added = []
        for text in details:
            entry = {"InvoiceID": record["InvoiceID"], "Details": text,
                     "DateUTC": box.now.isoformat(), "User": "System Generated",
                     "Changes": "Note"}
            t.history.append(entry)
            added.append(history_out(entry))
        return _json(envelope("HistoryRecords", added))
    return accounting(handle)
