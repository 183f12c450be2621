"""Credit notes and their allocations to invoices: how Xero writes them, new ones, changes,
and GET, PUT and POST /CreditNotes with /Allocations."""

from __future__ import annotations

import copy
import uuid
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, request

from sandboxes.wire import json_response as _json
from sandboxes.xero.api import API, accounting, envelope, paged, request_items, unit_dp
from sandboxes.xero.books import Tenant
from sandboxes.xero.contacts import NESTED_CONTACT_DEFAULTS, contact_for
from sandboxes.xero.context import current
from sandboxes.xero.documents import (
    ALLOCATED,
    STATUS_MOVES,
    Document,
    amount_types_of,
    change_contact,
    change_currency,
    check_currency,
    number_of,
    parse_or_note,
    price_lines,
    reference_of,
    rendered_lines,
    save_documents,
)
from sandboxes.xero.errors import ApiError, Rejected, not_found, validation_errors
from sandboxes.xero.formats import CENT, day_ms, ms_date, parse_day, to_decimal

if TYPE_CHECKING:
    from sandboxes.xero.sandbox import XeroSandbox

bp = Blueprint("xero_credit_notes", __name__)


def applied_credit(tenant: Tenant, note_id: str, allocation_id: str) -> dict[str, Any]:
    """A credit note as an invoice lists it: what it gave that invoice, and when."""
    note = tenant.credit_notes[note_id]
    allocation = next(a for a in note["_allocations"] if a["AllocationID"] == allocation_id)
    return {"CreditNoteID": note["CreditNoteID"], "CreditNoteNumber": note["CreditNoteNumber"],
            "ID": note["CreditNoteID"], "AppliedAmount": allocation["Amount"],
            "Date": day_ms(allocation["_date"]),
            "DateString": allocation["_date"].isoformat() + "T00:00:00",
            "Total": note["Total"], "LineItems": []}


def render_allocation(allocation: dict[str, Any], note: dict[str, Any],
                      tenant: Tenant) -> dict[str, Any]:
    invoice = tenant.invoices[allocation["_invoice_id"]]
    return {"AllocationID": allocation["AllocationID"], "Amount": allocation["Amount"],
            "Date": day_ms(allocation["_date"]),
            "Invoice": {"InvoiceID": invoice["InvoiceID"],
                        "InvoiceNumber": invoice["InvoiceNumber"], "Payments": [],
                        "CreditNotes": [], "Prepayments": [], "Overpayments": [],
                        "HasErrors": False, "IsDiscounted": False, "LineItems": [],
                        "ValidationErrors": []},
            "CreditNote": {"CreditNoteID": note["CreditNoteID"], "ID": note["CreditNoteID"],
                           "LineItems": []},
            "ValidationErrors": []}


def render_credit_note(note: dict[str, Any], tenant: Tenant | None = None,
                       unit_dp: int = 2) -> dict[str, Any]:
    out = {k: v for k, v in note.items() if not k.startswith("_")}
    out["ID"] = note["CreditNoteID"]
    out["Date"] = day_ms(note["_date"])
    out["DateString"] = note["_date"].isoformat() + "T00:00:00"
    out["UpdatedDateUTC"] = ms_date(note["_updated"])
    if note.get("_paid_on"):
        out["FullyPaidOnDate"] = day_ms(note["_paid_on"])
    out["LineItems"] = rendered_lines(note["LineItems"], unit_dp)
    out["Payments"] = []
    if tenant is not None:
        contact = tenant.contacts.get(note["Contact"]["ContactID"])
        if contact is not None:
            out["Contact"] = {"ContactID": contact["ContactID"], "Name": contact["Name"],
                              **copy.deepcopy(NESTED_CONTACT_DEFAULTS)}
        out["Allocations"] = [render_allocation(a, note, tenant) for a in note["_allocations"]]
    return out


CREDIT_TYPES = {"ACCRECCREDIT": "ACCREC", "ACCPAYCREDIT": "ACCPAY"}


def new_credit_note(tenant: Tenant, item: dict[str, Any], now: datetime,
                    numbers: set[str]) -> dict[str, Any]:
    problems: list[str] = []
    kind = item.get("Type")
    if kind not in CREDIT_TYPES:
        problems.append("Credit Note Type must be ACCRECCREDIT or ACCPAYCREDIT")
    status = str(item.get("Status") or "DRAFT")
    if status not in ("DRAFT", "SUBMITTED", "AUTHORISED"):
        problems.append(f"Credit Note not of valid status for creation ({status})")
    contact = contact_for(tenant, item.get("Contact"), CREDIT_TYPES.get(str(kind), "ACCREC"),
                           now, problems)
    amount_types = amount_types_of(item, "Exclusive", problems)
    lines, subtotal, tax = price_lines(tenant, item.get("LineItems"), amount_types, status,
                                       problems, "Credit notes")
    if subtotal + tax < 0:
        problems.append("The total of a credit note cannot be negative")
    currency = str(item.get("CurrencyCode") or tenant.base_currency)
    check_currency(tenant, currency, problems)
    issued = parse_or_note(item.get("Date"), "Date", now.date(), problems)
    number = number_of(item.get("CreditNoteNumber"), kind == "ACCRECCREDIT", numbers,
                       "Credit Note", "CN", problems)
    reference = reference_of(item, problems)
    if problems or contact is None:
        raise Rejected(problems)
    numbers.add(number)
    return {
        "Type": kind, "CreditNoteID": str(uuid.uuid4()), "CreditNoteNumber": number,
        "Reference": reference,
        "Contact": {"ContactID": contact["ContactID"], "Name": contact["Name"]},
        "LineItems": lines, "LineAmountTypes": amount_types, "CurrencyCode": currency,
        "CurrencyRate": tenant.currency_rate(currency), "Status": status,
        "SubTotal": subtotal, "TotalTax": tax, "Total": subtotal + tax,
        "RemainingCredit": subtotal + tax, "SentToContact": False, "HasAttachments": False,
        "HasErrors": False, "_date": issued, "_allocations": [], "_by_app": True,
        "_contact": contact, "_updated": now,
    }


def changed_credit_note(tenant: Tenant, record: dict[str, Any], item: dict[str, Any],
                        now: datetime) -> dict[str, Any]:
    """A copy of `record` with the update applied; nothing is stored until all items pass."""
    problems: list[str] = []
    allocated = bool(record["_allocations"])
    if record["Status"] in ("VOIDED", "DELETED"):
        raise Rejected([f"Credit Note not of valid status for modification "
                        f"({record['Status']})"])
    if record["Status"] == "PAID":
        raise Rejected([ALLOCATED])
    out = copy.deepcopy(record)
    status = str(item.get("Status") or record["Status"])
    if status not in STATUS_MOVES.get(record["Status"], set()):
        problems.append(f"Credit Note not of valid status for modification ({record['Status']} "
                        f"to {status})")
    if status == "VOIDED" and allocated:
        problems.append("This credit note has been allocated. It cannot be voided.")
    touches_amounts = any(k in item for k in ("LineItems", "LineAmountTypes", "CurrencyCode"))
    if (touches_amounts or "Contact" in item) and allocated:
        problems.append(ALLOCATED)
    amount_types = amount_types_of(item, record["LineAmountTypes"], problems)
    change_currency(tenant, item, out, problems)
    if (touches_amounts or status != record["Status"]) and not allocated:
        given = item["LineItems"] if "LineItems" in item else record["LineItems"]
        lines, subtotal, tax = price_lines(tenant, given, amount_types, status, problems,
                                           "Credit notes")
        if subtotal + tax < 0:
            problems.append("The total of a credit note cannot be negative")
        out.update({"LineItems": lines, "LineAmountTypes": amount_types, "SubTotal": subtotal,
                    "TotalTax": tax, "Total": subtotal + tax, "RemainingCredit": subtotal + tax})
    if "Contact" in item and not allocated:
        change_contact(tenant, item["Contact"], CREDIT_TYPES[record["Type"]], now, out,
                       problems)
    if "Reference" in item:
        out["Reference"] = str(item["Reference"] or "")
        if len(out["Reference"]) > 255:
            problems.append("Reference must not exceed 255 characters")
    out["_date"] = parse_or_note(item.get("Date"), "Date", record["_date"], problems)
    if problems:
        raise Rejected(problems)
    out["Status"] = status
    return out


def allocation_problems(tenant: Tenant, note: dict[str, Any], item: Any,
                        remaining: Decimal, due: dict[str, Decimal]) -> tuple[list[str], Any]:
    """What Xero would refuse in one allocation, given the credit left on the note and on each
    invoice after the allocations before it in the same request; and the parsed allocation."""
    if not isinstance(item, dict):
        return ["Each allocation must be an object"], None
    problems: list[str] = []
    if note["Status"] in ("DRAFT", "SUBMITTED"):
        problems.append("A credit note must be approved (AUTHORISED) before it is allocated")
    elif note["Status"] in ("VOIDED", "DELETED"):
        problems.append(f"A {note['Status'].lower()} credit note cannot be allocated")
    try:
        amount = to_decimal(item.get("Amount") if item.get("Amount") is not None
                          else item.get("AppliedAmount"))
    except (InvalidOperation, ArithmeticError):
        amount = None
        problems.append("Amount must be a number")
    if amount is not None:
        amount = amount.quantize(CENT, ROUND_HALF_UP)
        if amount <= 0:
            problems.append("Amount must be greater than zero")
    if item.get("Date") in (None, ""):
        problems.append("Date is required")
        on = None
    else:
        try:
            on = parse_day(item["Date"], "Date")
        except ApiError:
            on = None
            problems.append(f"Date '{item['Date']}' is not a valid date")
    given = item.get("Invoice")
    invoice_id = str(given.get("InvoiceID") or "").lower() if isinstance(given, dict) else ""
    invoice = tenant.invoices.get(invoice_id) if invoice_id else None
    if invoice is None:
        problems.append("Invoice could not be found" if invoice_id
                        else "An Invoice with an InvoiceID is required")
    else:
        if invoice["Type"] != CREDIT_TYPES.get(note["Type"]):
            problems.append("Credit Note cannot be allocated to an incorrect invoice type")
        open_amount = due.get(invoice["InvoiceID"], invoice["AmountDue"])
        if invoice["Status"] == "PAID" or (invoice["Status"] == "AUTHORISED"
                                           and open_amount <= 0):
            problems.append("The invoice you are trying to allocate to has already been paid "
                            "off")
        elif invoice["Status"] != "AUTHORISED":
            problems.append(f"A credit note cannot be allocated to a "
                            f"{invoice['Status'].lower()} invoice")
        elif amount is not None and amount > open_amount:
            problems.append("Credit Note cannot be allocated as amount is greater than amount "
                            "outstanding")
        if invoice["Contact"]["ContactID"] != note["Contact"]["ContactID"]:
            problems.append("The credit note and the invoice must be for the same contact")
        if invoice["CurrencyCode"] != note["CurrencyCode"]:
            problems.append("The credit note and the invoice must be in the same currency")
    if amount is not None and amount > remaining:
        problems.append(f"The amount allocated ({amount:f}) is more than the credit note's "
                        f"remaining credit ({remaining:f})")
    return problems, (amount, on, invoice)


def allocate_credit(box: XeroSandbox, tenant: Tenant, note: dict[str, Any], amount: Decimal,
                    on: date, invoice: dict[str, Any]) -> dict[str, Any]:
    allocation = {"AllocationID": str(uuid.uuid4()), "Amount": amount, "_date": on,
                  "_invoice_id": invoice["InvoiceID"]}
    note["_allocations"].append(allocation)
    note["RemainingCredit"] -= amount
    if note["RemainingCredit"] == 0:
        note["Status"] = "PAID"
        note["_paid_on"] = on
    invoice["AmountCredited"] += amount
    invoice["AmountDue"] -= amount
    invoice.setdefault("_credits", []).append((note["CreditNoteID"],
                                               allocation["AllocationID"]))
    if invoice["AmountDue"] == 0:
        invoice["Status"] = "PAID"
        invoice["_paid_on"] = on
    box.touch(note)
    box.touch(invoice)
    return allocation


def find_credit_note(t: Tenant, note_id: str) -> dict[str, Any]:
    note = t.credit_notes.get(note_id.lower())
    if note is None:
        note = next((n for n in t.credit_notes.values()
                     if n["CreditNoteNumber"] and n["CreditNoteNumber"] == note_id), None)
        if note is None:
            raise not_found()
    return note


@bp.get(f"{API}/CreditNotes")
def credit_notes() -> Response:
    def handle(t: Tenant) -> Response:
        dp = unit_dp()
        return paged("CreditNotes", list(t.credit_notes.values()),
                     lambda n: render_credit_note(n, t, dp), "CreditNote",
                     {"Reference", "CreditNoteNumber", "FullyPaidOnDate", "DueDate",
                      "BrandingThemeID", "AppliedAmount"})
    return accounting(handle)


@bp.get(f"{API}/CreditNotes/<note_id>")
def credit_note(note_id: str) -> Response:
    return accounting(lambda t: _json(envelope(
        "CreditNotes", [render_credit_note(find_credit_note(t, note_id), t, unit_dp())])))


CREDIT_NOTES = Document("CreditNotes", "credit note", "CreditNoteID", lambda t: t.credit_notes,
                        lambda record, t: render_credit_note(record, t, unit_dp()))


@bp.route(f"{API}/CreditNotes", methods=["POST", "PUT"])
@bp.post(f"{API}/CreditNotes/<note_id>")
def save_credit_notes(note_id: str | None = None) -> Response:
    box = current()

    def handle(t: Tenant) -> Response:
        items = request_items("CreditNotes", "credit notes")
        numbers = {n["CreditNoteNumber"] for n in t.credit_notes.values()
                   if n["Type"] == "ACCRECCREDIT"}
        return save_documents(
            box, t, CREDIT_NOTES, items, lambda item: note_id or item.get("CreditNoteID"),
            lambda target, item: changed_credit_note(t, find_credit_note(t, target), item,
                                                     box.now),
            lambda item: new_credit_note(t, item, box.now, numbers))
    return accounting(handle)


@bp.put(f"{API}/CreditNotes/<note_id>/Allocations")
def allocate_credit_note(note_id: str) -> Response:
    box = current()

    def handle(t: Tenant) -> Response:
        note = find_credit_note(t, note_id)
        items = request_items("Allocations", "allocations")
        summarize = request.args.get("summarizeErrors", "true").lower() != "false"
        remaining = note["RemainingCredit"]
        due: dict[str, Decimal] = {}
        staged: list[Any] = []
        refused: dict[int, list[str]] = {}
        for index, item in enumerate(items):
            problems, parsed = allocation_problems(t, note, item, remaining, due)
            if problems:
                refused[index] = problems
                staged.append(None)
                continue
            amount, _, invoice = parsed
            remaining -= amount
            due[invoice["InvoiceID"]] = due.get(invoice["InvoiceID"],
                                                invoice["AmountDue"]) - amount
            staged.append(parsed)
        if refused and summarize:
            # All or nothing: one refused allocation and none is made.
            raise validation_errors([
                {**(items[i] if isinstance(items[i], dict) else {}),
                 "CreditNoteID": note["CreditNoteID"],
                 "ValidationErrors": [{"Message": m} for m in messages]}
                for i, messages in refused.items()])
        out: list[dict[str, Any]] = []
        for index, parsed in enumerate(staged):
            if parsed is None:
                item = items[index] if isinstance(items[index], dict) else {}
                out.append({**item, "StatusAttributeString": "ERROR",
                            "ValidationErrors": [{"Message": m} for m in refused[index]]})
                continue
            allocation = allocate_credit(box, t, note, *parsed)
            rendered = render_allocation(allocation, note, t)
            if not summarize:
                rendered["StatusAttributeString"] = "OK"
            out.append(rendered)
        return _json(envelope("Allocations", out))
    return accounting(handle)
