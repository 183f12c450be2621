"""What invoices and credit notes share: priced lines, currencies, dates, status moves, and
the all-or-nothing save of a batch of them."""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from flask import Response, request

from sandboxes.wire import json_response as _json
from sandboxes.xero.api import envelope
from sandboxes.xero.books import PER_GBP, ZERO_TAX_TYPES, Tenant
from sandboxes.xero.contacts import NESTED_CONTACT_DEFAULTS, contact_for
from sandboxes.xero.errors import ApiError, Rejected, validation_errors
from sandboxes.xero.formats import CENT, FOUR_DP, UUID_TEXT, ZERO_UUID, parse_day, to_decimal

if TYPE_CHECKING:
    from sandboxes.xero.sandbox import XeroSandbox

STATUS_MOVES = {"DRAFT": {"DRAFT", "SUBMITTED", "AUTHORISED", "DELETED"},
                "SUBMITTED": {"SUBMITTED", "DRAFT", "AUTHORISED", "DELETED"},
                "AUTHORISED": {"AUTHORISED", "VOIDED"}}
ALLOCATED = ("This document cannot be edited as it has a payment or credit note allocated to "
             "it.")


def price_lines(tenant: Tenant, lines: Any, amount_types: str, status: str,
                problems: list[str], documents: str = "Invoices"
                ) -> tuple[list[dict[str, Any]], Decimal, Decimal]:
    """Line amounts, tax (rounded half up per line) and the subtotal, as Xero computes them."""
    if lines is None:
        lines = []
    if not isinstance(lines, list):
        problems.append("LineItems must be a list")
        return [], Decimal(0), Decimal(0)
    if not lines and status != "DRAFT":
        problems.append(f"{documents} must have at least one line item")
    rate = tenant.tax_rate
    out: list[dict[str, Any]] = []
    subtotal = tax = Decimal(0)
    for number, line in enumerate(lines, start=1):
        if not isinstance(line, dict):
            problems.append(f"Line item {number} is not an object")
            continue
        try:
            quantity = to_decimal(line.get("Quantity", 1)).quantize(FOUR_DP, ROUND_HALF_UP)
            unit_raw, amount_raw = line.get("UnitAmount"), line.get("LineAmount")
            discount = to_decimal(line.get("DiscountRate") or 0)
            if unit_raw is None and amount_raw is not None:
                unit = (to_decimal(amount_raw) / quantity) if quantity else Decimal(0)
            else:
                unit = to_decimal(unit_raw if unit_raw is not None else 0)
        except (InvalidOperation, ArithmeticError):
            problems.append(f"Line item {number}: Quantity, UnitAmount, LineAmount and "
                            "DiscountRate must be numbers")
            continue
        unit = unit.quantize(FOUR_DP, ROUND_HALF_UP)
        description = str(line.get("Description") or "")
        if len(description) > 4000:
            problems.append("Description must not exceed 4000 characters")
        if unit_raw is None and amount_raw is None and not description:
            problems.append("Description cannot be empty")
        amount = (quantity * unit * (1 - discount / 100)).quantize(CENT, ROUND_HALF_UP)
        account = str(line.get("AccountCode") or "")
        if not account and amount and status != "DRAFT":
            problems.append("Account code must be specified")
        tax_type = str(line.get("TaxType") or ("NONE" if amount_types == "NoTax"
                                               else tenant.sales_tax_type))
        if amount_types == "NoTax" or tax_type in ZERO_TAX_TYPES:
            line_tax = Decimal(0)
        elif amount_types == "Inclusive":
            line_tax = (amount * rate / (1 + rate)).quantize(CENT, ROUND_HALF_UP)
        else:
            line_tax = (amount * rate).quantize(CENT, ROUND_HALF_UP)
        priced: dict[str, Any] = {
            "LineItemID": str(line.get("LineItemID") or uuid.uuid4()),
            "Description": description, "Quantity": quantity, "UnitAmount": unit,
            "AccountCode": account, "TaxType": tax_type, "TaxAmount": line_tax,
            "LineAmount": amount, "Tracking": []}
        if line.get("ItemCode"):
            priced["ItemCode"] = str(line["ItemCode"])
        if discount:
            priced["DiscountRate"] = discount
        out.append(priced)
        subtotal += amount - line_tax if amount_types == "Inclusive" else amount
        tax += line_tax
    return out, subtotal, tax


def check_currency(tenant: Tenant, currency: str, problems: list[str]) -> None:
    if currency != tenant.base_currency and currency not in PER_GBP:
        problems.append(f"Organisation is not subscribed to currency {currency}")


def parse_or_note(value: Any, name: str, default: date, problems: list[str]) -> date:
    if value in (None, ""):
        return default
    try:
        return parse_day(value, name)
    except ApiError:
        problems.append(f"{name} '{value}' is not a valid date")
        return default


def number_of(given: Any, sales: bool, numbers: set[str], label: str, prefix: str,
              problems: list[str]) -> str:
    """A new document's number: a sales one's is unique, the next `<prefix>-NNNN` when none is
    given; a purchase one's is the supplier's, as given."""
    number = str(given or "")
    if sales:
        if number in numbers:
            problems.append(f"{label} # must be unique.")
        number = number or next_number(numbers, prefix)
    return number


def next_number(numbers: set[str], prefix: str) -> str:
    taken = [int(m.group(1)) for n in numbers if (m := re.fullmatch(rf"{prefix}-(\d+)", n))]
    return f"{prefix}-{max(taken, default=0) + 1:04d}"


def amount_types_of(item: dict[str, Any], default: str, problems: list[str]) -> str:
    amount_types = str(item.get("LineAmountTypes") or default)
    if amount_types not in ("Exclusive", "Inclusive", "NoTax"):
        problems.append("LineAmountTypes must be Exclusive, Inclusive or NoTax")
    return amount_types


def reference_of(item: dict[str, Any], problems: list[str]) -> str:
    reference = str(item.get("Reference") or "")
    if len(reference) > 255:
        problems.append("Reference must not exceed 255 characters")
    return reference


def change_currency(tenant: Tenant, item: dict[str, Any], out: dict[str, Any],
                    problems: list[str]) -> None:
    """An update's CurrencyCode, with the tenant's rate for it."""
    if "CurrencyCode" in item:
        check_currency(tenant, str(item["CurrencyCode"]), problems)
        out["CurrencyCode"] = str(item["CurrencyCode"])
        if out["CurrencyCode"] in PER_GBP:
            out["CurrencyRate"] = tenant.currency_rate(out["CurrencyCode"])


def change_contact(tenant: Tenant, given: Any, invoice_type: str, now: datetime,
                   out: dict[str, Any], problems: list[str]) -> None:
    """An update's Contact: found, or made when the name is new (stored with the document)."""
    contact = contact_for(tenant, given, invoice_type, now, problems)
    if contact is not None:
        out["Contact"] = {"ContactID": contact["ContactID"], "Name": contact["Name"],
                          **copy.deepcopy(NESTED_CONTACT_DEFAULTS)}
        out["_contact"] = contact


def rendered_lines(lines: list[dict[str, Any]], unit_dp: int) -> list[dict[str, Any]]:
    """Line items with UnitAmount to 2 places, or 4 when `unitdp=4` asked for them."""
    step = FOUR_DP if unit_dp == 4 else CENT
    return [{**line, "UnitAmount": line["UnitAmount"].quantize(step, ROUND_HALF_UP)}
            for line in lines]


def echo(item: Any, id_key: str, target: str | None = None) -> dict[str, Any]:
    """A refused element as Xero lists it in `Elements`: what was sent, with a valid ID."""
    if not isinstance(item, dict):
        return {}
    echoed = {k: v for k, v in item.items() if isinstance(k, str) and not k.startswith("_")}
    given = str(target or item.get(id_key) or "")
    echoed[id_key] = given if UUID_TEXT.match(given) else ZERO_UUID
    return echoed


@dataclass(frozen=True)
class Document:
    """A kind of document saved in batches: its envelope key, its name in messages, its ID
    field, where a tenant keeps it and how it is written back."""

    key: str
    what: str
    id_key: str
    books: Callable[[Tenant], dict[str, dict[str, Any]]]
    render: Callable[[dict[str, Any], Tenant], dict[str, Any]]


def save_documents(box: XeroSandbox, tenant: Tenant, kind: Document, items: list[Any],
                   target_of: Callable[[dict[str, Any]], Any],
                   change: Callable[[str, dict[str, Any]], dict[str, Any]],
                   create: Callable[[dict[str, Any]], dict[str, Any]]) -> Response:
    """PUT or POST of invoices or credit notes: an element naming one that exists (`target_of`)
    changes it (POST only), any other is new; every element is checked before anything is
    stored. With summarizeErrors (the default) one refused element refuses them all; without
    it each is saved or refused on its own."""
    summarize = request.args.get("summarizeErrors", "true").lower() != "false"
    staged: list[dict[str, Any] | None] = []
    refused: dict[int, list[str]] = {}
    targets: dict[int, str] = {}
    for index, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise Rejected([f"Each {kind.what} must be an object"])
            target = target_of(item)
            if target:
                targets[index] = str(target)
                if request.method == "PUT":
                    raise Rejected([f"Use POST to update an existing {kind.what}"])
                staged.append(change(str(target), item))
            else:
                staged.append(create(item))
        except Rejected as why:
            staged.append(None)
            refused[index] = why.messages
    if refused and summarize:
        # All or nothing: one refused element and none is saved.
        raise validation_errors([
            {**echo(items[i], kind.id_key, targets.get(i)),
             "ValidationErrors": [{"Message": m} for m in messages]}
            for i, messages in refused.items()])
    stored = kind.books(tenant)
    out: list[dict[str, Any]] = []
    for index, record in enumerate(staged):
        if record is None:
            out.append({**echo(items[index], kind.id_key, targets.get(index)),
                        "HasErrors": True, "StatusAttributeString": "ERROR",
                        "ValidationErrors": [{"Message": m} for m in refused[index]]})
            continue
        contact = record.pop("_contact", None)
        if contact is not None and contact.pop("_new", False):
            tenant.contacts[contact["ContactID"]] = contact
        if stored.get(record[kind.id_key]) != record:
            box.touch(record)
        stored[record[kind.id_key]] = record
        rendered = kind.render(record, tenant)
        if not summarize:
            rendered["StatusAttributeString"] = "OK"
        out.append(rendered)
    return _json(envelope(kind.key, out))
