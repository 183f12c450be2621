"""Invoices: built from a request (and from an estimate), sent by e-mail (POST
.../invoice/<id>/send), and their online page."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

from flask import Response, request

from sandboxes.pdf import invoice_pdf as printed_invoice
from sandboxes.quickbooks import context
from sandboxes.quickbooks.api import ID, Resource, link_base
from sandboxes.quickbooks.bodies import _resolve
from sandboxes.quickbooks.books import Company, _whole_seconds
from sandboxes.quickbooks.company_info import invoice_message
from sandboxes.quickbooks.config import CACHE_CONTROL
from sandboxes.quickbooks.errors import business
from sandboxes.quickbooks.records import render
from sandboxes.quickbooks.sales import build_sales
from sandboxes.quickbooks.schema import EMAIL
from sandboxes.wire import html_response

if TYPE_CHECKING:
    from sandboxes.quickbooks.sandbox import QuickBooksSandbox

bp = Resource("quickbooks_invoices", __name__)


def build_invoice(box: QuickBooksSandbox, company: Company, body: dict[str, Any],
                  current: dict[str, Any] | None, sparse: bool) -> dict[str, Any]:
    record = build_sales(box, company, "Invoice", body, current, sparse)
    if current is None:  # made from an estimate: LinkedTxn names it (only on create)
        links = body.get("LinkedTxn") or []
        estimates = [link.get("TxnId") for link in links if isinstance(link, dict)
                     and link.get("TxnType") == "Estimate"] if isinstance(links, list) else []
        if estimates:
            estimate = _resolve(company, "Estimate", {"value": estimates[0]}, "LinkedTxn")
            assert estimate is not None
            if estimate["CustomerRef"]["value"] != record["CustomerRef"]["value"]:
                raise business("The estimate belongs to another customer.", "LinkedTxn")
            record["_estimate"] = estimate["Id"]
    return record

bp = Resource("quickbooks_invoices", __name__)


def worded(company: Company, invoice: dict[str, Any]) -> tuple[str, str]:
    """The email's subject and message from the company's Preferences, the invoice's fields
    filled in. UNVERIFIED: which bracketed fields QuickBooks fills in (the number, the
    customer's display name, the company's name); Finance.xsd describes only the two texts."""
    customer = company.records["Customer"].get(invoice["CustomerRef"]["value"]) or {}
    values = {"[Invoice No.]": str(invoice.get("DocNumber") or ""),
              "[Full Name]": str(customer.get("DisplayName") or ""),
              "[Company Name]": company.name}
    subject, message = invoice_message(company)
    for name, value in values.items():
        subject, message = subject.replace(name, value), message.replace(name, value)
    return subject, message


def send(box: QuickBooksSandbox, company: Company, invoice_id: str, send_to: str | None,
         link_base: str | None = None) -> dict[str, Any]:
    invoice = company.find("Invoice", invoice_id)
    address = (send_to or "").strip() or (invoice.get("BillEmail") or {}).get("Address")
    if not address:
        raise business("The invoice has no email address to send it to. Add a BillEmail "
                       "address or give sendTo.", "BillEmail")
    if not EMAIL.match(address):
        raise business(f"The email address {address} is not valid.", "sendTo")
    today = company.today()
    sent_today = sum(1 for e in company.emails if e["_day"] == today)
    if sent_today >= box.config.emails_per_day:
        raise business(f"This company has sent {sent_today} emails today, the daily limit "
                       "for sandbox companies. Try again tomorrow.")
    now = _whole_seconds(box.now)
    subject, message = worded(company, invoice)
    company.emails.append({"realmId": company.realm_id, "InvoiceId": invoice["Id"],
                           "DocNumber": invoice.get("DocNumber"), "To": address,
                           "SentAt": company.stamp(now), "_day": today, "Subject": subject,
                           "Message": message})
    if send_to:
        invoice["BillEmail"] = {"Address": address}
    invoice["EmailStatus"] = "EmailSent"
    invoice["DeliveryInfo"] = {"DeliveryType": "Email", "DeliveryTime": company.stamp(now)}
    box.touch(invoice)
    return {"Invoice": render(company, "Invoice", invoice, link_base)}


@bp.operation("invoice", ID, "send", methods=("POST",))
def send_invoice(box: QuickBooksSandbox, company: Company, parts: list[str]) -> dict[str, Any]:
    return send(box, company, parts[1], request.args.get("sendTo"), link_base())


@bp.operation("invoice", ID, "pdf")
def invoice_pdf(box: QuickBooksSandbox, company: Company, parts: list[str]) -> Response:
    """GET /invoice/{id}/pdf: the invoice as QuickBooks prints it."""
    invoice = render(company, "Invoice", company.find("Invoice", parts[1]))
    return Response(printed_invoice([
        company.name, f"Invoice {invoice.get('DocNumber', invoice['Id'])}",
        f"To {invoice['CustomerRef'].get('name', '')}", f"Due {invoice.get('DueDate', '')}",
        f"Balance due {invoice.get('CurrencyRef', {}).get('value', '')} {invoice['Balance']}"]),
        mimetype="application/pdf")


@bp.get("/online/<realm_id>/<invoice_id>")
def online_invoice(realm_id: str, invoice_id: str) -> Response:
    """The invoice's page at its InvoiceLink (the path after the host is ours)."""
    box = context.current()
    with box.lock:
        company = box.companies_by_id.get(realm_id)
        record = company.records["Invoice"].get(invoice_id) if company else None
        if company is None or record is None:
            return html_response("<h1>Not found</h1>", 404, CACHE_CONTROL)
        invoice = render(company, "Invoice", record)
    rows = "".join(
        f"<tr><td>{escape(str(line.get('Description', '')))}</td>"
        f"<td>{escape(str(line['SalesItemLineDetail']['Qty']))}</td>"
        f"<td>{line['Amount']:.2f}</td></tr>"
        for line in invoice["Line"] if line["DetailType"] == "SalesItemLineDetail")
    state = "Paid" if invoice["Balance"] == 0 and invoice["TotalAmt"] > 0 else (
        f"{escape(company.currency)} {invoice['Balance']:.2f} due "
        f"{escape(invoice['DueDate'])}")
    return html_response(
        "<!doctype html><html lang='en'><meta charset='utf-8'>"
        f"<title>Invoice {escape(invoice['DocNumber'])}</title>"
        f"<h1>{escape(company.name)}</h1><h2>Invoice {escape(invoice['DocNumber'])}</h2>"
        f"<p>To {escape(invoice['CustomerRef']['name'])}</p><table><tr><th>Description"
        f"</th><th>Qty</th><th>Amount</th></tr>{rows}</table>"
        f"<p>Total {escape(company.currency)} {invoice['TotalAmt']:.2f}</p>"
        f"<p class='due'>{state}</p><button disabled>Pay now</button></html>", 200,
        CACHE_CONTROL)
