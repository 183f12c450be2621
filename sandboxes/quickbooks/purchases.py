"""Purchases (expenses paid from a bank or credit card account), as a payment processor's
integration books its fees: AccountRef the account paid from, expense lines on accounts.

UNVERIFIED: the refusals' wording is ours; Intuit's reference names the fields (PaymentType,
AccountRef, Line with AccountBasedExpenseLineDetail) and that they are required."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sandboxes.quickbooks.bodies import (
    _amount,
    _check_currency,
    _date,
    _name_ref,
    _resolve,
    _set_texts,
    _text,
)
from sandboxes.quickbooks.books import Company, _money
from sandboxes.quickbooks.errors import bad_value, business, required, too_long
from sandboxes.quickbooks.schema import SCHEMA

if TYPE_CHECKING:
    from sandboxes.quickbooks.sandbox import QuickBooksSandbox

PAYMENT_TYPES = {"Cash": ("Bank",), "Check": ("Bank",), "CreditCard": ("Credit Card",)}
EXPENSE = "AccountBasedExpenseLineDetail"


def build_purchase(box: QuickBooksSandbox, company: Company, body: dict[str, Any],
                   current: dict[str, Any] | None, sparse: bool) -> dict[str, Any]:
    record: dict[str, Any] = copy.deepcopy(current) if current else {"Credit": False}
    _check_currency(company, body)
    record["CurrencyRef"] = company.currency_ref()
    kind = body.get("PaymentType", record.get("PaymentType"))
    if kind is None:
        raise required("PaymentType")
    if kind not in PAYMENT_TYPES:
        raise bad_value("PaymentType", kind, f"{SCHEMA}.PaymentTypeEnum")
    record["PaymentType"] = kind
    if "AccountRef" in body or not sparse:
        account = _resolve(company, "Account", body.get("AccountRef"), "AccountRef")
        assert account is not None
        if account["AccountType"] not in PAYMENT_TYPES[kind]:
            raise business(f"A {kind} purchase is paid from a "
                           f"{' or '.join(PAYMENT_TYPES[kind])} account.", "AccountRef")
        record["AccountRef"] = _name_ref(account)
    if "Line" in body or not sparse:
        lines = body.get("Line") or []
        if not isinstance(lines, list) or not lines:
            raise required("Line")
        out: list[dict[str, Any]] = []
        for index, raw in enumerate(lines, start=1):
            if not isinstance(raw, dict) or raw.get("DetailType") != EXPENSE:
                raise bad_value("Line.DetailType", (raw or {}).get("DetailType")
                                if isinstance(raw, dict) else raw, "java.lang.String")
            amount = _amount(raw.get("Amount"), "Line.Amount",
                             "A purchase line's Amount can't be negative.")
            detail = raw.get(EXPENSE) or {}
            account = _resolve(company, "Account", detail.get("AccountRef"),
                               f"Line.{EXPENSE}.AccountRef")
            assert account is not None
            line: dict[str, Any] = {"Id": str(index), "LineNum": index, "Amount": amount,
                                    "DetailType": EXPENSE,
                                    EXPENSE: {"AccountRef": _name_ref(account),
                                              "BillableStatus": "NotBillable",
                                              "TaxCodeRef": {"value": "NON"}}}
            description = _text(raw.get("Description"), "Line.Description")
            if description:
                if len(description) > 4000:
                    raise too_long("Line.Description", 4000, len(description))
                line["Description"] = description
            out.append(line)
        record["Line"] = out
        record["TotalAmt"] = _money(sum((line["Amount"] for line in out), Decimal(0)))
    txn_date = _date(body.get("TxnDate"), "TxnDate")
    if txn_date is not None:
        record["TxnDate"] = txn_date.isoformat()
    record.setdefault("TxnDate", company.today().isoformat())
    _set_texts(record, body, (("DocNumber", 21), ("PrivateNote", 4000)), even_absent=False)
    return record
