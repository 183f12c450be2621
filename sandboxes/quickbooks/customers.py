"""Customers: names, the " (deleted)" of inactive ones, e-mail, addresses and phones."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from sandboxes.quickbooks.bodies import (
    _active_name,
    _bool,
    _check_currency,
    _email,
    _take_parts,
    _text,
    _unique_name,
)
from sandboxes.quickbooks.books import Company
from sandboxes.quickbooks.errors import bad_value, business, required, too_long
from sandboxes.quickbooks.schema import EMAIL

if TYPE_CHECKING:
    from sandboxes.quickbooks.sandbox import QuickBooksSandbox

NAME_PARTS = ("Title", "GivenName", "MiddleName", "FamilyName", "Suffix")


def build_customer(box: QuickBooksSandbox, company: Company, body: dict[str, Any],
                   current: dict[str, Any] | None, sparse: bool) -> dict[str, Any]:
    record: dict[str, Any] = copy.deepcopy(current) if current else {
        "Active": True, "Taxable": False, "Job": False, "BillWithParent": False,
        "IsProject": False, "PreferredDeliveryMethod": "Print"}
    for name in (*NAME_PARTS, "CompanyName", "Notes", "PrintOnCheckName", "AcctNum"):
        if name in body or (not sparse and current is not None):
            text = _text(body.get(name), name)
            if text and text.strip():
                limit = 4000 if name == "Notes" else 100
                if len(text) > limit:
                    raise too_long(name, limit, len(text))
                record[name] = text.strip()
            else:
                record.pop(name, None)
    display = _text(body.get("DisplayName"), "DisplayName")
    display = display.strip() if display else ""
    if not display and current is not None:
        display = current["DisplayName"]
    if not display:
        display = " ".join(record[p] for p in NAME_PARTS if record.get(p)) or \
            record.get("CompanyName", "")
    if not display:
        raise required("DisplayName")
    if len(display) > 500:
        raise too_long("DisplayName", 500, len(display))
    base, display = _active_name(record, body, display)
    _unique_name(company, "Customer", "DisplayName", display, record,
                 "customer, vendor or employee")
    record["DisplayName"] = record["FullyQualifiedName"] = display
    record.setdefault("PrintOnCheckName", record.get("CompanyName") or base)
    if "PrimaryEmailAddr" in body or (not sparse and current is not None):
        address = _email(body.get("PrimaryEmailAddr"), "PrimaryEmailAddr")
        if address is not None and not EMAIL.match(address):
            raise business(f"The email address {address} is not valid.", "PrimaryEmailAddr")
        if address:
            record["PrimaryEmailAddr"] = {"Address": address}
        else:
            record.pop("PrimaryEmailAddr", None)
    for name in ("Taxable", "Job", "BillWithParent"):
        flag = _bool(body.get(name), name)
        if flag is not None:
            record[name] = flag
    method = _text(body.get("PreferredDeliveryMethod"), "PreferredDeliveryMethod")
    if method:
        if method not in ("Print", "Email", "None"):
            raise bad_value("PreferredDeliveryMethod", method, "java.lang.String")
        record["PreferredDeliveryMethod"] = method
    _take_parts(record, body, ("BillAddr", "ShipAddr", "PrimaryPhone", "Mobile"))
    _check_currency(company, body)
    record["CurrencyRef"] = company.currency_ref()
    return record
