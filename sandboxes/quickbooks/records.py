"""A stored record as QBO writes it: computed lines and balances, links, MetaData."""

from __future__ import annotations

import copy
from datetime import datetime
from decimal import Decimal
from typing import Any

from sandboxes.quickbooks.books import Company, _money
from sandboxes.quickbooks.schema import TRANSACTIONS


def _applied(record: dict[str, Any]) -> Decimal:
    return sum(record.get("_applied", {}).values(), Decimal(0))


def render(company: Company, entity: str, record: dict[str, Any],
           link_base: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {k: copy.deepcopy(v) for k, v in record.items()
                           if not k.startswith("_") and k not in ("Id", "SyncToken")}
    if entity in TRANSACTIONS and "CustomerRef" in record:  # a Purchase has none
        customer = company.records["Customer"].get(record["CustomerRef"]["value"])
        if customer is not None:  # a renamed customer shows its new name everywhere
            out["CustomerRef"]["name"] = customer["DisplayName"]
    if entity in ("Invoice", "CreditMemo"):
        regular = [line for line in out["Line"] if line["DetailType"] != "DiscountLineDetail"]
        discounts = [line for line in out["Line"]
                     if line["DetailType"] == "DiscountLineDetail"]
        subtotal = sum((line["Amount"] for line in regular
                        if line["DetailType"] == "SalesItemLineDetail"), Decimal("0.00"))
        out["Line"] = [*regular, {"Amount": _money(subtotal), "DetailType": "SubTotalLineDetail",
                                  "SubTotalLineDetail": {}}, *discounts]
        balance = _money(record["TotalAmt"] - _applied(record))
        payments = [{"TxnId": pid, "TxnType": "Payment"} for pid in record["_applied"]]
        if entity == "Invoice":
            out["LinkedTxn"] = payments + ([{"TxnId": record["_estimate"], "TxnType": "Estimate"}]
                                           if record.get("_estimate") else [])
            out["Balance"] = balance
            if link_base is not None:
                out["InvoiceLink"] = f"{link_base}online/{company.realm_id}/{record['Id']}"
        else:
            out["LinkedTxn"] = payments
            out["RemainingCredit"] = balance
            out["Balance"] = balance
    elif entity == "Estimate":
        subtotal = sum((line["Amount"] for line in out["Line"]
                        if line["DetailType"] == "SalesItemLineDetail"), Decimal("0.00"))
        out["Line"] = [*out["Line"], {"Amount": _money(subtotal),
                                      "DetailType": "SubTotalLineDetail",
                                      "SubTotalLineDetail": {}}]
        out["LinkedTxn"] = [{"TxnId": i, "TxnType": "Invoice"} for i in record["_linked"]]
    elif entity == "Customer":
        balance = _customer_balance(company, record["Id"])
        out["Balance"] = balance
        out["BalanceWithJobs"] = balance
    out["domain"] = "QBO"
    out["sparse"] = False
    out["Id"] = record["Id"]
    out["SyncToken"] = record["SyncToken"]
    out["MetaData"] = {"CreateTime": company.stamp(record["_created"]),
                       "LastUpdatedTime": company.stamp(record["_updated"])}
    return out


def _customer_balance(company: Company, customer_id: str) -> Decimal:
    total = Decimal(0)
    for invoice in company.records["Invoice"].values():
        if invoice["CustomerRef"]["value"] == customer_id:
            total += invoice["TotalAmt"] - _applied(invoice)
    for memo in company.records["CreditMemo"].values():
        if memo["CustomerRef"]["value"] == customer_id:
            total -= memo["TotalAmt"] - _applied(memo)
    for payment in company.records["Payment"].values():
        if payment["CustomerRef"]["value"] == customer_id:
            total -= payment["UnappliedAmt"]
    return _money(total)


def deleted_stub(company: Company, record_id: str, when: datetime) -> dict[str, Any]:
    return {"domain": "QBO", "status": "Deleted", "Id": record_id,
            "MetaData": {"LastUpdatedTime": company.stamp(when)}}
