"""What invoices, estimates and credit memos share: priced lines and the sales form itself."""

from __future__ import annotations

import copy
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sandboxes.quickbooks.bodies import (
    _amount,
    _bool,
    _check_currency,
    _date,
    _decimal,
    _email,
    _name_ref,
    _ref_id,
    _resolve,
    _take_parts,
    _text,
)
from sandboxes.quickbooks.books import Company, _money, _plain
from sandboxes.quickbooks.errors import QboFault, bad_value, business, required, too_long
from sandboxes.quickbooks.records import _applied
from sandboxes.quickbooks.schema import EMAIL, SCHEMA

if TYPE_CHECKING:
    from sandboxes.quickbooks.sandbox import QuickBooksSandbox


def _price_lines(company: Company, entity: str, given: Any, previous: list[dict[str, Any]],
                 next_line: int) -> tuple[list[dict[str, Any]], Decimal, int]:
    """Line amounts and the total (sales lines less discounts), as QBO computes them."""
    if given is None or given == [] or given == "":
        raise required("Line")
    if not isinstance(given, list):
        raise bad_value("Line", given, "java.util.ArrayList")
    known_ids = {str(line.get("Id")) for line in previous if line.get("Id")}
    used: set[str] = set()
    regular: list[dict[str, Any]] = []
    discounts: list[tuple[dict[str, Any], Decimal | None]] = []
    subtotal = Decimal(0)
    us = company.country == "US"
    for raw in given:
        if not isinstance(raw, dict):
            raise bad_value("Line", raw, f"{SCHEMA}.Line")
        kind = raw.get("DetailType")
        if kind == "SubTotalLineDetail":
            continue  # computed, so sending it back changes nothing
        if not kind:
            raise required("Line.DetailType")
        raw_id = str(raw.get("Id")) if raw.get("Id") not in (None, "") else None
        if raw_id is not None and raw_id in known_ids and raw_id not in used:
            line_id = raw_id
        else:
            line_id = str(next_line)
            next_line += 1
        used.add(line_id)
        description = _text(raw.get("Description"), "Line.Description")
        if kind == "SalesItemLineDetail":
            detail = raw.get("SalesItemLineDetail")
            if not isinstance(detail, dict):
                raise required("Line.SalesItemLineDetail")
            item_ref = detail.get("ItemRef")
            if _ref_id(item_ref, "Line.SalesItemLineDetail.ItemRef") is None:
                item = next((i for i in company.records["Item"].values()
                             if i["Name"] == "Services" and i.get("Active", True)), None)
                if item is None:
                    raise required("Line.SalesItemLineDetail.ItemRef")
            else:
                item = _resolve(company, "Item", item_ref, "Line.SalesItemLineDetail.ItemRef")
                assert item is not None
            qty = _decimal(detail.get("Qty"), "Line.SalesItemLineDetail.Qty")
            price = _decimal(detail.get("UnitPrice"), "Line.SalesItemLineDetail.UnitPrice")
            amount = _decimal(raw.get("Amount"), "Line.Amount")
            if amount is None:
                if qty is None or price is None:
                    raise required("Line.Amount")
                amount = _money(qty * price)
            else:
                amount = _money(amount)
                if qty and price:
                    if _money(qty * price) != amount:
                        raise QboFault("6070", "Amount calculation incorrect in the request",
                                       "Business Validation Error: Amount is not equal to "
                                       f"UnitPrice * Qty. Supplied value:{amount}",
                                       "Line.Amount")
                elif price:
                    qty = amount / price
                elif qty:
                    price = amount / qty
                else:
                    qty, price = Decimal(1), amount
            assert qty is not None and price is not None
            tax = _ref_id(detail.get("TaxCodeRef"), "Line.SalesItemLineDetail.TaxCodeRef")
            line_detail: dict[str, Any] = {
                "ItemRef": _name_ref(item), "UnitPrice": _plain(price), "Qty": _plain(qty),
                "ItemAccountRef": dict(item.get("IncomeAccountRef") or {})}
            if tax or us:
                line_detail["TaxCodeRef"] = {"value": tax or "NON"}
            service_date = _date(detail.get("ServiceDate"),
                                 "Line.SalesItemLineDetail.ServiceDate")
            if service_date is not None:
                line_detail["ServiceDate"] = service_date.isoformat()
            line: dict[str, Any] = {"Id": line_id, "Amount": amount,
                                    "DetailType": "SalesItemLineDetail",
                                    "SalesItemLineDetail": line_detail}
            text = description if description is not None else item.get("Description")
            if text:
                line["Description"] = text
            subtotal += amount
            regular.append(line)
        elif kind in ("DescriptionOnly", "DescriptionLineDetail"):
            detail = raw.get("DescriptionLineDetail") or {}
            if not isinstance(detail, dict):
                raise bad_value("Line.DescriptionLineDetail", detail, f"{SCHEMA}.Line")
            out_detail: dict[str, Any] = {}
            service_date = _date(detail.get("ServiceDate"), "Line.DescriptionLineDetail."
                                 "ServiceDate")
            if service_date is not None:
                out_detail["ServiceDate"] = service_date.isoformat()
            line = {"Id": line_id, "DetailType": "DescriptionOnly",
                    "DescriptionLineDetail": out_detail}
            if description:
                line["Description"] = description
            regular.append(line)
        elif kind == "DiscountLineDetail":
            detail = raw.get("DiscountLineDetail") or {}
            if not isinstance(detail, dict):
                raise bad_value("Line.DiscountLineDetail", detail, f"{SCHEMA}.Line")
            percent_based = _bool(detail.get("PercentBased"),
                                  "Line.DiscountLineDetail.PercentBased") is True
            percent = _decimal(detail.get("DiscountPercent"),
                               "Line.DiscountLineDetail.DiscountPercent")
            account = next((a for a in company.records["Account"].values()
                            if a["AccountSubType"] == "DiscountsRefundsGiven"), None)
            out_detail = {"PercentBased": percent_based}
            if account is not None:
                out_detail["DiscountAccountRef"] = _name_ref(account)
            if percent_based:
                if percent is None or not 0 <= percent <= 100:
                    raise required("Line.DiscountLineDetail.DiscountPercent")
                out_detail["DiscountPercent"] = _plain(percent)
                amount_or_none: Decimal | None = None
            else:
                amount_or_none = _amount(raw.get("Amount"), "Line.Amount",
                                         "A discount can't be negative.")
            line = {"Id": line_id, "DetailType": "DiscountLineDetail",
                    "DiscountLineDetail": out_detail}
            if description:
                line["Description"] = description
            discounts.append((line, amount_or_none))
        else:
            raise bad_value("Line.DetailType", kind, f"{SCHEMA}.LineDetailTypeEnum")
    if not regular:
        raise required("Line")
    total = subtotal
    for line, fixed in discounts:
        if fixed is None:
            fixed = _money(subtotal * line["DiscountLineDetail"]["DiscountPercent"] / 100)
        line["Amount"] = fixed
        total -= fixed
    lines = regular + [line for line, _ in discounts]
    for number, line in enumerate(lines, start=1):
        line["LineNum"] = number
    if entity == "CreditMemo" and total < 0:
        raise business("A credit memo's total can't be negative.", "Line")
    if total < 0:
        raise business("The transaction total can't be negative.", "Line")
    return lines, _money(total), next_line


def build_sales(box: QuickBooksSandbox, company: Company, entity: str, body: dict[str, Any],
                current: dict[str, Any] | None, sparse: bool) -> dict[str, Any]:
    """An Invoice or CreditMemo: validated and priced, returned as a record to store."""
    if current is not None and current.get("_voided"):
        raise business("A voided transaction can't be changed.")
    record: dict[str, Any] = copy.deepcopy(current) if current else {
        "TxnTaxDetail": {"TotalTax": Decimal("0.00")}, "ApplyTaxAfterDiscount": False,
        "PrintStatus": "NotSet", "EmailStatus": "NotSet", "CustomField": [],
        "_applied": {}, "_next_line": 1}
    if entity == "Invoice" and current is None:
        record.update({"AllowIPNPayment": False, "AllowOnlinePayment": False,
                       "AllowOnlineCreditCardPayment": False, "AllowOnlineACHPayment": False,
                       "Deposit": Decimal("0.00")})

    def given(name: str) -> bool:
        return name in body or not sparse

    _check_currency(company, body)
    record["CurrencyRef"] = company.currency_ref()
    customer_changed = False
    if given("CustomerRef"):
        customer = _resolve(company, "Customer", body.get("CustomerRef"), "CustomerRef")
        assert customer is not None
        if current is not None and record["_applied"] and \
                customer["Id"] != current["CustomerRef"]["value"]:
            raise business("The customer can't change while payments are applied.",
                           "CustomerRef")
        customer_changed = current is None or customer["Id"] != \
            current["CustomerRef"]["value"]
        record["CustomerRef"] = {"value": customer["Id"], "name": customer["DisplayName"]}
    customer = company.records["Customer"][record["CustomerRef"]["value"]]
    if given("Line"):
        lines, total, next_line = _price_lines(company, entity, body.get("Line"),
                                               record.get("Line", []), record["_next_line"])
        if total < _applied(record):
            raise business(f"The new total {total} is less than the {_applied(record)} "
                           "already applied to this transaction.", "Line")
        record.update({"Line": lines, "TotalAmt": total, "_next_line": next_line})
    today = company.today()
    txn_date = _date(body.get("TxnDate"), "TxnDate")
    if txn_date is not None:
        record["TxnDate"] = txn_date.isoformat()
    record.setdefault("TxnDate", today.isoformat())
    if entity == "Invoice":
        due = _date(body.get("DueDate"), "DueDate")
        if due is not None:
            record["DueDate"] = due.isoformat()
        record.setdefault("DueDate", (date.fromisoformat(record["TxnDate"])
                                      + timedelta(days=30)).isoformat())
    number = _text(body.get("DocNumber"), "DocNumber")
    if number is not None and number.strip():
        number = number.strip()
        if len(number) > 21:
            raise QboFault("6000", "A business validation error has occurred while processing "
                           "your request", "Business Validation Error: String length is "
                           "either shorter or longer than supported by specification. Min:0 "
                           f"Max:21 supported. Supplied length:{len(number)}", "DocNumber")
        if any(r.get("DocNumber") == number and r["Id"] != record.get("Id")
               for r in company.records[entity].values()):
            raise QboFault("6140", "Duplicate Document Number Error",
                           "Duplicate Document Number Error : You must specify a different "
                           f"number. This number has already been used. DocNumber={number} is "
                           "assigned to TxnType=" + entity + " with TxnId=" + next(
                               r["Id"] for r in company.records[entity].values()
                               if r.get("DocNumber") == number), "DocNumber")
        record["DocNumber"] = number
    elif "DocNumber" not in record:
        numbers = [int(r["DocNumber"]) for e in ("Invoice", "CreditMemo")
                   for r in company.records[e].values()
                   if str(r.get("DocNumber", "")).isdigit()]
        record["DocNumber"] = str(max(numbers, default=1000) + 1)
    for name in ("PrivateNote", "CustomerMemo", "BillEmail"):
        if name in body:
            if name == "PrivateNote":
                text = _text(body[name], name)
                if text and len(text) > 4000:
                    raise too_long(name, 4000, len(text))
                value: Any = text or None
            elif name == "CustomerMemo":
                memo = body[name]
                if memo is not None and not isinstance(memo, dict):
                    raise bad_value(name, memo, f"{SCHEMA}.MemoRef")
                text = _text((memo or {}).get("value"), "CustomerMemo.value")
                if text and len(text) > 1000:
                    raise too_long(name, 1000, len(text))
                value = {"value": text} if text else None
            else:
                address = _email(body[name], name)
                if address is not None and not EMAIL.match(address):
                    raise business(f"The email address {address} is not valid.", name)
                value = {"Address": address} if address else None
            if value is None:
                record.pop(name, None)
            else:
                record[name] = value
        elif not sparse and current is not None:
            record.pop(name, None)  # a full update clears what it leaves out (UNVERIFIED)
    if current is None or customer_changed:
        if "BillEmail" not in body and customer.get("PrimaryEmailAddr"):
            record["BillEmail"] = dict(customer["PrimaryEmailAddr"])
        for name in ("BillAddr", "ShipAddr"):  # the customer's, unless the form names its own
            if name not in body and customer.get(name):
                record[name] = copy.deepcopy(customer[name])
    # A form (invoice, estimate, credit memo) keeps the addresses it was given: a copy of its
    # own, which a later change of the customer's does not touch (Finance.xsd gives
    # SalesTransaction its own BillAddr and ShipAddr).
    _take_parts(record, body, ("BillAddr", "ShipAddr"))
    if "EmailStatus" in body and body["EmailStatus"] not in (None, ""):
        status = body["EmailStatus"]
        if status not in ("NotSet", "NeedToSend", "EmailSent"):
            raise bad_value("EmailStatus", status, f"{SCHEMA}.EmailStatusEnum")
        record["EmailStatus"] = status
    if "PrintStatus" in body and body["PrintStatus"] not in (None, ""):
        status = body["PrintStatus"]
        if status not in ("NotSet", "NeedToPrint", "PrintComplete"):
            raise bad_value("PrintStatus", status, f"{SCHEMA}.PrintStatusEnum")
        record["PrintStatus"] = status
    return record
