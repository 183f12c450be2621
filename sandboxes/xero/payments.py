"""Payments: how Xero writes them; GET /Payments and /Payments/{id}, PUT /Payments (a payment
applied to one sales invoice, as a payment processor's integration books one), and POST
/Payments/{id} with Status DELETED (the payment taken off its invoice, which owes again)."""

from __future__ import annotations

import copy
import uuid
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from flask import Blueprint, Response

from sandboxes.wire import json_response as _json
from sandboxes.xero.api import API, accounting, envelope, paged, request_items
from sandboxes.xero.books import Tenant
from sandboxes.xero.contacts import NESTED_CONTACT_DEFAULTS
from sandboxes.xero.context import current
from sandboxes.xero.errors import not_found, validation_error
from sandboxes.xero.formats import CENT, day_ms, ms_date, parse_day, to_decimal

bp = Blueprint("xero_payments", __name__)


BANK_ACCOUNT = {"AccountID": "7d05a53d-613d-4eb2-a2fc-dcb6adb80b80", "Code": "090"}


def render_payment(payment: dict[str, Any], tenant: Tenant) -> dict[str, Any]:
    out = {k: v for k, v in payment.items() if not k.startswith("_")}
    out["Date"] = day_ms(payment["_date"])
    out["UpdatedDateUTC"] = ms_date(payment["_updated"])
    invoice = tenant.invoices[payment["_invoice_id"]]
    out["Invoice"] = {"InvoiceID": invoice["InvoiceID"], "InvoiceNumber":
                      invoice["InvoiceNumber"], "Type": invoice["Type"],
                      "Contact": {"ContactID": invoice["Contact"]["ContactID"],
                                  "Name": invoice["Contact"]["Name"],
                                  **copy.deepcopy(NESTED_CONTACT_DEFAULTS)},
                      "CurrencyCode": invoice["CurrencyCode"], "Payments": [],
                      "CreditNotes": [], "Prepayments": [], "Overpayments": [],
                      "HasErrors": False, "IsDiscounted": False, "LineItems": []}
    out["Account"] = dict(BANK_ACCOUNT)
    # The bank account is in the base currency: what reached it, at the payment's rate.
    out["BankAmount"] = (to_decimal(payment["Amount"]) / to_decimal(payment["CurrencyRate"])) \
        .quantize(CENT, ROUND_HALF_UP)
    out["HasAccount"], out["HasValidationErrors"] = True, False
    return out


@bp.get(f"{API}/Payments")
def payments() -> Response:
    def handle(t: Tenant) -> Response:
        return paged("Payments", list(t.payments.values()),
                     lambda p: render_payment(p, t), "Payment")
    return accounting(handle)


def apply_payment(tenant: Tenant, invoice: dict[str, Any], amount: Decimal, paid_on: date,
                  reference: str) -> dict[str, Any]:
    """A payment of `amount` on the invoice: its AmountPaid and AmountDue move, and it is PAID
    when nothing is left. The caller has checked the amount and the invoice's status."""
    payment: dict[str, Any] = {
        "PaymentID": str(uuid.uuid4()), "_date": paid_on, "Amount": amount,
        "CurrencyRate": invoice["CurrencyRate"],
        "PaymentType": "ACCRECPAYMENT" if invoice["Type"] == "ACCREC" else "ACCPAYPAYMENT",
        "Status": "AUTHORISED", "Reference": reference,
        "IsReconciled": False, "_invoice_id": invoice["InvoiceID"],
    }
    tenant.payments[payment["PaymentID"]] = payment
    invoice["AmountPaid"] += amount
    invoice["AmountDue"] -= amount
    invoice["_payments"].append(payment["PaymentID"])
    if invoice["AmountDue"] == 0:
        invoice["Status"] = "PAID"
        invoice["_paid_on"] = paid_on
    return payment


@bp.put(f"{API}/Payments")
def create_payments() -> Response:
    """One payment per element, each applied to one invoice from a bank account given by
    AccountID or Code. UNVERIFIED: the wording of the refusals (an invoice that is not
    AUTHORISED, an amount above what is due) is ours; Xero's API reference names the fields and
    that a payment needs Invoice, Account, Date and Amount, not the messages' text."""
    box = current()

    def handle(t: Tenant) -> Response:
        out: list[dict[str, Any]] = []
        staged: list[tuple[dict[str, Any], Decimal, date, str]] = []
        for item in request_items("Payments", "payments"):
            if not isinstance(item, dict):
                raise validation_error("A payment must be an object")
            invoice_ref = item.get("Invoice") or {}
            invoice = t.invoices.get(str(invoice_ref.get("InvoiceID") or "").lower()) or next(
                (i for i in t.invoices.values()
                 if i.get("InvoiceNumber") and i["InvoiceNumber"] == invoice_ref.get(
                     "InvoiceNumber")), None)
            if invoice is None:
                raise validation_error("Invoice could not be found")
            account = item.get("Account") or {}
            if not (account.get("AccountID") or account.get("Code")):
                raise validation_error("Account code or ID must be specified")
            try:
                amount = to_decimal(item.get("Amount")).quantize(CENT, ROUND_HALF_UP)
            except (InvalidOperation, TypeError, ValueError) as exc:
                raise validation_error("Amount must be a number") from exc
            if amount <= 0:
                raise validation_error("Payment amount must be greater than zero")
            if invoice["Status"] != "AUTHORISED":
                raise validation_error("Invoice not of valid status for modification")
            if amount > invoice["AmountDue"]:
                raise validation_error(
                    "Payment amount exceeds the amount outstanding on this document")
            paid_on = parse_day(item["Date"], "Date") if item.get("Date") else box.now.date()
            staged.append((invoice, amount, paid_on, str(item.get("Reference") or "")[:255]))
        for invoice, amount, paid_on, reference in staged:
            payment = apply_payment(t, invoice, amount, paid_on, reference)
            box.touch(payment)
            box.touch(invoice)
            out.append(render_payment(payment, t))
        return _json(envelope("Payments", out))
    return accounting(handle)


def _payment(t: Tenant, payment_id: str) -> dict[str, Any]:
    found = t.payments.get(payment_id.lower())
    if found is None:
        raise not_found()
    return found


@bp.get(f"{API}/Payments/<payment_id>")
def payment(payment_id: str) -> Response:
    return accounting(lambda t: _json(envelope("Payments",
                                               [render_payment(_payment(t, payment_id), t)])))


@bp.post(f"{API}/Payments/<payment_id>")
def delete_payment(payment_id: str) -> Response:
    """Xero changes a payment only to delete it ({"Status": "DELETED"}): its invoice's
    AmountPaid and AmountDue move back, and a PAID invoice is AUTHORISED again. UNVERIFIED: the
    refusal's wording for another change and for a payment already deleted is ours (the API
    reference gives the body, PaymentDelete, not the messages)."""
    box = current()

    def handle(t: Tenant) -> Response:
        record = _payment(t, payment_id)
        items = request_items("Payments", "payments")
        if not isinstance(items[0], dict) or items[0].get("Status") != "DELETED":
            raise validation_error("A payment can only be deleted (Status DELETED)")
        if record["Status"] == "DELETED":
            raise validation_error("This payment has already been deleted")
        invoice = t.invoices[record["_invoice_id"]]
        amount = to_decimal(record["Amount"])
        record["Status"] = "DELETED"
        invoice["AmountPaid"] -= amount
        invoice["AmountDue"] += amount
        if invoice["Status"] == "PAID" and invoice["AmountDue"] > 0:
            invoice["Status"] = "AUTHORISED"
            invoice.pop("_paid_on", None)
        box.touch(record)
        box.touch(invoice)
        return _json(envelope("Payments", [render_payment(record, t)]))
    return accounting(handle)
