"""Invoices: how Xero writes them, new ones and changes to them; GET, PUT and POST /Invoices,
the online invoice and its page, and e-mailing an invoice."""

from __future__ import annotations

import copy
import uuid
from datetime import datetime
from decimal import Decimal
from html import escape
from typing import Any

from flask import Blueprint, Response, request

from sandboxes.pdf import invoice_pdf
from sandboxes.wire import html_response as html
from sandboxes.wire import json_response as _json
from sandboxes.xero.api import (
    API,
    accounting,
    csv_arg,
    envelope,
    flag,
    paged,
    request_items,
    unit_dp,
)
from sandboxes.xero.books import Tenant
from sandboxes.xero.contacts import NESTED_CONTACT_DEFAULTS, contact_for
from sandboxes.xero.context import current
from sandboxes.xero.credit_notes import applied_credit
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
from sandboxes.xero.errors import Rejected, not_found, validation_error
from sandboxes.xero.formats import day_ms, ms_date

bp = Blueprint("xero_invoices", __name__)


def render_invoice(invoice: dict[str, Any], tenant: Tenant | None = None,
                   summary: bool = False, unit_dp: int = 2) -> dict[str, Any]:
    out = {k: v for k, v in invoice.items() if not k.startswith("_")}
    out["Date"] = day_ms(invoice["_date"])
    out["DateString"] = invoice["_date"].isoformat() + "T00:00:00"
    out["DueDate"] = day_ms(invoice["_due"])
    out["DueDateString"] = invoice["_due"].isoformat() + "T00:00:00"
    out["UpdatedDateUTC"] = ms_date(invoice["_updated"])
    if invoice.get("_paid_on"):
        out["FullyPaidOnDate"] = day_ms(invoice["_paid_on"])
    out["LineItems"] = rendered_lines(invoice["LineItems"], unit_dp)
    if tenant is not None:
        contact = tenant.contacts.get(invoice["Contact"]["ContactID"])
        if contact is not None:
            out["Contact"] = {"ContactID": contact["ContactID"], "Name": contact["Name"],
                              **({"EmailAddress": contact["EmailAddress"]}
                                 if contact.get("EmailAddress") else {}),
                              **copy.deepcopy(NESTED_CONTACT_DEFAULTS)}
        out["Payments"] = [
            {"PaymentID": p["PaymentID"], "Date": day_ms(p["_date"]), "Amount": p["Amount"],
             "CurrencyRate": p["CurrencyRate"], "HasAccount": True,
             "HasValidationErrors": False}
            for pid in invoice["_payments"] if (p := tenant.payments.get(pid))]
        out["CreditNotes"] = [applied_credit(tenant, note_id, allocation_id)
                              for note_id, allocation_id in invoice.get("_credits", ())]
        out["Prepayments"], out["Overpayments"] = [], []  # none are ever made here
    if summary:
        out.pop("LineItems", None)
    return out


def new_invoice(tenant: Tenant, item: dict[str, Any], now: datetime,
                numbers: set[str]) -> dict[str, Any]:
    problems: list[str] = []
    kind = item.get("Type")
    if kind not in ("ACCREC", "ACCPAY"):
        problems.append("Invoice Type must be ACCREC or ACCPAY")
    status = str(item.get("Status") or "DRAFT")
    if status not in ("DRAFT", "SUBMITTED", "AUTHORISED"):
        problems.append(f"Invoice not of valid status for creation ({status})")
    contact = contact_for(tenant, item.get("Contact"), str(kind), now, problems)
    amount_types = amount_types_of(item, "Exclusive", problems)
    lines, subtotal, tax = price_lines(tenant, item.get("LineItems"), amount_types, status,
                                       problems)
    currency = str(item.get("CurrencyCode") or tenant.base_currency)
    check_currency(tenant, currency, problems)
    issued = parse_or_note(item.get("Date"), "Date", now.date(), problems)
    due = parse_or_note(item.get("DueDate"), "DueDate", issued, problems)
    number = number_of(item.get("InvoiceNumber"), kind == "ACCREC", numbers, "Invoice", "INV",
                       problems)
    reference = reference_of(item, problems)
    if problems or contact is None:
        raise Rejected(problems)
    numbers.add(number)
    return {
        "Type": kind, "InvoiceID": str(uuid.uuid4()), "InvoiceNumber": number,
        "Reference": reference,
        "Contact": {"ContactID": contact["ContactID"], "Name": contact["Name"]},
        "LineItems": lines, "LineAmountTypes": amount_types, "CurrencyCode": currency,
        "CurrencyRate": tenant.currency_rate(currency), "Status": status,
        "SubTotal": subtotal, "TotalTax": tax, "Total": subtotal + tax,
        "AmountDue": subtotal + tax, "AmountPaid": Decimal(0), "AmountCredited": Decimal(0),
        "SentToContact": False, "HasAttachments": False, "IsDiscounted": False,
        "HasErrors": False, "_date": issued, "_due": due, "_payments": [], "_by_app": True,
        "_contact": contact, "_updated": now,
    }


def changed_invoice(tenant: Tenant, record: dict[str, Any], item: dict[str, Any],
                    now: datetime, numbers: set[str], lock_paid: bool) -> dict[str, Any]:
    """A copy of `record` with the update applied; nothing is stored until all items pass."""
    problems: list[str] = []
    allocated = record["AmountPaid"] > 0 or record["AmountCredited"] > 0
    editable = {k for k in item if k not in ("InvoiceID", "Type")}
    if record["Status"] == "PAID" or (allocated and lock_paid and editable):
        raise Rejected([ALLOCATED])
    if record["Status"] in ("VOIDED", "DELETED"):
        raise Rejected([f"Invoice not of valid status for modification ({record['Status']})"])
    out = copy.deepcopy(record)
    status = str(item.get("Status") or record["Status"])
    if status not in STATUS_MOVES.get(record["Status"], set()):
        problems.append(f"Invoice not of valid status for modification ({record['Status']} "
                        f"to {status})")
    if status == "VOIDED" and allocated:
        problems.append("This invoice has a payment or credit note allocated. It cannot be "
                        "voided.")
    touches_amounts = any(k in item for k in ("LineItems", "LineAmountTypes", "CurrencyCode"))
    if touches_amounts and allocated:
        problems.append(ALLOCATED)
    amount_types = amount_types_of(item, record["LineAmountTypes"], problems)
    change_currency(tenant, item, out, problems)
    if touches_amounts or status != record["Status"]:
        given = item["LineItems"] if "LineItems" in item else record["LineItems"]
        lines, subtotal, tax = price_lines(tenant, given, amount_types, status, problems)
        if not allocated:
            out.update({"LineItems": lines, "LineAmountTypes": amount_types,
                        "SubTotal": subtotal, "TotalTax": tax, "Total": subtotal + tax,
                        "AmountDue": subtotal + tax - out["AmountCredited"]})
    if "Contact" in item:
        change_contact(tenant, item["Contact"], record["Type"], now, out, problems)
    if "Reference" in item:
        out["Reference"] = str(item["Reference"] or "")
    if item.get("InvoiceNumber") and item["InvoiceNumber"] != record["InvoiceNumber"]:
        if record["Type"] == "ACCREC" and item["InvoiceNumber"] in numbers:
            problems.append("Invoice # must be unique.")
        out["InvoiceNumber"] = str(item["InvoiceNumber"])
    out["_date"] = parse_or_note(item.get("Date"), "Date", record["_date"], problems)
    out["_due"] = parse_or_note(item.get("DueDate"), "DueDate", record["_due"], problems)
    if problems:
        raise Rejected(problems)
    out["Status"] = status
    return out


@bp.get(f"{API}/Invoices")
def invoices() -> Response:
    def handle(t: Tenant) -> Response:
        records = list(t.invoices.values())
        for arg, fieldname in (("IDs", "InvoiceID"), ("InvoiceNumbers", "InvoiceNumber"),
                               ("Statuses", "Status")):
            wanted = csv_arg(arg, lower=arg == "IDs")
            if wanted:
                records = [r for r in records if r[fieldname] in wanted]
        contact_ids = csv_arg("ContactIDs", lower=True)
        if contact_ids:
            records = [r for r in records if r["Contact"]["ContactID"] in contact_ids]
        if flag("createdByMyApp"):
            records = [r for r in records if r.get("_by_app")]
        term = (request.args.get("searchTerm") or "").casefold()
        if term:
            records = [r for r in records if term in r["InvoiceNumber"].casefold()
                       or term in (r.get("Reference") or "").casefold()]
        # Line items come only with paging (or one invoice), as in Xero.
        summary = flag("summaryOnly") or "page" not in request.args
        dp = unit_dp()
        return paged("Invoices", records, lambda i: render_invoice(i, t, summary, dp),
                     "Invoice", {"LineItems", "FullyPaidOnDate", "ExpectedPaymentDate",
                                 "PlannedPaymentDate", "BrandingThemeID", "Url"})
    return accounting(handle)


def find_invoice(t: Tenant, invoice_id: str) -> dict[str, Any]:
    invoice = t.invoices.get(invoice_id.lower())
    if invoice is None:
        invoice = next((i for i in t.invoices.values() if i["InvoiceNumber"] == invoice_id),
                       None)
        if invoice is None:
            raise not_found()
    return invoice


@bp.get(f"{API}/Invoices/<invoice_id>")
def invoice(invoice_id: str) -> Response:
    if request.accept_mimetypes.best == "application/pdf":  # the invoice as Xero prints it
        return accounting(lambda t: Response(printed(t, find_invoice(t, invoice_id)),
                                             mimetype="application/pdf"))
    return accounting(lambda t: _json(envelope(
        "Invoices", [render_invoice(find_invoice(t, invoice_id), t, unit_dp=unit_dp())])))


def printed(t: Tenant, record: dict[str, Any]) -> bytes:
    return invoice_pdf([t.name, f"Invoice {record['InvoiceNumber']}",
                        f"To {record['Contact']['Name']}", f"Due {record['_due'].isoformat()}",
                        f"Amount due {record['CurrencyCode']} {record['AmountDue']}"])


INVOICES = Document("Invoices", "invoice", "InvoiceID", lambda t: t.invoices,
                    lambda record, t: render_invoice(record, t, unit_dp=unit_dp()))


@bp.route(f"{API}/Invoices", methods=["POST", "PUT"])
@bp.post(f"{API}/Invoices/<invoice_id>")
def save_invoices(invoice_id: str | None = None) -> Response:
    box = current()

    def handle(t: Tenant) -> Response:
        items = request_items("Invoices", "invoices")
        numbers = {i["InvoiceNumber"] for i in t.invoices.values() if i["Type"] == "ACCREC"}

        def target_of(item: dict[str, Any]) -> Any:
            target = invoice_id or item.get("InvoiceID")
            if not target and request.method == "POST" and item.get("InvoiceNumber") \
                    and item["InvoiceNumber"] in numbers:
                target = item["InvoiceNumber"]  # POST updates by number too
            return target

        return save_documents(
            box, t, INVOICES, items, target_of,
            lambda target, item: changed_invoice(t, find_invoice(t, target), item, box.now,
                                                 numbers, box.config.lock_paid_invoices),
            lambda item: new_invoice(t, item, box.now, numbers))
    return accounting(handle)


@bp.get(f"{API}/Invoices/<invoice_id>/OnlineInvoice")
def online_invoice(invoice_id: str) -> Response:
    cfg = current().config

    def handle(t: Tenant) -> Response:
        record = find_invoice(t, invoice_id)
        if record["Type"] != "ACCREC" or record["Status"] in ("DRAFT", "SUBMITTED",
                                                              "DELETED"):
            raise validation_error("An online invoice can only be retrieved for an "
                                   "approved sales invoice")
        base = cfg.invoice_link_base or request.host_url
        url = f"{base}online/{t.tenant_id}/{record['InvoiceID']}"
        return _json({"OnlineInvoices": [{"OnlineInvoiceUrl": url}]})
    return accounting(handle)


@bp.get("/online/<tenant_id>/<invoice_id>")
def online_page(tenant_id: str, invoice_id: str) -> Response:
    box = current()
    with box.lock:
        tenant = box.tenants_by_id.get(tenant_id)
        record = tenant.invoices.get(invoice_id) if tenant else None
        if tenant is None or record is None:
            return html("<h1>Not found</h1>", 404)
        rows = "".join(
            f"<tr><td>{escape(line['Description'])}</td><td>{line['Quantity']:f}</td>"
            f"<td>{line['UnitAmount']:.2f}</td><td>{line['LineAmount']:.2f}</td></tr>"
            for line in record["LineItems"])
        state = "Paid" if record["Status"] == "PAID" else (
            f"{escape(record['CurrencyCode'])} {record['AmountDue']:.2f} due "
            f"{record['_due'].isoformat()}")
        return html(
            "<!doctype html><html lang='en'><meta charset='utf-8'>"
            f"<title>Invoice {escape(record['InvoiceNumber'])}</title>"
            f"<h1>{escape(tenant.name)}</h1><h2>Invoice "
            f"{escape(record['InvoiceNumber'])}</h2><p>To "
            f"{escape(record['Contact']['Name'])}</p><table><tr><th>Description</th>"
            f"<th>Qty</th><th>Price</th><th>Amount</th></tr>{rows}</table>"
            f"<p>Total {escape(record['CurrencyCode'])} {record['Total']:.2f}</p>"
            f"<p class='due'>{state}</p><button disabled>Pay now</button></html>")


# Xero words the email from the organisation's Sales Invoice template (Settings, Email
# settings, Templates), which no API reads or takes. UNVERIFIED: the standard template's words,
# as Xero's settings page shows them less the online-invoice link line; no document we hold
# states them (searched the Accounting API description and Xero Central for the text).
STANDARD_EMAIL = ("Invoice [Invoice Number] from [Trading Name] for [Contact Name]",
                  "Hi [Contact Name],\n\nHere's invoice [Invoice Number] for [Currency Code]"
                  " [Invoice Total].\n\nThe amount outstanding of [Currency Code] [Amount Due]"
                  " is due on [Due Date].\n\nIf you have any questions, please let us know."
                  "\n\nThanks,\n[Trading Name]")


def worded(t: Tenant, record: dict[str, Any]) -> tuple[str, str]:
    """The email's subject and body, from the organisation's template, as Xero fills it in."""
    values = {"[Trading Name]": t.name, "[Contact Name]": record["Contact"]["Name"],
              "[Invoice Number]": record["InvoiceNumber"],
              "[Currency Code]": record["CurrencyCode"],
              "[Invoice Total]": f"{record['Total']:,.2f}",
              "[Amount Due]": f"{record['AmountDue']:,.2f}",
              "[Due Date]": record["_due"].strftime("%d %b %Y")}
    subject, body = t.invoice_email_template or STANDARD_EMAIL
    for name, value in values.items():
        subject, body = subject.replace(name, value), body.replace(name, value)
    return subject, body


@bp.post(f"{API}/Invoices/<invoice_id>/Email")
def email_invoice(invoice_id: str) -> Response:
    box = current()

    def handle(t: Tenant) -> Response:
        record = find_invoice(t, invoice_id)
        if record["Type"] != "ACCREC" or record["Status"] not in (
                "SUBMITTED", "AUTHORISED", "PAID"):
            raise validation_error("Invoice must be an approved sales invoice to be "
                                   "emailed (SUBMITTED, AUTHORISED or PAID)")
        contact = t.contacts.get(record["Contact"]["ContactID"], {})
        if not contact.get("EmailAddress"):
            raise validation_error("The contact does not have an email address")
        subject, body = worded(t, record)
        t.emails.append({"InvoiceID": record["InvoiceID"], "SentAt": box.now.isoformat(),
                         "To": contact["EmailAddress"], "Subject": subject, "Body": body})
        if not record["SentToContact"]:
            record["SentToContact"] = True
            box.touch(record)
        return Response(status=204)
    return accounting(handle)
