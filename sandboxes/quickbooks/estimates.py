"""Estimates: built like an invoice, with a status and acceptance; closed once invoiced."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sandboxes.quickbooks.bodies import _date, _text
from sandboxes.quickbooks.books import Company
from sandboxes.quickbooks.errors import bad_value
from sandboxes.quickbooks.sales import build_sales
from sandboxes.quickbooks.schema import ESTIMATE_STATUSES

if TYPE_CHECKING:
    from sandboxes.quickbooks.sandbox import QuickBooksSandbox


def build_estimate(box: QuickBooksSandbox, company: Company, body: dict[str, Any],
                   current: dict[str, Any] | None, sparse: bool) -> dict[str, Any]:
    """An Estimate: priced like an invoice, with TxnStatus, ExpirationDate and acceptance."""
    record = build_sales(box, company, "Estimate", body, current, sparse)
    record.setdefault("_linked", [])
    record.setdefault("TxnStatus", "Pending")
    if "TxnStatus" in body:
        status = body["TxnStatus"]
        if status not in ESTIMATE_STATUSES:
            raise bad_value("TxnStatus", status, "java.lang.String")
        record["TxnStatus"] = status
    for name in ("ExpirationDate", "AcceptedDate"):
        if name in body:
            day = _date(body[name], name)
            if day is None:
                record.pop(name, None)
            else:
                record[name] = day.isoformat()
    if "AcceptedBy" in body:
        accepted_by = _text(body["AcceptedBy"], "AcceptedBy")
        if accepted_by:
            record["AcceptedBy"] = accepted_by
        else:
            record.pop("AcceptedBy", None)
    return record


def link_estimate(box: QuickBooksSandbox, company: Company, invoice: dict[str, Any]) -> None:
    """An invoice made from an estimate: both list each other in LinkedTxn, and the
    estimate is Closed once its invoices reach its total (progress invoicing: a deposit
    invoice leaves it open; UNVERIFIED in detail)."""
    estimate = company.find("Estimate", invoice["_estimate"])
    estimate["_linked"].append(invoice["Id"])
    invoiced = sum((company.records["Invoice"][i]["TotalAmt"] for i in estimate["_linked"]
                    if i in company.records["Invoice"]), Decimal(0))
    if invoiced >= estimate["TotalAmt"]:
        estimate["TxnStatus"] = "Closed"
    box.touch(estimate)
