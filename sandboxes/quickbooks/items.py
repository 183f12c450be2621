"""Items (products and services): names, prices and the accounts they post to."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sandboxes.quickbooks.bodies import (
    _active_name,
    _bool,
    _date,
    _decimal,
    _list_name,
    _name_ref,
    _resolve,
    _text,
    _unique_name,
)
from sandboxes.quickbooks.books import Company, _plain
from sandboxes.quickbooks.errors import bad_value, business, required, too_long
from sandboxes.quickbooks.schema import SCHEMA

if TYPE_CHECKING:
    from sandboxes.quickbooks.sandbox import QuickBooksSandbox


def build_item(box: QuickBooksSandbox, company: Company, body: dict[str, Any],
               current: dict[str, Any] | None, sparse: bool) -> dict[str, Any]:
    record: dict[str, Any] = copy.deepcopy(current) if current else {
        "Active": True, "Taxable": False, "UnitPrice": Decimal(0), "Type": "NonInventory",
        "PurchaseCost": Decimal(0), "TrackQtyOnHand": False}
    _, name = _active_name(record, body, _list_name(body, current))
    _unique_name(company, "Item", "Name", name, record, "product or service")
    record["Name"] = record["FullyQualifiedName"] = name
    kind = _text(body.get("Type"), "Type")
    if kind:
        if kind not in ("Service", "NonInventory", "Inventory"):
            raise bad_value("Type", kind, f"{SCHEMA}.ItemTypeEnum")
        record["Type"] = kind
    for key in ("Description", "Sku", "PurchaseDesc"):
        if key in body or (not sparse and current is not None):
            text = _text(body.get(key), key)
            if text:
                if len(text) > 4000:
                    raise too_long(key, 4000, len(text))
                record[key] = text
            else:
                record.pop(key, None)
    for key in ("UnitPrice", "PurchaseCost", "QtyOnHand"):
        amount = _decimal(body.get(key), key)
        if amount is not None:
            if amount < 0 and key != "QtyOnHand":
                raise business(f"{key} can't be negative.", key)
            record[key] = _plain(amount)
    for key in ("Taxable", "TrackQtyOnHand"):
        flag = _bool(body.get(key), key)
        if flag is not None:
            record[key] = flag
    accounts = ["IncomeAccountRef"]
    if record["Type"] == "Inventory":
        accounts += ["AssetAccountRef", "ExpenseAccountRef"]
    for key in ("IncomeAccountRef", "AssetAccountRef", "ExpenseAccountRef"):
        if key in body or (key in accounts and key not in record):
            account = _resolve(company, "Account", body.get(key), key, key in accounts)
            if account is not None:
                record[key] = _name_ref(account)
    if record["Type"] == "Inventory":
        record["TrackQtyOnHand"] = True
        start = _date(body.get("InvStartDate"), "InvStartDate")
        if start is None and "InvStartDate" not in record:
            raise required("InvStartDate")
        if start is not None:
            record["InvStartDate"] = start.isoformat()
        record.setdefault("QtyOnHand", Decimal(0))
    return record
