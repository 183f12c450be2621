"""Bank transactions (spend and receive money): PUT /BankTransactions, as a payment processor's
integration books its fees, and GET /BankTransactions.

UNVERIFIED: a Contact given by Name alone is kept as that name (Xero makes or finds a contact of
that name; the sandbox does not add it to /Contacts); the refusals' wording is ours."""

from __future__ import annotations

import uuid
from decimal import ROUND_HALF_UP, InvalidOperation
from typing import Any

from flask import Blueprint, Response

from sandboxes.wire import json_response as _json
from sandboxes.xero.api import API, accounting, envelope, paged, request_items
from sandboxes.xero.books import Tenant
from sandboxes.xero.context import current
from sandboxes.xero.errors import validation_error
from sandboxes.xero.formats import CENT, day_ms, ms_date, parse_day, to_decimal
from sandboxes.xero.payments import BANK_ACCOUNT

bp = Blueprint("xero_bank_transactions", __name__)
TYPES = ("SPEND", "RECEIVE")


def render_bank_transaction(record: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in record.items() if not k.startswith("_")}
    out["Date"] = day_ms(record["_date"])
    out["UpdatedDateUTC"] = ms_date(record["_updated"])
    return out


def _line(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict) or not raw.get("AccountCode"):
        raise validation_error("A line needs an AccountCode")
    try:
        quantity = to_decimal(raw.get("Quantity", 1))
        unit = to_decimal(raw.get("UnitAmount")).quantize(CENT, ROUND_HALF_UP)
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise validation_error("UnitAmount must be a number") from exc
    if unit <= 0 or quantity <= 0:
        raise validation_error("A line's amount must be greater than zero")
    amount = (unit * quantity).quantize(CENT, ROUND_HALF_UP)
    return {"LineItemID": str(uuid.uuid4()), "Description": str(raw.get("Description") or ""),
            "Quantity": quantity, "UnitAmount": unit, "AccountCode": str(raw["AccountCode"]),
            "TaxType": "NONE", "TaxAmount": 0, "LineAmount": amount}


@bp.put(f"{API}/BankTransactions")
def create_bank_transactions() -> Response:
    box = current()

    def handle(t: Tenant) -> Response:
        staged = []
        for item in request_items("BankTransactions", "bank transactions"):
            if not isinstance(item, dict) or item.get("Type") not in TYPES:
                raise validation_error("Type must be SPEND or RECEIVE")
            bank = item.get("BankAccount") or {}
            if not (bank.get("AccountID") or bank.get("Code")):
                raise validation_error("BankAccount code or ID must be specified")
            contact = item.get("Contact") or {}
            if not (contact.get("ContactID") or contact.get("Name")):
                raise validation_error("A Contact must be specified with this type of "
                                       "transaction")
            lines = [_line(raw) for raw in item.get("LineItems") or []]
            if not lines:
                raise validation_error("At least one line item is required")
            currency = str(item.get("CurrencyCode") or t.base_currency)
            total = sum((line["LineAmount"] for line in lines), to_decimal(0))
            staged.append({
                "BankTransactionID": str(uuid.uuid4()), "Type": item["Type"],
                "Contact": {"ContactID": contact.get("ContactID") or str(uuid.uuid4()),
                            "Name": contact.get("Name") or ""},
                "BankAccount": {**BANK_ACCOUNT, "Name": "Business Bank Account"},
                "Reference": str(item.get("Reference") or "")[:255],
                "LineAmountTypes": "NoTax", "LineItems": lines, "SubTotal": total,
                "TotalTax": to_decimal(0), "Total": total, "CurrencyCode": currency,
                "CurrencyRate": t.currency_rate(currency), "Status": "AUTHORISED",
                "IsReconciled": False, "HasAttachments": False,
                "_date": parse_day(item["Date"], "Date") if item.get("Date")
                else box.now.date()})
        out = []
        for record in staged:
            box.touch(record)
            t.bank_transactions[record["BankTransactionID"]] = record
            out.append(render_bank_transaction(record))
        return _json(envelope("BankTransactions", out))
    return accounting(handle)


@bp.get(f"{API}/BankTransactions")
def bank_transactions() -> Response:
    def handle(t: Tenant) -> Response:
        return paged("BankTransactions", list(t.bank_transactions.values()),
                     render_bank_transaction, "BankTransaction")
    return accounting(handle)
