"""Payments: how Xero writes them; GET /Payments."""

from __future__ import annotations

import copy
from decimal import ROUND_HALF_UP
from typing import Any

from flask import Blueprint, Response

from sandboxes.xero.api import API, accounting, paged
from sandboxes.xero.books import Tenant
from sandboxes.xero.contacts import NESTED_CONTACT_DEFAULTS
from sandboxes.xero.formats import CENT, day_ms, ms_date, to_decimal

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
