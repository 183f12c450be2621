"""Payments: what they apply to invoices and credit memos, and moving those amounts when a
payment is made, changed, voided or deleted."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sandboxes.quickbooks.bodies import (
    _amount,
    _check_currency,
    _date,
    _decimal,
    _name_ref,
    _resolve,
    _set_texts,
    _text,
)
from sandboxes.quickbooks.books import Company, _money
from sandboxes.quickbooks.errors import bad_value, business, invalid_reference, required
from sandboxes.quickbooks.records import _applied
from sandboxes.quickbooks.schema import SCHEMA

if TYPE_CHECKING:
    from sandboxes.quickbooks.sandbox import QuickBooksSandbox


def build_payment(box: QuickBooksSandbox, company: Company, body: dict[str, Any],
                  current: dict[str, Any] | None, sparse: bool) -> dict[str, Any]:
    if current is not None and current.get("_voided"):
        raise business("A voided transaction can't be changed.")
    record: dict[str, Any] = copy.deepcopy(current) if current else {
        "ProcessPayment": False, "LinkedTxn": [], "_applied": {}}

    def given(name: str) -> bool:
        return name in body or not sparse

    _check_currency(company, body)
    record["CurrencyRef"] = company.currency_ref()
    if given("CustomerRef"):
        customer = _resolve(company, "Customer", body.get("CustomerRef"), "CustomerRef")
        assert customer is not None
        record["CustomerRef"] = {"value": customer["Id"], "name": customer["DisplayName"]}
    customer_id = record["CustomerRef"]["value"]
    if given("TotalAmt"):
        total = _decimal(body.get("TotalAmt"), "TotalAmt")
        if total is None:
            raise required("TotalAmt")
        if total < 0:
            raise business("A payment's TotalAmt can't be negative.", "TotalAmt")
        record["TotalAmt"] = _money(total)
    before: dict[tuple[str, str], Decimal] = record["_applied"]
    if given("Line"):
        lines = body.get("Line") or []
        if not isinstance(lines, list):
            raise bad_value("Line", lines, "java.util.ArrayList")
        applied: dict[tuple[str, str], Decimal] = {}
        out_lines: list[dict[str, Any]] = []
        for raw in lines:
            if not isinstance(raw, dict):
                raise bad_value("Line", raw, f"{SCHEMA}.Line")
            amount = _amount(raw.get("Amount"), "Line.Amount",
                             "A payment line's Amount can't be negative.")
            linked = raw.get("LinkedTxn")
            if not isinstance(linked, list) or not linked or not isinstance(linked[0], dict):
                raise required("Line.LinkedTxn")
            kind = linked[0].get("TxnType")
            if kind not in ("Invoice", "CreditMemo"):
                raise bad_value("Line.LinkedTxn.TxnType", kind, "java.lang.String")
            target_id = _text(linked[0].get("TxnId"), "Line.LinkedTxn.TxnId")
            target = company.records[kind].get((target_id or "").strip())
            if target is None:
                raise invalid_reference("Line.LinkedTxn.TxnId", "Line.LinkedTxn.TxnId")
            if target["CustomerRef"]["value"] != customer_id:
                raise business(f"{kind} {target.get('DocNumber', target['Id'])} belongs to "
                               "another customer.", "Line.LinkedTxn")
            key = (kind, target["Id"])
            applied[key] = applied.get(key, Decimal(0)) + amount
            out_lines.append({"Amount": amount, "LinkedTxn": [{"TxnId": target["Id"],
                                                                "TxnType": kind}]})
        for (kind, target_id), amount in applied.items():
            target = company.records[kind][target_id]
            if target.get("_voided") and amount:
                raise business(f"{kind} {target.get('DocNumber')} is voided.", "Line.LinkedTxn")
            open_amount = target["TotalAmt"] - _applied(target) + before.get(
                (kind, target_id), Decimal(0))
            if amount > open_amount:
                raise business(f"The amount applied to {kind} {target.get('DocNumber')} "
                               f"({amount}) is more than its open balance ({open_amount}).",
                               "Line.Amount")
        record["Line"] = out_lines
        record["_applied"] = applied
    invoices = sum((a for (k, _), a in record["_applied"].items() if k == "Invoice"),
                   Decimal(0))
    credits = sum((a for (k, _), a in record["_applied"].items() if k == "CreditMemo"),
                  Decimal(0))
    if credits > invoices:
        raise business("The credits applied are more than the invoices they pay.", "Line")
    if "TotalAmt" not in record:
        raise required("TotalAmt")
    if invoices - credits > record["TotalAmt"]:
        raise business(f"The amounts applied ({invoices - credits}) are more than the "
                       f"payment's TotalAmt ({record['TotalAmt']}).", "TotalAmt")
    record["UnappliedAmt"] = _money(record["TotalAmt"] - (invoices - credits))
    txn_date = _date(body.get("TxnDate"), "TxnDate")
    if txn_date is not None:
        record["TxnDate"] = txn_date.isoformat()
    record.setdefault("TxnDate", company.today().isoformat())
    if given("DepositToAccountRef"):
        account = _resolve(company, "Account", body.get("DepositToAccountRef"),
                           "DepositToAccountRef", required_here=False)
        if account is None:
            account = next((a for a in company.records["Account"].values()
                            if a["AccountSubType"] == "UndepositedFunds"), None)
        if account is not None:
            record["DepositToAccountRef"] = _name_ref(account)
    _set_texts(record, body, (("PaymentRefNum", 21), ("PrivateNote", 4000)),
               even_absent=not sparse and current is not None)
    return record


def apply_payment(box: QuickBooksSandbox, company: Company, payment_id: str,
                   before: dict[tuple[str, str], Decimal],
                   after: dict[tuple[str, str], Decimal]) -> None:
    """Moves each linked invoice's or credit memo's applied amount; what changed is
    bumped (SyncToken, LastUpdatedTime)."""
    for key in dict.fromkeys([*before, *after]):
        old, new = before.get(key, Decimal(0)), after.get(key, Decimal(0))
        if old == new:
            continue
        target = company.records[key[0]].get(key[1])
        if target is None:
            continue
        if new:
            target["_applied"][payment_id] = new
        else:
            target["_applied"].pop(payment_id, None)
        box.touch(target)
