"""Quotes: the statuses a quote moves through, how Xero writes one; GET /Quotes."""

from __future__ import annotations

import copy
import operator
import uuid
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from flask import Blueprint, Response, request

from sandboxes.wire import json_response as _json
from sandboxes.xero.api import API, accounting, envelope
from sandboxes.xero.books import Tenant
from sandboxes.xero.contacts import NESTED_CONTACT_DEFAULTS
from sandboxes.xero.errors import not_found, validation_error
from sandboxes.xero.formats import CENT, day_ms, ms_date, parse_day, parse_if_modified_since
from sandboxes.xero.query import order_records

bp = Blueprint("xero_quotes", __name__)


QUOTES_PAGE_SIZE = 100  # GET /Quotes?page=n: 100 a page, no pageSize, no pagination element
QUOTE_STATUSES = ("DRAFT", "SENT", "DECLINED", "ACCEPTED", "INVOICED", "DELETED")
# Where a quote may go from each status, as Xero's quote screens allow (UNVERIFIED in detail).
QUOTE_MOVES = {"DRAFT": {"SENT", "DELETED"}, "SENT": {"ACCEPTED", "DECLINED", "DELETED", "DRAFT"},
               "ACCEPTED": {"INVOICED", "SENT", "DELETED"}, "DECLINED": {"SENT", "DELETED"},
               "INVOICED": {"ACCEPTED"}, "DELETED": set()}


def new_quote(tenant: Tenant, contact: dict[str, Any], amount: Decimal, status: str,
              issued: date, expiry: date | None, currency: str,
              description: str) -> dict[str, Any]:
    amount = amount.quantize(CENT, ROUND_HALF_UP)
    if amount <= 0:
        raise ValueError("a quote's amount must be positive")
    tax = (amount * tenant.tax_rate).quantize(CENT, ROUND_HALF_UP)
    numbers = [int(q["QuoteNumber"].removeprefix("QU-")) for q in tenant.quotes.values()
               if q["QuoteNumber"].removeprefix("QU-").isdigit()]
    return {
        "QuoteID": str(uuid.uuid4()), "QuoteNumber": f"QU-{max(numbers, default=0) + 1:04d}",
        "Reference": "", "Terms": "Valid for 30 days",
        "Contact": {"ContactID": contact["ContactID"], "Name": contact["Name"]},
        "LineItems": [{"LineItemID": str(uuid.uuid4()), "Description": description,
                       "Quantity": Decimal("1.0000"), "UnitAmount": amount,
                       "AccountCode": "200", "TaxType": tenant.sales_tax_type,
                       "TaxAmount": tax, "LineAmount": amount, "Tracking": []}],
        "Status": status, "CurrencyCode": currency,
        "CurrencyRate": tenant.currency_rate(currency), "SubTotal": amount, "TotalTax": tax,
        "Total": amount + tax, "TotalDiscount": Decimal("0.00"), "Title": "Quote",
        "Summary": "", "LineAmountTypes": "EXCLUSIVE",
        "_date": issued, "_expiry": expiry or issued + timedelta(days=30),
    }


def render_quote(quote: dict[str, Any], tenant: Tenant | None = None) -> dict[str, Any]:
    out = {k: copy.deepcopy(v) for k, v in quote.items() if not k.startswith("_")}
    out["Date"] = day_ms(quote["_date"])
    out["DateString"] = quote["_date"].isoformat() + "T00:00:00"
    out["ExpiryDate"] = day_ms(quote["_expiry"])
    out["ExpiryDateString"] = quote["_expiry"].isoformat() + "T00:00:00"
    out["UpdatedDateUTC"] = ms_date(quote["_updated"])
    if tenant is not None:
        contact = tenant.contacts.get(quote["Contact"]["ContactID"])
        if contact is not None:
            out["Contact"] = {"ContactID": contact["ContactID"], "Name": contact["Name"],
                              **copy.deepcopy(NESTED_CONTACT_DEFAULTS)}
    return out


@bp.get(f"{API}/Quotes")
def quotes() -> Response:
    """Filters Status, ContactID, QuoteNumber, DateFrom/DateTo; If-Modified-Since; `page`
    gives 100 a page (without it, every quote)."""
    def handle(t: Tenant) -> Response:
        records = list(t.quotes.values())
        since = parse_if_modified_since(request.headers.get("If-Modified-Since"))
        if since is not None:
            records = [q for q in records if q["_updated"] > since]
        status = (request.args.get("Status") or "").strip().upper()
        if status:
            records = [q for q in records if q["Status"] == status]
        contact_id = (request.args.get("ContactID") or "").strip().lower()
        if contact_id:
            records = [q for q in records if q["Contact"]["ContactID"] == contact_id]
        number = (request.args.get("QuoteNumber") or "").strip()
        if number:
            records = [q for q in records if q["QuoteNumber"] == number]
        for arg, keep in (("DateFrom", operator.ge), ("DateTo", operator.le)):
            if request.args.get(arg):
                day = parse_day(request.args[arg], arg)
                records = [q for q in records if keep(q["_date"], day)]
        rendered = [render_quote(q, t) for q in records]
        order = (request.args.get("order") or "").strip() or "UpdatedDateUTC"
        fields = set().union(*(r.keys() for r in rendered)) if rendered else set()
        rendered = order_records(rendered, order, "QuoteID", "Quote", fields)
        page = request.args.get("page")
        if page is not None:
            try:
                number_of_page = max(1, int(page))
            except ValueError as exc:
                raise validation_error("page must be a whole number") from exc
            start = (number_of_page - 1) * QUOTES_PAGE_SIZE
            rendered = rendered[start:start + QUOTES_PAGE_SIZE]
        return _json(envelope("Quotes", rendered))
    return accounting(handle)


@bp.get(f"{API}/Quotes/<quote_id>")
def quote(quote_id: str) -> Response:
    def handle(t: Tenant) -> Response:
        record = t.quotes.get(quote_id.lower())
        if record is None:
            raise not_found()
        return _json(envelope("Quotes", [render_quote(record, t)]))
    return accounting(handle)
